package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/domain"
)

func seedJobs(e *env, n int) {
	for i := 0; i < n; i++ {
		state := domain.StateSucceeded
		if i%3 == 0 {
			state = domain.StateRunning
		}
		e.fake.SeedJob(domain.Job{
			ID: fmt.Sprintf("daily-maintenance-2025-01-%02dT02:00:00Z", i+1), RunID: "r", ScheduleID: "daily-maintenance",
			ScheduleName: "Daily Maintenance", Target: "orders", State: state, TriggeredBy: "schedule",
			StartedAtMs: int64(1_700_000_000_000 + i*86_400_000),
			Tasks:       []domain.TaskRun{{TaskType: domain.TaskQuotaCheck, State: state}}, // nil details render as {}
		})
	}
}

func TestListJobs(t *testing.T) {
	e := newEnv(t)
	var page api.JobPage
	e.req(http.MethodGet, base+"/jobs", "").ok(http.StatusOK).decode(&page)
	if page.Count != 0 || page.Jobs == nil || page.NextPageToken != "" {
		t.Fatalf("empty page %+v", page)
	}
	if f := e.fake.LastFilter(); f.Limit != api.DefaultJobLimit || f.ActiveOnly || f.ScheduleID != "" || f.State != "" {
		t.Fatalf("default filter %+v", f)
	}

	seedJobs(e, 7)
	e.req(http.MethodGet, base+"/jobs?limit=3", "").ok(http.StatusOK).decode(&page)
	if page.Count != 3 || page.NextPageToken == "" || page.Jobs[0].ID != "daily-maintenance-2025-01-07T02:00:00Z" {
		t.Fatalf("page 1 %+v", page)
	}
	seen := page.Count
	for page.NextPageToken != "" {
		var next api.JobPage
		e.req(http.MethodGet, base+"/jobs?limit=3&next_page_token="+url.QueryEscape(page.NextPageToken), "").ok(http.StatusOK).decode(&next)
		seen += next.Count
		page = next
	}
	if seen != 7 {
		t.Fatalf("paged through %d jobs, want 7", seen)
	}

	e.req(http.MethodGet, base+"/jobs?active_only=true&schedule_id=daily-maintenance&state=running&limit=200", "").ok(http.StatusOK).decode(&page)
	e.req(http.MethodGet, base+"/jobs?limit=201", "").problem(http.StatusBadRequest, api.CodeInvalidParameter)
	if f := e.fake.LastFilter(); !f.ActiveOnly || f.ScheduleID != "daily-maintenance" || f.State != domain.StateRunning || f.Limit != 200 {
		t.Fatalf("filter %+v", f)
	}
	if page.Count != 3 {
		t.Fatalf("running jobs %d, want 3", page.Count)
	}
	for _, j := range page.Jobs {
		if j.Tasks[0].Details == nil {
			t.Fatal("details rendered as null")
		}
	}
	e.fake.FailWith(apitest.MethodListJobs, domain.ErrUnavailable)
	e.req(http.MethodGet, base+"/jobs", "").problem(http.StatusServiceUnavailable, api.CodeUnavailable)
}

func TestListJobsBadParameters(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ query, field string }{
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=ten", "limit"},
		{"limit=-1", "limit"},
		{"limit=1&limit=2", "limit"},
		{"active_only=maybe", "active_only"},
		{"state=done", "state"},
		{"schedule_id=..%2Fetc", "schedule_id"},
		{"schedule_id=UPPER", "schedule_id"},
		{"next_page_token=%00", "next_page_token"},
		{"scheduleid=x", "scheduleid"},
		{"active_only=true&state=failed", "state"},
	} {
		p := e.req(http.MethodGet, base+"/jobs?"+tc.query, "").problem(http.StatusBadRequest, api.CodeInvalidParameter)
		if p.Field != tc.field {
			t.Errorf("%s: field %q, want %q", tc.query, p.Field, tc.field)
		}
	}
	// A bad token found by the service is a validation error, not a 500.
	p := e.req(http.MethodGet, base+"/jobs?next_page_token=zzz", "").problem(http.StatusBadRequest, api.CodeValidationFailed)
	if p.Field != "next_page_token" {
		t.Errorf("field %q", p.Field)
	}
}

func TestGetJob(t *testing.T) {
	e := newEnv(t)
	seedJobs(e, 1)
	id := "daily-maintenance-2025-01-01T02:00:00Z"
	j := e.req(http.MethodGet, base+"/jobs/"+id, "").ok(http.StatusOK).job()
	if j.ID != id || j.State != domain.StateRunning || len(j.Tasks) != 1 {
		t.Fatalf("job %+v", j)
	}
	e.req(http.MethodGet, base+"/jobs/unknown-job", "").problem(http.StatusNotFound, api.CodeNotFound)
	e.req(http.MethodGet, base+"/jobs/..", "").problem(http.StatusBadRequest, api.CodeInvalidID)
	e.req(http.MethodGet, base+"/jobs/a..b", "").problem(http.StatusBadRequest, api.CodeInvalidID)
	e.req(http.MethodGet, base+"/jobs/%2Fetc%2Fpasswd", "").problem(http.StatusBadRequest, api.CodeInvalidID)
}

func TestCancelJob(t *testing.T) {
	e := newEnv(t)
	e.seedNightly()
	j := e.req(http.MethodPost, base+"/schedules/nightly/run", "").ok(http.StatusAccepted).job()
	// The answer is the job when the cancellation was requested; it
	// reads as cancelled afterwards.
	c := e.req(http.MethodPost, base+"/jobs/"+j.ID+"/cancel", `{}`).ok(http.StatusOK).job()
	if c.State != domain.StateRunning {
		t.Fatalf("state %s", c.State)
	}
	if g := e.req(http.MethodGet, base+"/jobs/"+j.ID, "").ok(http.StatusOK).job(); g.State != domain.StateCancelled {
		t.Fatalf("state after cancel %s", g.State)
	}
	p := e.req(http.MethodPost, base+"/jobs/"+j.ID+"/cancel", "").problem(http.StatusConflict, api.CodeConflict)
	if p.Detail == "" {
		t.Error("409 without detail")
	}
	e.req(http.MethodPost, base+"/jobs/ghost/cancel", "").problem(http.StatusNotFound, api.CodeNotFound)
	e.req(http.MethodPost, base+"/jobs/x/cancel", `{"reason":"x"}`).problem(http.StatusBadRequest, api.CodeUnknownField)
	e.req(http.MethodPost, base+"/jobs/x/cancel", `[]`).problem(http.StatusBadRequest, api.CodeInvalidJSON)
	e.req(http.MethodPost, base+"/jobs/x/cancel", `x=1`, "Content-Type", "application/x-www-form-urlencoded").problem(http.StatusUnsupportedMediaType, api.CodeUnsupportedMediaType)
	if n := e.fake.Counts().Cancels; n != 1 {
		t.Fatalf("cancels %d", n)
	}
}

// TestJobWait covers the request side of the long poll: the fake answers a
// wait at once, so what is checked here is the parsing and the document;
// testsuite/wait_test.go holds a request on the real server.
func TestJobWait(t *testing.T) {
	e := newEnv(t)
	e.seedNightly()
	j := e.req(http.MethodPost, base+"/schedules/nightly/run", `{"wait":"2s"}`).ok(http.StatusAccepted).job()
	if j.ID == "" || j.State != domain.StateRunning {
		t.Fatalf("run with wait: %+v", j)
	}
	for _, w := range []string{"0s", "500ms", "30s", "1m"} {
		if got := e.req(http.MethodGet, base+"/jobs/"+url.PathEscape(j.ID)+"?wait="+w, "").ok(http.StatusOK).job(); got.ID != j.ID {
			t.Fatalf("wait=%s answered job %q", w, got.ID)
		}
	}
	for _, w := range []string{"30", "-1s", "61s", "2h", "soon", ""} {
		p := e.req(http.MethodGet, base+"/jobs/"+url.PathEscape(j.ID)+"?wait="+url.QueryEscape(w), "").problem(http.StatusBadRequest, api.CodeInvalidParameter)
		if p.Field != "wait" {
			t.Fatalf("wait=%q: field %q", w, p.Field)
		}
	}
	if p := e.req(http.MethodGet, base+"/jobs/"+url.PathEscape(j.ID)+"?wait=1s&wait=2s", "").problem(http.StatusBadRequest, api.CodeInvalidParameter); p.Field != "wait" {
		t.Fatalf("repeated wait: field %q", p.Field)
	}
	e.req(http.MethodGet, base+"/jobs/ghost-1?wait=1s", "").problem(http.StatusNotFound, api.CodeNotFound)
	for _, body := range []string{`{"wait":"forever"}`, `{"wait":"90s"}`, `{"wait":30}`} {
		if p := e.req(http.MethodPost, base+"/schedules/nightly/run", body).problem(http.StatusBadRequest, api.CodeValidationFailed); p.Field != "wait" {
			t.Fatalf("run %s: field %q", body, p.Field)
		}
	}
}
