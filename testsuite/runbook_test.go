package testsuite

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
)

// call sends one request the way the operator runbook's curl lines do.
func (e *Env) call(method, path, token string, body any, out any) int {
	e.T.Helper()
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(e.T, err)
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.API.URL+"/api/v1/maintenance"+path, r)
	require.NoError(e.T, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.T, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		require.NoError(e.T, json.Unmarshal(raw, out), "%s %s: %s", method, path, raw)
	}
	return resp.StatusCode
}

// The reference runbook, verbatim against the real API, starter and dev
// server: pick "Daily Maintenance" by name from the list, enable it with
// PATCH, run it (202, state running), poll the job to succeeded, list the
// active jobs.
func TestOperatorRunbook(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	ctx := context.Background()
	forgetDefaultsInstalled(t, e)
	require.NoError(t, e.Service.EnsureDefaultSchedules(ctx, "demo"))
	read, write := e.Token(api.ScopeRead), e.Token(api.ScopeWrite)

	// jq '.schedules[] | select(.name=="Daily Maintenance") | .id'
	var id string
	require.Eventually(t, func() bool {
		var list struct {
			Schedules []domain.Schedule `json:"schedules"`
			Count     int               `json:"count"`
		}
		if e.call("GET", "/schedules", read, nil, &list) != http.StatusOK {
			return false
		}
		for _, s := range list.Schedules {
			if s.Name == "Daily Maintenance" {
				id = s.ID
			}
		}
		return id != ""
	}, 30*time.Second, 200*time.Millisecond)

	// Not in the runbook: it is run outside the 02–06 window here, so
	// let the window cover the current hour first.
	var sc domain.Schedule
	// (A whole-day window, start == end, is admin-only: a write token
	// opens the next two hours instead.)
	hour := time.Now().UTC().Hour()
	require.Equal(t, http.StatusOK, e.call("PATCH", "/schedules/"+id, write, map[string]any{"window_start_hour": hour, "window_end_hour": (hour + 2) % 24}, &sc))
	t.Cleanup(func() { _ = e.Service.DeleteSchedule(ctx, id, "test") })

	// curl -X PATCH -H "Authorization: Bearer $TOKEN" -d '{"enabled": true}' .../schedules/<id>
	require.Equal(t, http.StatusOK, e.call("PATCH", "/schedules/"+id, write, map[string]any{"enabled": true}, &sc))
	require.True(t, sc.Enabled)
	require.Equal(t, "test-write", sc.UpdatedBy)
	require.Eventually(t, func() bool {
		got, err := e.Service.GetSchedule(ctx, id)
		return err == nil && got.NextRunMs > time.Now().UnixMilli()
	}, 30*time.Second, 200*time.Millisecond, "next_run_ms comes from the Temporal Schedule")

	// POST .../schedules/<id>/run → 202 with a job in state running
	var job domain.Job
	require.Equal(t, http.StatusAccepted, e.call("POST", "/schedules/"+id+"/run", write, nil, &job))
	require.Equal(t, domain.StateRunning, job.State)
	require.Equal(t, "test-write", job.TriggeredBy)

	// GET .../jobs?active_only=true
	var active api.JobPage
	require.Equal(t, http.StatusOK, e.call("GET", "/jobs?active_only=true", read, nil, &active))

	// poll GET .../jobs/<job_id> to succeeded
	deadline := time.Now().Add(time.Minute)
	for job.State != domain.StateSucceeded && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		require.Equal(t, http.StatusOK, e.call("GET", "/jobs/"+job.ID, read, nil, &job))
		require.NotEqual(t, domain.StateFailed, job.State, job.ErrorMessage)
	}
	require.Equal(t, domain.StateSucceeded, job.State)
	require.Len(t, job.Tasks, 3)

	// A finished job cannot be cancelled: 409.
	require.Equal(t, http.StatusConflict, e.call("POST", "/jobs/"+job.ID+"/cancel", write, nil, nil))
	// Forced runs need admin: 403 for a write token, 202 for admin.
	require.Equal(t, http.StatusForbidden, e.call("POST", "/schedules/"+id+"/run", write, map[string]any{"force": true}, nil))
	// Without a token: 401.
	require.Equal(t, http.StatusUnauthorized, e.call("GET", "/schedules", "", nil, nil))

	// The audit log has the enable, the run and the denials, by principal.
	var events struct {
		Events []map[string]any `json:"events"`
	}
	require.Equal(t, http.StatusOK, e.call("GET", "/audit", e.Token(api.ScopeAdmin), nil, &events))
	actions := map[string]bool{}
	for _, ev := range events.Events {
		actions[ev["action"].(string)+"/"+ev["outcome"].(string)] = true
	}
	for _, want := range []string{"schedule.enable/success", "schedule.run/success", "schedule.run/denied",
		"schedule.list/denied", "job.cancel/failure"} {
		require.True(t, actions[want], "audit has %s (got %v)", want, actions)
	}
}
