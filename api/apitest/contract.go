package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
)

// Contract is a running gateway for RunContract.
type Contract struct {
	// BaseURL is the server's root (api.BasePath is appended).
	BaseURL string
	// Tokens by scope (api.ScopeRead, ScopeWrite, ScopeAdmin); none when
	// the gateway lets anonymous requests through.
	Tokens map[string]string
	// Timeout bounds each wait for what the real service does
	// asynchronously (visibility, cancellation, drill steps); default 30 s.
	Timeout time.Duration
	// Drills runs the drill part: a drill is started, approved through
	// both steps to its end, and a second one aborted.
	Drills bool
}

// RunContract runs the request suite every implementation of the gateway's
// services must pass: the fake (apitest) and the real starter.Service on a
// dev server (testsuite) run it alike. It checks status codes, problem
// codes and what the answers say; the validator the servers are wrapped in
// checks the shapes against the OpenAPI document. Where the two legitimately
// differ in timing (visibility lag, a cancellation or a drill step taking
// effect), it waits for the outcome rather than expecting it at once.
//
// The schedule's tasks are index_rebuild and quota_check on the default
// target: the real runner slows its driver so the job is still running
// when it is run a second time and cancelled.
func RunContract(t *testing.T, c Contract) {
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	k := &contractClient{t: t, c: c}

	var targets []api.TargetInfo
	var target api.TargetInfo
	var types []api.TaskTypeInfo
	t.Run("catalogue", func(t *testing.T) {
		k := k.at(t)
		var tl api.TargetList
		k.ok("GET", "/targets", api.ScopeRead, nil, http.StatusOK, &tl)
		targets = tl.Targets
		for _, ti := range targets {
			if ti.Default {
				target = ti
			}
		}
		if target.Name == "" {
			t.Fatalf("no default target in %+v", targets)
		}
		var tt api.TaskTypeList
		k.ok("GET", "/task-types", api.ScopeRead, nil, http.StatusOK, &tt)
		types = tt.TaskTypes
		checkTaskTypes(t, types, targets)

		var st api.Status
		k.ok("GET", "/status", api.ScopeRead, nil, http.StatusOK, &st)
		if st.DefaultTarget != target.Name || st.Version == "" || st.Namespace == "" || st.TaskQueue == "" {
			t.Errorf("status %+v (default target %s)", st, target.Name)
		}
		var h api.HealthReport
		k.ok("GET", "/health", api.ScopeRead, nil, http.StatusOK, &h)
		checkHealth(t, h)
	})
	if target.Name == "" {
		t.FailNow()
	}

	name := fmt.Sprintf("Contract %d", time.Now().UnixNano())
	var sc domain.Schedule
	t.Run("create schedule", func(t *testing.T) {
		k := k.at(t)
		k.ok("POST", "/schedules", api.ScopeWrite, map[string]any{
			"name": name, "description": "contract", "frequency": "daily", "window_start_hour": 3, "window_end_hour": 5,
			"tasks":        []string{"index_rebuild", "quota_check"},
			"task_options": map[string]any{"quota_check": map[string]any{}},
		}, http.StatusCreated, &sc)
		if sc.ID != domain.Slug(name) || sc.Name != name || sc.Target != target.Name || sc.CronExpression != "0 3 * * *" ||
			sc.Timezone != "UTC" || !sc.Enabled || !slices.Equal(sc.Tasks, []domain.TaskType{domain.TaskIndexRebuild, domain.TaskQuotaCheck}) ||
			sc.CreatedBy == "" || sc.UpdatedBy != sc.CreatedBy || sc.CreatedAtMs == 0 || sc.LastJobID != "" {
			t.Fatalf("created %+v", sc)
		}
		k.checkNextRun(sc)
		// The name is taken; so is its slug for another name.
		k.problem("POST", "/schedules", api.ScopeWrite, map[string]any{"name": name, "tasks": []string{"quota_check"}},
			http.StatusConflict, api.CodeConflict)
	})
	if sc.ID == "" {
		t.FailNow()
	}
	path := "/schedules/" + sc.ID

	t.Run("schedule validation", func(t *testing.T) {
		k := k.at(t)
		bad := []struct {
			why   string
			body  map[string]any
			field string
		}{
			{"no name", map[string]any{"tasks": []string{"quota_check"}}, "name"},
			{"no task", map[string]any{"name": name + " x"}, "tasks"},
			{"unknown task", map[string]any{"name": name + " x", "tasks": []string{"defragment_everything"}}, ""},
			{"unknown target", map[string]any{"name": name + " x", "target": "nowhere", "tasks": []string{"quota_check"}}, "target"},
			{"bad cron", map[string]any{"name": name + " x", "frequency": "custom", "cron_expression": "61 * * * *", "tasks": []string{"quota_check"}}, "cron_expression"},
			{"derived cron overridden", map[string]any{"name": name + " x", "cron_expression": "5 4 * * *", "tasks": []string{"quota_check"}}, "cron_expression"},
			{"bad zone", map[string]any{"name": name + " x", "timezone": "Mars/Olympus", "tasks": []string{"quota_check"}}, "timezone"},
			{"bad hour", map[string]any{"name": name + " x", "window_start_hour": 24, "tasks": []string{"quota_check"}}, ""},
			{"unknown option", map[string]any{"name": name + " x", "tasks": []string{"quota_check"},
				"task_options": map[string]any{"quota_check": map[string]any{"no_such_option": 1}}}, "task_options.quota_check"},
		}
		if opt, lo, ok := boundedIntOption(types); ok {
			bad = append(bad, struct {
				why   string
				body  map[string]any
				field string
			}{"option out of bounds", map[string]any{"name": name + " x", "tasks": []string{"quota_check"},
				"task_options": map[string]any{opt[0]: map[string]any{opt[1]: lo - 1}}}, "task_options." + opt[0] + "." + opt[1]})
		}
		if tgt, task, ok := unsupportedTask(types, targets); ok {
			bad = append(bad, struct {
				why   string
				body  map[string]any
				field string
			}{"task the target's driver cannot run", map[string]any{"name": name + " x", "target": tgt, "tasks": []string{task}}, "tasks[0]"})
		} else {
			t.Log("every target's driver runs every task: the unsupported-task refusal is not exercised")
		}
		for _, b := range bad {
			p := k.problem("POST", "/schedules", api.ScopeWrite, b.body, http.StatusBadRequest, "")
			if p.Code != api.CodeValidationFailed && p.Code != api.CodeInvalidParameter {
				t.Errorf("%s: code %s (%s)", b.why, p.Code, p.Detail)
			}
			if b.field != "" && p.Field != b.field {
				t.Errorf("%s: field %q, want %q (%s)", b.why, p.Field, b.field, p.Detail)
			}
		}
		k.problem("PATCH", path, api.ScopeWrite, map[string]any{"window_end_hour": -1}, http.StatusBadRequest, api.CodeValidationFailed)
		k.problem("PATCH", path, api.ScopeWrite, map[string]any{"tasks": []string{}}, http.StatusBadRequest, api.CodeValidationFailed)
		// Nothing of the refused writes was stored.
		var got domain.Schedule
		k.ok("GET", path, api.ScopeRead, nil, http.StatusOK, &got)
		if got.WindowEndHour != 5 || len(got.Tasks) != 2 {
			t.Errorf("a refused write changed the schedule: %+v", got)
		}
	})

	t.Run("read schedules", func(t *testing.T) {
		k := k.at(t)
		var got domain.Schedule
		k.ok("GET", path, api.ScopeRead, nil, http.StatusOK, &got)
		if got.ID != sc.ID || got.Name != name || got.CronExpression != sc.CronExpression || got.CreatedAtMs != sc.CreatedAtMs {
			t.Errorf("get %+v, created %+v", got, sc)
		}
		var list api.ScheduleList
		k.ok("GET", "/schedules", api.ScopeRead, nil, http.StatusOK, &list)
		if list.Count != len(list.Schedules) || !slices.ContainsFunc(list.Schedules, func(s domain.Schedule) bool { return s.ID == sc.ID }) {
			t.Errorf("list of %d does not hold %s", list.Count, sc.ID)
		}
		if !sort.SliceIsSorted(list.Schedules, func(i, j int) bool { return list.Schedules[i].Name < list.Schedules[j].Name }) {
			t.Error("schedules are not sorted by name")
		}
		k.problem("GET", "/schedules/no-such-schedule", api.ScopeRead, nil, http.StatusNotFound, api.CodeNotFound)
		k.problem("PATCH", "/schedules/no-such-schedule", api.ScopeWrite, map[string]any{"description": "x"}, http.StatusNotFound, api.CodeNotFound)
		k.problem("DELETE", "/schedules/no-such-schedule", api.ScopeWrite, nil, http.StatusNotFound, api.CodeNotFound)
		k.problem("POST", "/schedules/no-such-schedule/run", api.ScopeWrite, nil, http.StatusNotFound, api.CodeNotFound)
	})

	other := name + " other"
	var otherID string
	t.Run("update schedule", func(t *testing.T) {
		k := k.at(t)
		var got domain.Schedule
		k.ok("PATCH", path, api.ScopeWrite, map[string]any{"description": "patched", "enabled": false}, http.StatusOK, &got)
		if got.Description != "patched" || got.Enabled || got.NextRunMs != 0 || got.Name != name || got.UpdatedAtMs < sc.UpdatedAtMs {
			t.Errorf("patched %+v", got)
		}
		// A custom cron in another zone: the next run is where the
		// expression fires in that zone.
		put := map[string]any{"name": name, "description": "replaced", "frequency": "custom", "cron_expression": "30  1 * * 1-5",
			"timezone": "Europe/Berlin", "enabled": true, "enforce_window": false, "tasks": []string{"index_rebuild", "quota_check"}}
		// enforce_window false is an admin-only setting: refused to write.
		k.problem("PUT", path, api.ScopeWrite, put, http.StatusForbidden, api.CodeForbidden)
		k.ok("PUT", path, api.ScopeAdmin, put, http.StatusOK, &got)
		if got.CronExpression != "30 1 * * 1-5" || got.Timezone != "Europe/Berlin" || !got.Enabled || got.EnforceWindow || got.Description != "replaced" {
			t.Errorf("replaced %+v", got)
		}
		k.checkNextRun(got)
		var read domain.Schedule
		k.ok("GET", path, api.ScopeRead, nil, http.StatusOK, &read)
		if read.CronExpression != got.CronExpression || read.Description != got.Description || read.Enabled != got.Enabled {
			t.Errorf("read back %+v after %+v", read, got)
		}
		k.ok("PATCH", path, api.ScopeWrite, map[string]any{"enabled": false}, http.StatusOK, &got)

		var o domain.Schedule
		k.ok("POST", "/schedules", api.ScopeWrite, map[string]any{"name": other, "enabled": false, "tasks": []string{"quota_check"}}, http.StatusCreated, &o)
		otherID = o.ID
		if o.NextRunMs != 0 {
			t.Errorf("a disabled schedule has next_run_ms %d", o.NextRunMs)
		}
		k.problem("PATCH", path, api.ScopeWrite, map[string]any{"name": other}, http.StatusConflict, api.CodeConflict)
	})

	var job domain.Job
	t.Run("run schedule", func(t *testing.T) {
		k := k.at(t)
		// A forced run needs the admin scope.
		k.problem("POST", path+"/run", api.ScopeWrite, map[string]any{"force": true}, http.StatusForbidden, api.CodeForbidden)
		k.ok("POST", path+"/run", api.ScopeAdmin, map[string]any{"force": true}, http.StatusAccepted, &job)
		if job.ScheduleID != sc.ID || job.ScheduleName != name || job.Target != target.Name || !job.Forced || job.TriggeredBy == "" ||
			job.State.Terminal() || len(job.Tasks) != 2 || job.Tasks[0].TaskType != domain.TaskIndexRebuild || job.StartedAtMs == 0 {
			t.Fatalf("job %+v", job)
		}
		// The schedule has enforce_window false (admin-only): a write token
		// may not run it on demand.
		k.problem("POST", path+"/run", api.ScopeWrite, nil, http.StatusForbidden, api.CodeForbidden)
		p := k.problem("POST", path+"/run", api.ScopeAdmin, nil, http.StatusConflict, api.CodeConflict)
		if p.ActiveJobID != job.ID {
			t.Errorf("second run: active_job_id %q, want %q", p.ActiveJobID, job.ID)
		}
		var got domain.Job
		k.ok("GET", "/jobs/"+job.ID, api.ScopeRead, nil, http.StatusOK, &got)
		if got.ID != job.ID || got.ScheduleID != sc.ID || len(got.Tasks) != 2 {
			t.Errorf("get job %+v", got)
		}
		k.eventually("the job listed for its schedule", func() (bool, string) {
			var page api.JobPage
			k.ok("GET", "/jobs?schedule_id="+sc.ID, api.ScopeRead, nil, http.StatusOK, &page)
			return slices.ContainsFunc(page.Jobs, func(j domain.Job) bool { return j.ID == job.ID }), fmt.Sprintf("%+v", page)
		})
		k.eventually("the job listed as active", func() (bool, string) {
			var page api.JobPage
			k.ok("GET", "/jobs?active_only=true&schedule_id="+sc.ID, api.ScopeRead, nil, http.StatusOK, &page)
			return len(page.Jobs) == 1 && page.Jobs[0].ID == job.ID, fmt.Sprintf("%+v", page)
		})
		k.eventually("the schedule's last run", func() (bool, string) {
			var s domain.Schedule
			k.ok("GET", path, api.ScopeRead, nil, http.StatusOK, &s)
			return s.LastJobID == job.ID && s.LastRunMs > 0, fmt.Sprintf("last job %q at %d", s.LastJobID, s.LastRunMs)
		})
		k.problem("GET", "/jobs/no-such-job", api.ScopeRead, nil, http.StatusNotFound, api.CodeNotFound)
		k.problem("POST", "/jobs/no-such-job/cancel", api.ScopeWrite, nil, http.StatusNotFound, api.CodeNotFound)
		k.problem("GET", "/jobs?state=bogus", api.ScopeRead, nil, http.StatusBadRequest, api.CodeInvalidParameter)
		k.problem("GET", "/jobs?limit=0", api.ScopeRead, nil, http.StatusBadRequest, api.CodeInvalidParameter)
		k.problem("GET", "/jobs?next_page_token=!!!", api.ScopeRead, nil, http.StatusBadRequest, "")
		// Valid base64, but no token the service issued: refused at once as
		// bad input (Temporal would retry it until the call times out).
		if p := k.problem("GET", "/jobs?next_page_token=abcd", api.ScopeRead, nil, http.StatusBadRequest, ""); p.Field != "next_page_token" {
			t.Errorf("a made-up page token: field %q, want next_page_token (%s)", p.Field, p.Detail)
		}
	})
	if job.ID == "" {
		t.FailNow()
	}

	t.Run("cancel job", func(t *testing.T) {
		k := k.at(t)
		var got domain.Job
		k.ok("POST", "/jobs/"+job.ID+"/cancel", api.ScopeWrite, nil, http.StatusOK, &got)
		if got.ID != job.ID || got.State == domain.StateSucceeded || got.State == domain.StateFailed {
			t.Errorf("cancel answered %+v", got)
		}
		k.eventually("the job cancelled", func() (bool, string) {
			k.ok("GET", "/jobs/"+job.ID, api.ScopeRead, nil, http.StatusOK, &got)
			return got.State == domain.StateCancelled, string(got.State)
		})
		for _, task := range got.Tasks {
			if task.State != domain.StateCancelled && task.State != domain.StateSucceeded {
				t.Errorf("task %s is %s in a cancelled job", task.TaskType, task.State)
			}
		}
		k.problem("POST", "/jobs/"+job.ID+"/cancel", api.ScopeWrite, nil, http.StatusConflict, api.CodeConflict)
		k.eventually("the cancelled job listed as cancelled", func() (bool, string) {
			var page api.JobPage
			k.ok("GET", "/jobs?state=cancelled&schedule_id="+sc.ID, api.ScopeRead, nil, http.StatusOK, &page)
			return len(page.Jobs) == 1 && page.Jobs[0].ID == job.ID, fmt.Sprintf("%+v", page)
		})

		// A new run once the job has ended; two jobs page one by one.
		var second domain.Job
		k.ok("POST", path+"/run", api.ScopeAdmin, nil, http.StatusAccepted, &second)
		if second.ID == job.ID || second.Forced {
			t.Errorf("second run %+v", second)
		}
		k.eventually("two jobs, one a page", func() (bool, string) {
			var p1, p2 api.JobPage
			k.ok("GET", "/jobs?limit=1&schedule_id="+sc.ID, api.ScopeRead, nil, http.StatusOK, &p1)
			if len(p1.Jobs) != 1 || p1.NextPageToken == "" {
				return false, fmt.Sprintf("first page %+v", p1)
			}
			k.ok("GET", "/jobs?limit=1&schedule_id="+sc.ID+"&next_page_token="+url.QueryEscape(p1.NextPageToken), api.ScopeRead, nil, http.StatusOK, &p2)
			if len(p2.Jobs) != 1 {
				return false, fmt.Sprintf("second page %+v", p2)
			}
			// A page token belongs to its filters.
			if p := k.problem("GET", "/jobs?limit=1&next_page_token="+url.QueryEscape(p1.NextPageToken), api.ScopeRead, nil,
				http.StatusBadRequest, ""); p.Field != "next_page_token" {
				t.Errorf("a page token with other filters: field %q, want next_page_token (%s)", p.Field, p.Detail)
			}
			// Active jobs come first.
			return p1.Jobs[0].ID == second.ID && p2.Jobs[0].ID == job.ID, fmt.Sprintf("pages %s, %s", p1.Jobs[0].ID, p2.Jobs[0].ID)
		})
		k.ok("POST", "/jobs/"+second.ID+"/cancel", api.ScopeWrite, nil, http.StatusOK, &got)
		k.eventually("the second job cancelled", func() (bool, string) {
			k.ok("GET", "/jobs/"+second.ID, api.ScopeRead, nil, http.StatusOK, &got)
			return got.State == domain.StateCancelled, fmt.Sprintf("%s: %s; tasks %+v", got.State, got.ErrorMessage, got.Tasks)
		})
	})

	t.Run("delete schedule", func(t *testing.T) {
		k := k.at(t)
		for _, id := range []string{sc.ID, otherID} {
			if id == "" {
				continue
			}
			var d api.Deleted
			k.ok("DELETE", "/schedules/"+id, api.ScopeWrite, nil, http.StatusOK, &d)
			if d.ID != id || !d.Deleted {
				t.Errorf("deleted %+v", d)
			}
			k.problem("GET", "/schedules/"+id, api.ScopeRead, nil, http.StatusNotFound, api.CodeNotFound)
			k.problem("DELETE", "/schedules/"+id, api.ScopeWrite, nil, http.StatusNotFound, api.CodeNotFound)
		}
		// The job outlives its schedule.
		k.ok("GET", "/jobs/"+job.ID, api.ScopeRead, nil, http.StatusOK, &domain.Job{})
	})

	if c.Drills {
		t.Run("drills", func(t *testing.T) { k.at(t).drills(target) })
	}
}

// drills starts a drill on target, approves it through both steps to its
// end, and aborts a second one.
func (k *contractClient) drills(target api.TargetInfo) {
	t := k.t
	k.problem("POST", "/drills", api.ScopeAdmin, map[string]any{"target": "nowhere"}, http.StatusBadRequest, api.CodeValidationFailed)
	k.problem("GET", "/drills/no-such-drill", api.ScopeRead, nil, http.StatusNotFound, api.CodeNotFound)

	var d domain.Drill
	k.ok("POST", "/drills", api.ScopeAdmin, map[string]any{"target": target.Name}, http.StatusAccepted, &d)
	if d.Target != target.Name || d.State != domain.DrillRunning || d.RequestedBy == "" || d.ID == "" {
		t.Fatalf("started %+v", d)
	}
	// Not awaiting the completion approval (preflight, or the start one).
	k.problem("POST", "/drills/"+d.ID+"/approve", api.ScopeAdmin, map[string]any{"step": "complete"}, http.StatusConflict, api.CodeConflict)
	k.problem("POST", "/drills/"+d.ID+"/approve", api.ScopeAdmin, map[string]any{"step": "middle"}, http.StatusBadRequest, "")
	k.awaitDrill(d.ID, domain.ApprovalStart, &d)
	if d.RTOObjectiveMs != target.RTOObjectiveMs || d.RPOObjectiveMs != target.RPOObjectiveMs {
		t.Errorf("objectives %d/%d ms, target's %d/%d ms", d.RTOObjectiveMs, d.RPOObjectiveMs, target.RTOObjectiveMs, target.RPOObjectiveMs)
	}
	var list api.DrillList
	k.ok("GET", "/drills", api.ScopeRead, nil, http.StatusOK, &list)
	if !slices.ContainsFunc(list.Drills, func(x domain.Drill) bool { return x.ID == d.ID }) {
		t.Errorf("drill %s not listed", d.ID)
	}
	k.ok("POST", "/drills/"+d.ID+"/approve", api.ScopeAdmin, map[string]any{"step": "start", "comment": "contract"}, http.StatusOK, &d)
	if len(d.Approvals) != 1 || d.Approvals[0].Step != "start" || d.Approvals[0].Decision != "approved" {
		t.Errorf("after the start approval: %+v", d.Approvals)
	}
	k.awaitDrill(d.ID, domain.ApprovalComplete, &d)
	if !d.Measured || d.RTOMs <= 0 {
		t.Errorf("awaiting completion unmeasured: %+v", d)
	}
	k.ok("POST", "/drills/"+d.ID+"/approve", api.ScopeAdmin, map[string]any{"step": "complete"}, http.StatusOK, &d)
	k.eventually("the drill finished", func() (bool, string) {
		k.ok("GET", "/drills/"+d.ID, api.ScopeRead, nil, http.StatusOK, &d)
		k.checkDrillEnd(d)
		return d.State == domain.DrillPassed || d.State == domain.DrillFailed, string(d.State) + " " + d.Step
	})
	if !d.CleanedUp || len(d.Approvals) != 2 || d.Passed != (d.State == domain.DrillPassed) {
		t.Errorf("finished %+v", d)
	}
	k.problem("POST", "/drills/"+d.ID+"/abort", api.ScopeAdmin, map[string]any{"reason": "late"}, http.StatusConflict, api.CodeConflict)

	var a domain.Drill
	k.ok("POST", "/drills", api.ScopeAdmin, map[string]any{}, http.StatusAccepted, &a)
	if a.Target != target.Name {
		t.Errorf("a drill without target runs on %q, want the default %q", a.Target, target.Name)
	}
	k.awaitDrill(a.ID, domain.ApprovalStart, &a)
	k.ok("POST", "/drills/"+a.ID+"/abort", api.ScopeAdmin, map[string]any{"reason": "contract"}, http.StatusOK, &a)
	k.eventually("the drill aborted", func() (bool, string) {
		k.ok("GET", "/drills/"+a.ID, api.ScopeRead, nil, http.StatusOK, &a)
		k.checkDrillEnd(a)
		if a.State == domain.DrillCleaningUp {
			// Its outcome is settled: another abort is refused.
			k.problem("POST", "/drills/"+a.ID+"/abort", api.ScopeAdmin, map[string]any{"reason": "again"}, http.StatusConflict, api.CodeConflict)
		}
		return a.State == domain.DrillAborted, string(a.State) + " " + a.Step
	})
	if !a.CleanedUp || !strings.Contains(a.Reason, "contract") {
		t.Errorf("aborted %+v", a)
	}
}

// checkDrillEnd: a drill reads a final state only once it has ended
// (finished_at_ms set, clean-up done or failed); while its clean-up and
// report still run it reads cleaning_up, without finished_at_ms.
func (k *contractClient) checkDrillEnd(d domain.Drill) {
	k.t.Helper()
	switch d.State {
	case domain.DrillPassed, domain.DrillFailed, domain.DrillRejected, domain.DrillAborted, domain.DrillCancelled:
		if d.FinishedAtMs == 0 {
			k.t.Errorf("drill %s reads %s before it has ended (finished_at_ms 0, step %s)", d.ID, d.State, d.Step)
		}
	case domain.DrillCleaningUp:
		if d.FinishedAtMs != 0 {
			k.t.Errorf("drill %s is cleaning up with finished_at_ms %d", d.ID, d.FinishedAtMs)
		}
	}
}

func (k *contractClient) awaitDrill(id, step string, d *domain.Drill) {
	k.eventually("drill "+id+" awaiting "+step, func() (bool, string) {
		k.ok("GET", "/drills/"+id, api.ScopeRead, nil, http.StatusOK, d)
		return d.State == domain.DrillAwaiting && d.Awaiting == step, string(d.State) + " " + d.Step + " " + d.Reason
	})
}

// checkTaskTypes: every task type of the catalogue once, with its options,
// and the drivers of the targets among the drivers of some task.
func checkTaskTypes(t *testing.T, types []api.TaskTypeInfo, targets []api.TargetInfo) {
	t.Helper()
	var names []string
	drivers := map[string]bool{}
	for _, tt := range types {
		names = append(names, tt.Name)
		info, ok := domain.Info(domain.TaskType(tt.Name))
		if !ok {
			t.Errorf("task type %s is not in the catalogue", tt.Name)
			continue
		}
		if tt.Title != info.Title || len(tt.Options) != len(info.Options) {
			t.Errorf("task type %s: title %q, %d options; catalogue %q, %d", tt.Name, tt.Title, len(tt.Options), info.Title, len(info.Options))
		}
		for _, d := range tt.Drivers {
			drivers[d] = true
		}
	}
	var want []string
	for _, tt := range domain.AllTaskTypes() {
		want = append(want, string(tt))
	}
	if !slices.Equal(names, want) {
		t.Errorf("task types %v, want %v", names, want)
	}
	for _, ti := range targets {
		if !drivers[ti.Driver] {
			t.Errorf("target %s: driver %s runs no task type", ti.Name, ti.Driver)
		}
	}
	// Both engines drill (docs/DR_DRILL.md).
	for _, tt := range types {
		if tt.Name == string(domain.TaskDisasterRecoveryDrill) {
			for _, ti := range targets {
				if !slices.Contains(tt.Drivers, ti.Driver) {
					t.Errorf("disaster_recovery_drill: drivers %v lack %s (target %s)", tt.Drivers, ti.Driver, ti.Name)
				}
			}
		}
	}
}

func checkHealth(t *testing.T, h api.HealthReport) {
	t.Helper()
	levels := []string{api.HealthOK, api.HealthDegraded, api.HealthCritical}
	if !slices.Contains(levels, h.OverallStatus) || len(h.Modules) == 0 {
		t.Errorf("health %+v", h)
		return
	}
	worst := 0
	names := map[string]bool{}
	for _, m := range h.Modules {
		names[m.Name] = true
		i := slices.Index(levels, m.Status)
		if i < 0 || m.Message == "" {
			t.Errorf("module %+v", m)
		}
		worst = max(worst, i)
	}
	if h.OverallStatus != levels[worst] {
		t.Errorf("overall %s, worst module %s", h.OverallStatus, levels[worst])
	}
	if !names["temporal"] || !names["jobs"] {
		t.Errorf("modules %v lack temporal or jobs", names)
	}
}

// boundedIntOption finds an integer option with a lower bound above the
// smallest int, as [task, option], and its minimum.
func boundedIntOption(types []api.TaskTypeInfo) ([2]string, float64, bool) {
	for _, tt := range types {
		names := make([]string, 0, len(tt.Options))
		for n := range tt.Options {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			o := tt.Options[n]
			if o.Type == "integer" && o.Min != nil && *o.Min >= 1 {
				return [2]string{tt.Name, n}, *o.Min, true
			}
		}
	}
	return [2]string{}, 0, false
}

// unsupportedTask finds a target and a task its driver cannot run.
func unsupportedTask(types []api.TaskTypeInfo, targets []api.TargetInfo) (string, string, bool) {
	for _, ti := range targets {
		for _, tt := range types {
			if !slices.Contains(tt.Drivers, ti.Driver) {
				return ti.Name, tt.Name, true
			}
		}
	}
	return "", "", false
}

// contractClient sends the suite's requests.
type contractClient struct {
	t *testing.T
	c Contract
}

func (k *contractClient) at(t *testing.T) *contractClient { return &contractClient{t: t, c: k.c} }

// send sends one request; body is JSON-encoded when not nil.
func (k *contractClient) send(method, path, scope string, body any) (int, http.Header, []byte) {
	k.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			k.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(k.t.Context(), method, strings.TrimRight(k.c.BaseURL, "/")+api.BasePath+path, rd)
	if err != nil {
		k.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := k.c.Tokens[scope]; tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		k.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		k.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// ok sends a request that must be answered status, decoding the body into
// out (when not nil).
func (k *contractClient) ok(method, path, scope string, body any, status int, out any) {
	k.t.Helper()
	got, _, b := k.send(method, path, scope, body)
	if got != status {
		k.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, got, status, clip(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			k.t.Fatalf("%s %s: decode %T: %v; body %s", method, path, out, err, clip(b))
		}
	}
}

// problem sends a request that must be refused with status and a problem
// of code (any code when code is empty).
func (k *contractClient) problem(method, path, scope string, body any, status int, code string) api.Problem {
	k.t.Helper()
	got, h, b := k.send(method, path, scope, body)
	var p api.Problem
	if got != status || h.Get("Content-Type") != api.ProblemContentType || json.Unmarshal(b, &p) != nil {
		k.t.Errorf("%s %s: status %d (%s), want a %d problem; body %s", method, path, got, h.Get("Content-Type"), status, clip(b))
		return p
	}
	if code != "" && p.Code != code {
		k.t.Errorf("%s %s: problem code %s, want %s (%s)", method, path, p.Code, code, p.Detail)
	}
	return p
}

// eventually polls cond until it holds or the contract's timeout passes.
func (k *contractClient) eventually(what string, cond func() (bool, string)) {
	k.t.Helper()
	deadline := time.Now().Add(k.c.Timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("%s: not within %s; last: %s", what, k.c.Timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkNextRun: an enabled schedule's next run is the first time after its
// last write (or after now: the real service reads it from Temporal when
// answering) that its cron expression fires in its zone.
func (k *contractClient) checkNextRun(s domain.Schedule) {
	k.t.Helper()
	if !s.Enabled {
		if s.NextRunMs != 0 {
			k.t.Errorf("disabled schedule with next_run_ms %d", s.NextRunMs)
		}
		return
	}
	var want []int64
	for _, after := range []time.Time{time.UnixMilli(s.UpdatedAtMs), time.Now()} {
		next, err := s.NextRun(after)
		if err != nil {
			k.t.Errorf("schedule %s: %v", s.ID, err)
			return
		}
		want = append(want, next.UnixMilli())
	}
	if !slices.Contains(want, s.NextRunMs) {
		k.t.Errorf("next_run_ms %d (%s), want %v for %q in %s after %d", s.NextRunMs,
			time.UnixMilli(s.NextRunMs).UTC().Format(time.RFC3339), want, s.CronExpression, s.Timezone, s.UpdatedAtMs)
	}
}
