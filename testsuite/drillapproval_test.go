package testsuite

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/workflows"
)

// requireConflict checks err is the API's 409 with the drill's reason.
func requireConflict(t *testing.T, err error, reason string) {
	t.Helper()
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusConflict, ae.Status, "%v", err)
	require.Contains(t, ae.Error(), reason)
}

// Approvals on the real server: by the API (the drill's approve Update,
// refused synchronously when the step is not awaited or already decided)
// and by signal (Temporal UI / CLI, with the same rules: a signal sent
// before its wait began is recorded as refused and not consumed by that
// wait); each decision carries its channel. The drill is followed by
// long polls (GET /drills/{id}?wait=&until=).
func TestDrillApprovalsByUpdateAndSignal(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	ctx := context.Background()
	admin, err := client.New(e.API.URL, e.Token(api.ScopeAdmin), nil)
	require.NoError(t, err)

	e.verifiedBackup("demo")
	d, err := admin.StartDrill(ctx, "demo")
	require.NoError(t, err)
	// Before any wait began: the API's approval is refused at once, and a
	// signal for "complete" is recorded as refused.
	_, err = admin.ApproveDrill(ctx, d.ID, domain.ApprovalComplete, "too early")
	requireConflict(t, err, "complete")
	require.NoError(t, e.Client.SignalWorkflow(ctx, d.ID, "", workflows.ApproveSignal,
		workflows.ApprovalSignal{Step: domain.ApprovalComplete, Approver: "mallory", Comment: "early"}))

	// One long poll brings the drill to its first approval.
	start := time.Now()
	got, err := admin.WaitDrill(ctx, d.ID, api.DrillWait{Wait: 20 * time.Second, Until: []domain.DrillState{domain.DrillAwaiting}})
	require.NoError(t, err)
	require.Equal(t, domain.ApprovalStart, got.Awaiting, "awaiting start after one wait (%s)", time.Since(start))
	t.Logf("drill %s awaiting start %s after GET ?wait=20s&until=awaiting_approval", d.ID, time.Since(start).Round(time.Millisecond))

	_, err = admin.ApproveDrill(ctx, d.ID, domain.ApprovalComplete, "wrong step")
	requireConflict(t, err, `awaiting approval "start", not "complete"`)

	e.verifiedBackup("demo") // a fresh one: the RPO is its age at the failure instant
	approved, err := admin.ApproveDrill(ctx, d.ID, domain.ApprovalStart, "go")
	require.NoError(t, err)
	require.NotEqual(t, domain.DrillAwaiting, approved.State, "the answer is the drill after the approval")
	require.Len(t, approved.Approvals, 1)
	require.Equal(t, domain.ChannelAPI, approved.Approvals[0].Channel)
	require.Equal(t, "test-admin", approved.Approvals[0].Approver)

	_, err = admin.ApproveDrill(ctx, d.ID, domain.ApprovalStart, "again")
	requireConflict(t, err, `approval "start" was already decided: approved by test-admin (api)`)
	_, err = admin.RejectDrill(ctx, d.ID, domain.ApprovalStart, "too late")
	requireConflict(t, err, "already decided")

	// The early "complete" signal was not consumed: the drill stops at its
	// complete wait.
	mid := followUntil(t, admin, d.ID, domain.DrillAwaiting)
	require.Equal(t, domain.ApprovalComplete, mid.Awaiting, "the early signal did not pass the complete wait: %s %s", mid.State, mid.Step)
	require.True(t, mid.Measured)

	// Approved by signal, as from the Temporal UI.
	require.NoError(t, e.Client.SignalWorkflow(ctx, d.ID, "", workflows.ApproveSignal,
		workflows.ApprovalSignal{Step: domain.ApprovalComplete, Approver: "bob", Comment: "looks right"}))
	done := followUntil(t, admin, d.ID)
	require.Equal(t, domain.DrillPassed, done.State, done.Reason)
	require.Len(t, done.Approvals, 2)
	require.Equal(t, domain.ChannelAPI, done.Approvals[0].Channel)
	require.Equal(t, domain.ChannelSignal, done.Approvals[1].Channel)
	require.Equal(t, "bob", done.Approvals[1].Approver)
	require.Len(t, done.Refused, 1, "the early signal is on record: %+v", done.Refused)
	require.Equal(t, "mallory", done.Refused[0].Approver)
	require.Equal(t, domain.ChannelSignal, done.Refused[0].Channel)
	// Refused during preflight, or at the start wait when the (fast)
	// preflight was over before the signal arrived.
	require.True(t, strings.Contains(done.Refused[0].Reason, "not awaiting an approval") ||
		strings.Contains(done.Refused[0].Reason, `awaiting approval "start", not "complete"`), "refused: %s", done.Refused[0].Reason)
	e.assertNothingLeft(done)

	// Every decision is in the audit log with its channel: the API's by the
	// gateway, the signals' by the worker when it saved the report.
	log, err := admin.Audit(ctx, time.UnixMilli(done.StartedAtMs), 0)
	require.NoError(t, err)
	var decisions []string
	for _, ev := range log.Events {
		if ev.Resource == "drill/"+d.ID && (ev.Action == "drill.approve" || ev.Action == "drill.reject") {
			decisions = append(decisions, ev.Principal+" "+ev.Outcome+" "+ev.Detail)
		}
	}
	joined := strings.Join(decisions, "\n")
	require.Contains(t, joined, "bob success channel=signal step=complete", "audit: %s", joined)
	require.Contains(t, joined, "mallory failure channel=signal step=complete", "audit: %s", joined)
	require.Contains(t, joined, "channel=api", "audit: %s", joined)

	// After the end: refused, 409.
	_, err = admin.ApproveDrill(ctx, d.ID, domain.ApprovalComplete, "after the end")
	requireConflict(t, err, "ended")
	e.RecordHistory(d.ID, "drill_update_approved")
}

// followUntil long-polls the drill until it is in one of states or has
// ended (at most ten requests of 20 s).
func followUntil(t *testing.T, c *client.Client, id string, states ...domain.DrillState) domain.Drill {
	t.Helper()
	for range 10 {
		d, err := c.WaitDrill(context.Background(), id, api.DrillWait{Wait: 20 * time.Second, Until: states})
		require.NoError(t, err)
		if d.State.Terminal() || (len(states) > 0 && d.State == states[0]) {
			return d
		}
	}
	t.Fatalf("drill %s did not reach %v in ten waits", id, states)
	return domain.Drill{}
}

// The drill wait: held for the wait when nothing changes, answered at once
// when the drill already differs from what the caller saw, bad parameters
// are 400 naming the field; a rejection by the API is answered once
// applied, and the wait for the end brings the final state.
func TestDrillWaitLongPoll(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	ctx := context.Background()
	admin, err := client.New(e.API.URL, e.Token(api.ScopeAdmin), nil)
	require.NoError(t, err)
	e.verifiedBackup("demo")
	d, err := admin.StartDrill(ctx, "demo")
	require.NoError(t, err)
	waiting := followUntil(t, admin, d.ID, domain.DrillAwaiting)
	require.Equal(t, domain.ApprovalStart, waiting.Awaiting)

	// Nothing changes while the drill awaits: the request is held.
	start := time.Now()
	same, err := admin.WaitDrill(ctx, d.ID, api.DrillWait{Wait: 1500 * time.Millisecond, SinceState: waiting.State, SinceStep: waiting.Step})
	took := time.Since(start)
	require.NoError(t, err)
	require.Equal(t, domain.DrillAwaiting, same.State)
	require.GreaterOrEqual(t, took, 1400*time.Millisecond, "held for the wait")
	require.Less(t, took, 6*time.Second)

	// What the caller saw is stale: answered at once.
	start = time.Now()
	now, err := admin.WaitDrill(ctx, d.ID, api.DrillWait{Wait: 20 * time.Second, SinceState: domain.DrillRunning, SinceStep: "preflight"})
	require.NoError(t, err)
	require.Equal(t, domain.DrillAwaiting, now.State)
	require.Less(t, time.Since(start), 3*time.Second)

	// Bad parameters: 400 naming the field.
	for q, field := range map[string]string{
		"wait=soon": "wait", "wait=-1s": "wait", "wait=2m": "wait", "wait=1s&wait=2s": "wait",
		"until=ended": "until", "wait=1s&until=bogus": "until", "wait=1s&since_state=x": "since_state",
		"wait=1s&since_step=DROP%20TABLE": "since_step", "wait=1s&color=red": "color",
	} {
		req, err := http.NewRequest(http.MethodGet, e.API.URL+api.BasePath+"/drills/"+url.PathEscape(d.ID)+"?"+q, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+e.Token(api.ScopeRead))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var p struct {
			Field string `json:"field"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
		_ = resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "?%s", q)
		require.Contains(t, resp.Header.Get("Content-Type"), "application/problem+json", "?%s", q)
		require.Equal(t, field, p.Field, "?%s", q)
	}

	// Rejected through the API: the answer is the drill after the decision.
	rejected, err := admin.RejectDrill(ctx, d.ID, domain.ApprovalStart, "change freeze")
	require.NoError(t, err)
	require.Contains(t, []domain.DrillState{domain.DrillCleaningUp, domain.DrillRejected}, rejected.State)
	require.Equal(t, domain.ChannelAPI, rejected.Approvals[0].Channel)
	// One wait (default: until ended) brings the final state.
	start = time.Now()
	done, err := admin.WaitDrill(ctx, d.ID, api.DrillWait{Wait: 20 * time.Second})
	require.NoError(t, err)
	require.Equal(t, domain.DrillRejected, done.State, "ended after %s", time.Since(start))
	require.NotZero(t, done.FinishedAtMs)
	e.assertNothingLeft(done)
}
