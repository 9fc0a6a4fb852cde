package api_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/internal/audit"
)

func TestWritesAreAudited(t *testing.T) {
	e := newEnv(t)
	e.seedNightly()
	type want struct{ action, resource, outcome, detail string }
	check := func(w want, status int) {
		t.Helper()
		ev := e.lastEvent()
		if ev.Action != w.action || ev.Resource != w.resource || ev.Outcome != w.outcome || ev.Status != status ||
			ev.Principal != api.AnonymousPrincipal || ev.RequestID == "" || ev.Time.IsZero() || !strings.Contains(ev.Detail, w.detail) {
			t.Errorf("event %+v, want %+v status %d", ev, w, status)
		}
	}
	s := e.req(http.MethodPost, base+"/schedules", `{"name":"Audit me","tasks":["quota_check"]}`).ok(http.StatusCreated).schedule()
	check(want{"schedule.create", "schedule/" + s.ID, "success", `name="Audit me"`}, 201)
	e.req(http.MethodPost, base+"/schedules", `{"name":"Audit me","tasks":["quota_check"]}`).problem(http.StatusConflict, api.CodeConflict)
	check(want{"schedule.create", "schedules", "failure", "conflict"}, 409)
	e.req(http.MethodPatch, base+"/schedules/nightly", `{"enabled":false}`).ok(http.StatusOK)
	check(want{"schedule.disable", "schedule/nightly", "success", "fields: enabled"}, 200)
	e.req(http.MethodPatch, base+"/schedules/nightly", `{"enabled":true,"description":"x"}`).ok(http.StatusOK)
	check(want{"schedule.enable", "schedule/nightly", "success", "fields: description, enabled"}, 200)
	e.req(http.MethodPatch, base+"/schedules/nightly", `{"description":"y"}`).ok(http.StatusOK)
	check(want{"schedule.patch", "schedule/nightly", "success", "fields: description"}, 200)
	e.req(http.MethodPatch, base+"/schedules/nightly", `{"enabled":"no"}`).problem(http.StatusBadRequest, api.CodeValidationFailed)
	check(want{"schedule.patch", "schedule/nightly", "failure", "validation_failed (enabled)"}, 400)
	e.req(http.MethodPut, base+"/schedules/nightly", `{"name":"Nightly","tasks":["quota_check"]}`).ok(http.StatusOK)
	check(want{"schedule.update", "schedule/nightly", "success", "replaced"}, 200)
	j := e.req(http.MethodPost, base+"/schedules/nightly/run", `{"force":true}`).ok(http.StatusAccepted).job()
	check(want{"schedule.run", "schedule/nightly", "success", "force=true job=" + j.ID}, 202)
	e.req(http.MethodPost, base+"/jobs/"+j.ID+"/cancel", "").ok(http.StatusOK)
	check(want{"job.cancel", "job/" + j.ID, "success", "state=running"}, 200) // the state when the cancel was requested
	e.req(http.MethodPost, base+"/jobs/"+j.ID+"/cancel", "").problem(http.StatusConflict, api.CodeConflict)
	check(want{"job.cancel", "job/" + j.ID, "failure", "conflict"}, 409)
	e.req(http.MethodDelete, base+"/schedules/"+s.ID, "").ok(http.StatusOK)
	check(want{"schedule.delete", "schedule/" + s.ID, "success", ""}, 200)
	d := e.req(http.MethodPost, base+"/drills", `{"target":"orders"}`).ok(http.StatusAccepted).drill()
	check(want{"drill.start", "drill/" + d.ID, "success", "target=orders"}, 202)
	e.req(http.MethodGet, base+"/drills/"+d.ID, "").ok(http.StatusOK)
	e.req(http.MethodPost, base+"/drills/"+d.ID+"/approve", `{"step":"start","comment":"go"}`).ok(http.StatusOK)
	check(want{"drill.approve", "drill/" + d.ID, "success", `step="start" comment="go"`}, 200)
	e.req(http.MethodPost, base+"/drills/"+d.ID+"/reject", `{"step":"start"}`).problem(http.StatusConflict, api.CodeConflict)
	check(want{"drill.reject", "drill/" + d.ID, "failure", "conflict"}, 409)

	// Reads are not audited.
	n := len(e.events())
	e.req(http.MethodGet, base+"/schedules", "").ok(http.StatusOK)
	e.req(http.MethodGet, base+"/jobs/"+j.ID, "").ok(http.StatusOK)
	e.req(http.MethodGet, base+"/drills", "").ok(http.StatusOK)
	if len(e.events()) != n {
		t.Fatalf("reads audited: %+v", e.events()[n:])
	}
	// Reading the audit log is.
	var list api.AuditList
	e.req(http.MethodGet, base+"/audit?limit=3", "").ok(http.StatusOK).decode(&list)
	if list.Count != 3 || !list.Truncated || list.Events[2].Action != "drill.reject" {
		t.Fatalf("audit list %+v", list)
	}
	if ev := e.lastEvent(); ev.Action != "audit.read" || ev.Detail != "limit=3" {
		t.Fatalf("%+v", ev)
	}
}

func TestAuditQuery(t *testing.T) {
	e := newEnv(t)
	log := e.fake.AuditLog()
	t0 := time.Date(2025, 1, 1, 2, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		if err := log.Record(t.Context(), audit.Event{Time: t0.Add(time.Duration(i) * time.Hour), Action: "schedule.create",
			Resource: "schedule/s" + strconv.Itoa(i), Outcome: "success", Status: 201}); err != nil {
			t.Fatal(err)
		}
	}
	var l api.AuditList
	e.req(http.MethodGet, base+"/audit?since=2025-01-01T04:00:00Z", "").ok(http.StatusOK).decode(&l)
	// 3 seeded events at or after 04:00 plus none of the audit.read events
	// (they are written after the answer, with the current time).
	if l.Count != 3 || l.Events[0].Resource != "schedule/s2" || l.Truncated {
		t.Fatalf("%+v", l)
	}
	ms := strconv.FormatInt(t0.Add(3*time.Hour).UnixMilli(), 10)
	e.req(http.MethodGet, base+"/audit?since="+ms+"&limit=1", "").ok(http.StatusOK).decode(&l)
	if l.Count != 1 || !l.Truncated {
		t.Fatalf("%+v", l)
	}
	// An unescaped "+" of an offset arrives as a space and is forgiven.
	e.req(http.MethodGet, base+"/audit?since=2025-01-01T05:00:00+01:00&limit=10", "").ok(http.StatusOK).decode(&l)
	if l.Count == 0 || l.Events[0].Resource != "schedule/s2" {
		t.Fatalf("offset: %+v", l)
	}
	for _, q := range []string{"since=yesterday", "since=", "limit=0", "limit=10001", "limit=x", "until=now", "limit=1&limit=2", "since=2025-13-01T00:00:00Z"} {
		p := e.req(http.MethodGet, base+"/audit?"+q, "").problem(http.StatusBadRequest, api.CodeInvalidParameter)
		if p.Field == "" {
			t.Errorf("%s: no field", q)
		}
	}
}

// The failure policy of api/audit.go: the request that could not be
// audited keeps its answer, the event goes to the error log, later writes
// are refused with 503 until the log works again, reads go on.
func TestAuditFailurePolicy(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &buf, mu: &mu}, nil))
	e := newEnvWith(t, api.Options{Logger: logger})
	e.seedNightly()
	alog := e.fake.AuditLog()
	alog.FailWith(errors.New("write /var/log/themis/audit.log: no space left on device"))

	s := e.req(http.MethodPost, base+"/schedules", `{"name":"Lost","tasks":["quota_check"]}`).ok(http.StatusCreated).schedule()
	mu.Lock()
	logged := buf.String()
	mu.Unlock()
	if !strings.Contains(logged, `"level":"ERROR"`) || !strings.Contains(logged, "audit log write failed") ||
		!strings.Contains(logged, `"action":"schedule.create"`) || !strings.Contains(logged, "schedule/"+s.ID) {
		t.Fatalf("failure not logged loudly:\n%s", logged)
	}
	// Fail closed: the next write does not reach the service.
	before := e.fake.Counts()
	r := e.req(http.MethodPatch, base+"/schedules/nightly", `{"enabled":false}`)
	r.problem(http.StatusServiceUnavailable, api.CodeUnavailable)
	if r.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	e.req(http.MethodPost, base+"/schedules/nightly/run", "").problem(http.StatusServiceUnavailable, api.CodeUnavailable)
	if c := e.fake.Counts(); c.Changes() != before.Changes() || c.UpdateAttempts != before.UpdateAttempts {
		t.Fatalf("a write passed the closed gate: %+v → %+v", before, c)
	}
	// Reads go on.
	e.req(http.MethodGet, base+"/schedules/nightly", "").ok(http.StatusOK)
	e.req(http.MethodGet, base+"/audit", "").ok(http.StatusOK)

	// The log recovers: the next write records the gap first, then itself.
	alog.FailWith(nil)
	e.req(http.MethodPatch, base+"/schedules/nightly", `{"enabled":false}`).ok(http.StatusOK)
	ev := alog.Events()
	if len(ev) < 2 || ev[len(ev)-2].Action != "audit.resume" || ev[len(ev)-1].Action != "schedule.disable" {
		t.Fatalf("events %+v", ev)
	}
	if !strings.Contains(ev[len(ev)-2].Detail, "could not be written") {
		t.Errorf("resume detail %q", ev[len(ev)-2].Detail)
	}
	e.req(http.MethodPatch, base+"/schedules/nightly", `{"enabled":true}`).ok(http.StatusOK)
	if got := alog.Events(); got[len(got)-1].Action != "schedule.enable" || got[len(got)-2].Action != "schedule.disable" {
		t.Fatalf("a second resume event: %+v", got[len(got)-2:])
	}
}

// With the real file log: events land on disk, 0600, and read back.
func TestAuditFileLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "audit.log")
	alog, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, api.Options{Audit: alog})
	e.seedNightly()
	e.req(http.MethodPatch, base+"/schedules/nightly", `{"enabled":false}`).ok(http.StatusOK)
	e.req(http.MethodPost, base+"/schedules/nightly/run", `{"force":"yes"}`).problem(http.StatusBadRequest, api.CodeValidationFailed)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	var l api.AuditList
	e.req(http.MethodGet, base+"/audit", "").ok(http.StatusOK).decode(&l)
	if l.Count != 2 || l.Events[0].Action != "schedule.disable" || l.Events[1].Action != "schedule.run" || l.Events[1].Outcome != "failure" {
		t.Fatalf("%+v", l)
	}
	raw, _ := os.ReadFile(path)
	if n := bytes.Count(raw, []byte("\n")); n != 3 { // + audit.read
		t.Fatalf("%d lines:\n%s", n, raw)
	}
}
