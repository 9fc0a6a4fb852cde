package api_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/domain"
)

func TestCreateScheduleAppliesDefaults(t *testing.T) {
	e := newEnv(t)
	r := e.req(http.MethodPost, base+"/schedules", `{"name":"  Nightly vacuum ","tasks":["metrics_collection","mvcc_cleanup"]}`).ok(http.StatusCreated)
	s := r.schedule()
	want := domain.Schedule{
		ID: "nightly-vacuum",
		ScheduleSpec: domain.ScheduleSpec{
			Name: "Nightly vacuum", Target: "orders", Frequency: domain.FrequencyDaily, CronExpression: "0 2 * * *",
			Timezone: "UTC", Tasks: []domain.TaskType{domain.TaskMetricsCollection, domain.TaskMVCCCleanup},
			Enabled: true, EnforceWindow: true, WindowStartHour: 2, WindowEndHour: 6,
		},
		CreatedBy: api.AnonymousPrincipal, UpdatedBy: api.AnonymousPrincipal,
	}
	if s.ID != want.ID || s.Name != want.Name || s.Target != want.Target || s.Frequency != want.Frequency ||
		s.CronExpression != want.CronExpression || s.Timezone != want.Timezone || !slices.Equal(s.Tasks, want.Tasks) ||
		!s.Enabled || !s.EnforceWindow || s.WindowStartHour != 2 || s.WindowEndHour != 6 || s.HaltOnTaskFailure ||
		s.CreatedBy != want.CreatedBy || s.UpdatedBy != want.UpdatedBy || s.TaskOptions == nil {
		t.Fatalf("created %+v", s)
	}
	if loc := r.Header.Get("Location"); loc != base+"/schedules/nightly-vacuum" {
		t.Errorf("Location %q", loc)
	}
	if c := e.fake.Counts(); c.Creates != 1 {
		t.Errorf("creates %d", c.Creates)
	}
}

func TestCreateScheduleAllFields(t *testing.T) {
	e := newEnv(t)
	body := `{
		"name": "Ünïcode — 夜間メンテ", "description": "weekly deep clean", "target": "analytics",
		"frequency": "custom", "cron_expression": "30  1 * * 1-5", "timezone": "Europe/Berlin",
		"tasks": ["mvcc_cleanup", "backup_verification"],
		"task_options": {"mvcc_cleanup": {"parallelism": 4, "lock_timeout_ms": 5000}, "backup_verification": {"method": "pg_dump"}},
		"enabled": false, "enforce_window": false, "window_start_hour": 22, "window_end_hour": 4,
		"halt_on_task_failure": true
	}`
	s := e.req(http.MethodPost, base+"/schedules", body).ok(http.StatusCreated).schedule()
	if s.Name != "Ünïcode — 夜間メンテ" || s.Target != "analytics" || s.CronExpression != "30 1 * * 1-5" ||
		s.Timezone != "Europe/Berlin" || s.Enabled || s.EnforceWindow || s.WindowStartHour != 22 || s.WindowEndHour != 4 ||
		!s.HaltOnTaskFailure || s.Description != "weekly deep clean" {
		t.Fatalf("created %+v", s)
	}
	if got := s.TaskOptions[domain.TaskMVCCCleanup]["parallelism"]; got != float64(4) {
		t.Errorf("parallelism %v (%T)", got, got)
	}
	if !domain.ValidID(s.ID) {
		t.Errorf("id %q", s.ID)
	}
}

func TestCreateScheduleIgnoresReadOnlyFieldsAndTakesPrincipal(t *testing.T) {
	auth := func(c *gin.Context) { api.SetPrincipal(c, "alice"); c.Next() }
	e := newEnvWith(t, api.Options{Authenticator: auth})
	body := `{"id":"evil","created_by":"mallory","updated_by":"mallory","created_at_ms":1,"next_run_ms":5,
		"last_run_state":"failed","last_job_id":"x","last_run_ms":3,"updated_at_ms":2,
		"name":"Roundtrip","tasks":["quota_check"]}`
	s := e.req(http.MethodPost, base+"/schedules", body).ok(http.StatusCreated).schedule()
	if s.ID != "roundtrip" || s.CreatedBy != "alice" || s.UpdatedBy != "alice" || s.CreatedAtMs == 1 || s.LastJobID != "" {
		t.Fatalf("read-only fields taken from the body: %+v", s)
	}
	// A GET body can be sent back unchanged with PUT.
	got := e.req(http.MethodGet, base+"/schedules/roundtrip", "").ok(http.StatusOK)
	put := e.req(http.MethodPut, base+"/schedules/roundtrip", string(got.Body)).ok(http.StatusOK).schedule()
	if put.Name != "Roundtrip" || put.UpdatedBy != "alice" {
		t.Fatalf("put %+v", put)
	}
}

func TestCreateScheduleDuplicateNameIsConflict(t *testing.T) {
	e := newEnv(t)
	e.seedNightly()
	p := e.req(http.MethodPost, base+"/schedules", `{"name":"Nightly","tasks":["quota_check"]}`).problem(http.StatusConflict, api.CodeConflict)
	if p.Detail == "" || p.RequestID == "" || p.Type != "urn:themis:problem:conflict" || p.Title != "Conflict" {
		t.Fatalf("problem %+v", p)
	}
}

func TestCreateScheduleServiceErrors(t *testing.T) {
	secret := errors.New("dial tcp 10.0.0.5:7233: password=hunter2")
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("%w: %v", domain.ErrUnavailable, secret), http.StatusServiceUnavailable, api.CodeUnavailable},
		{secret, http.StatusInternalServerError, api.CodeInternal},
		{fmt.Errorf("%w: nope", domain.ErrForbidden), http.StatusForbidden, api.CodeForbidden},
		{&domain.ValidationError{Field: "target", Message: "unknown"}, http.StatusBadRequest, api.CodeValidationFailed},
	} {
		e := newEnv(t)
		e.fake.FailWith(apitest.MethodCreateSchedule, tc.err)
		r := e.req(http.MethodPost, base+"/schedules", `{"name":"X","tasks":["quota_check"]}`)
		p := r.problem(tc.status, tc.code)
		if slices.Contains([]int{500, 503}, tc.status) && (strings.Contains(string(r.Body), "hunter2") || strings.Contains(string(r.Body), "10.0.0.5")) {
			t.Errorf("%d leaks the error text: %s", tc.status, r.Body)
		}
		if tc.status == 503 && r.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		if tc.code == api.CodeValidationFailed && p.Field != "target" {
			t.Errorf("field %q", p.Field)
		}
	}
}

func TestListSchedules(t *testing.T) {
	e := newEnv(t)
	var empty api.ScheduleList
	e.req(http.MethodGet, base+"/schedules", "").ok(http.StatusOK).decode(&empty)
	if empty.Count != 0 || empty.Schedules == nil {
		t.Fatalf("empty list %+v", empty)
	}
	e.fake.SeedDefaults()
	var list api.ScheduleList
	e.req(http.MethodGet, base+"/schedules", "").ok(http.StatusOK).decode(&list)
	if list.Count != 4 || len(list.Schedules) != 4 || list.Schedules[0].Name != "Daily Maintenance" {
		t.Fatalf("list %+v", list)
	}
	e.fake.FailWith(apitest.MethodListSchedules, domain.ErrUnavailable)
	e.req(http.MethodGet, base+"/schedules", "").problem(http.StatusServiceUnavailable, api.CodeUnavailable)
}

func TestGetSchedule(t *testing.T) {
	e := newEnv(t)
	e.fake.SeedDefaults()
	s := e.req(http.MethodGet, base+"/schedules/quarterly-maintenance", "").ok(http.StatusOK).schedule()
	if s.Name != "Quarterly Maintenance" || s.CronExpression != "0 0 1 1,4,7,10 *" || !s.HaltOnTaskFailure || s.Enabled {
		t.Fatalf("got %+v", s)
	}
	e.req(http.MethodGet, base+"/schedules/nope", "").problem(http.StatusNotFound, api.CodeNotFound)
	p := e.req(http.MethodGet, base+"/schedules/Bad_ID", "").problem(http.StatusBadRequest, api.CodeInvalidID)
	if p.Field != "id" {
		t.Errorf("field %q", p.Field)
	}
}

func TestReplaceSchedule(t *testing.T) {
	e := newEnv(t)
	e.fake.SeedDefaults() // disabled
	body := `{"name":"Daily Maintenance","tasks":["quota_check"],"window_start_hour":3,"window_end_hour":5}`
	s := e.req(http.MethodPut, base+"/schedules/daily-maintenance", body).ok(http.StatusOK).schedule()
	if s.Enabled {
		t.Error("PUT without enabled resumed a paused schedule")
	}
	if s.CronExpression != "0 3 * * *" || s.Description != "" || len(s.Tasks) != 1 || s.UpdatedBy != api.AnonymousPrincipal {
		t.Fatalf("replaced %+v", s)
	}
	s = e.req(http.MethodPut, base+"/schedules/daily-maintenance", `{"name":"Daily Maintenance","tasks":["quota_check"],"enabled":true}`).ok(http.StatusOK).schedule()
	if !s.Enabled || s.WindowStartHour != 2 {
		t.Fatalf("enabled not applied or default not restored: %+v", s)
	}
	s = e.req(http.MethodPut, base+"/schedules/daily-maintenance", `{"name":"Daily Maintenance","tasks":["quota_check"]}`).ok(http.StatusOK).schedule()
	if !s.Enabled {
		t.Fatal("PUT without enabled paused an enabled schedule")
	}
	e.req(http.MethodPut, base+"/schedules/ghost", body).problem(http.StatusNotFound, api.CodeNotFound)
	e.req(http.MethodPut, base+"/schedules/daily-maintenance", `{"name":"Weekly Maintenance","tasks":["quota_check"]}`).problem(http.StatusConflict, api.CodeConflict)
	before := e.fake.Counts().UpdateAttempts
	e.req(http.MethodPut, base+"/schedules/daily-maintenance", `{"tasks":["quota_check"]}`).problem(http.StatusBadRequest, api.CodeValidationFailed)
	if e.fake.Counts().UpdateAttempts != before {
		t.Error("invalid PUT reached the service")
	}
}

func TestPatchSchedule(t *testing.T) {
	e := newEnv(t)
	e.fake.SeedDefaults()
	path := base + "/schedules/weekly-maintenance"

	s := e.req(http.MethodPatch, path, `{"enabled":true}`).ok(http.StatusOK).schedule()
	if !s.Enabled || s.Name != "Weekly Maintenance" || len(s.Tasks) != 4 {
		t.Fatalf("enable: %+v", s)
	}
	// Moving the window re-derives the cron expression.
	s = e.req(http.MethodPatch, path, `{"window_start_hour":4,"window_end_hour":7}`).ok(http.StatusOK).schedule()
	if s.CronExpression != "0 4 * * 0" {
		t.Fatalf("cron %q", s.CronExpression)
	}
	// Switching to custom without a cron keeps the current one.
	s = e.req(http.MethodPatch, path, `{"frequency":"custom"}`).ok(http.StatusOK).schedule()
	if s.Frequency != domain.FrequencyCustom || s.CronExpression != "0 4 * * 0" {
		t.Fatalf("custom: %+v", s)
	}
	s = e.req(http.MethodPatch, path, `{"cron_expression":"15 3 * * 6"}`, "Content-Type", "application/merge-patch+json").ok(http.StatusOK).schedule()
	if s.CronExpression != "15 3 * * 6" {
		t.Fatalf("cron %q", s.CronExpression)
	}
	// Back to a named frequency drops the custom cron.
	s = e.req(http.MethodPatch, path, `{"frequency":"monthly"}`).ok(http.StatusOK).schedule()
	if s.CronExpression != "0 4 1 * *" {
		t.Fatalf("monthly cron %q", s.CronExpression)
	}
	// A cron for a named frequency is refused.
	p := e.req(http.MethodPatch, path, `{"cron_expression":"1 1 * * *"}`).problem(http.StatusBadRequest, api.CodeValidationFailed)
	if p.Field != "cron_expression" {
		t.Errorf("field %q", p.Field)
	}
	s = e.req(http.MethodPatch, path, `{"task_options":{"mvcc_cleanup":{"parallelism":3}},"description":"d"}`).ok(http.StatusOK).schedule()
	if s.Description != "d" || s.TaskOptions[domain.TaskMVCCCleanup]["parallelism"] != float64(3) {
		t.Fatalf("options %+v", s)
	}

	writes := e.fake.Counts().Updates
	s = e.req(http.MethodPatch, path, `{}`).ok(http.StatusOK).schedule()
	if e.fake.Counts().Updates != writes || s.Description != "d" {
		t.Error("empty patch wrote")
	}
	e.req(http.MethodPatch, path, `{"tasks":["nope"]}`).problem(http.StatusBadRequest, api.CodeValidationFailed)
	e.req(http.MethodPatch, path, `{"name":"Daily Maintenance"}`).problem(http.StatusConflict, api.CodeConflict)
	e.req(http.MethodPatch, base+"/schedules/ghost", `{"enabled":true}`).problem(http.StatusNotFound, api.CodeNotFound)
	if e.fake.Counts().Updates != writes {
		t.Error("a refused patch wrote")
	}
}

func TestDeleteSchedule(t *testing.T) {
	e := newEnv(t)
	e.seedNightly()
	var d api.Deleted
	e.req(http.MethodDelete, base+"/schedules/nightly", "").ok(http.StatusOK).decode(&d)
	if d.ID != "nightly" || !d.Deleted {
		t.Fatalf("deleted %+v", d)
	}
	e.req(http.MethodDelete, base+"/schedules/nightly", "").problem(http.StatusNotFound, api.CodeNotFound)
	e.req(http.MethodDelete, base+"/schedules/%2e%2e", "").problem(http.StatusBadRequest, api.CodeInvalidID)
	if c := e.fake.Counts(); c.Deletes != 1 {
		t.Fatalf("deletes %d", c.Deletes)
	}
}

func TestRunSchedule(t *testing.T) {
	e := newEnv(t)
	e.seedNightly()
	r := e.req(http.MethodPost, base+"/schedules/nightly/run", "").ok(http.StatusAccepted)
	j := r.job()
	if j.ScheduleID != "nightly" || j.State != domain.StateRunning || j.Forced || len(j.Tasks) != 2 || j.TriggeredBy != api.AnonymousPrincipal {
		t.Fatalf("job %+v", j)
	}
	if r.Header.Get("Location") != base+"/jobs/"+j.ID {
		t.Errorf("Location %q", r.Header.Get("Location"))
	}
	// Active run: 409 naming the active job.
	if p := e.req(http.MethodPost, base+"/schedules/nightly/run", `{"force":true}`).problem(http.StatusConflict, api.CodeConflict); p.ActiveJobID != j.ID {
		t.Errorf("active_job_id %q, want %q", p.ActiveJobID, j.ID)
	}
	e.req(http.MethodPost, base+"/jobs/"+j.ID+"/cancel", "").ok(http.StatusOK)

	j = e.req(http.MethodPost, base+"/schedules/nightly/run", `{"force":true}`).ok(http.StatusAccepted).job()
	if !j.Forced {
		t.Error("force not passed")
	}
	e.req(http.MethodPost, base+"/schedules/ghost/run", `{}`).problem(http.StatusNotFound, api.CodeNotFound)
	e.fake.FailWith(apitest.MethodRunSchedule, fmt.Errorf("%w: forced runs need maintenance:admin", domain.ErrForbidden))
	p := e.req(http.MethodPost, base+"/schedules/nightly/run", `{"force":true}`).problem(http.StatusForbidden, api.CodeForbidden)
	if !strings.Contains(p.Detail, "maintenance:admin") {
		t.Errorf("detail %q", p.Detail)
	}
}

// A write sent but not seen stored is a 503 write_unconfirmed with its own
// detail, never the intended state.
func TestUpdateUnconfirmedIs503(t *testing.T) {
	e := newEnv(t)
	e.seedNightly()
	e.fake.FailWith(apitest.MethodUpdateSchedule, fmt.Errorf("%w: the update of schedule nightly was sent to Temporal but not seen stored", domain.ErrUnconfirmed))
	p := e.req(http.MethodPatch, base+"/schedules/nightly", `{"enabled":false}`).problem(http.StatusServiceUnavailable, api.CodeWriteUnconfirmed)
	if !strings.Contains(p.Detail, "not seen stored") {
		t.Errorf("detail %q", p.Detail)
	}
}
