package api_test

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/domain"
)

// startAwaiting starts a drill and observes it once so that it awaits the
// start approval.
func (e *env) startAwaiting(target string) domain.Drill {
	e.t.Helper()
	body := ""
	if target != "" {
		body = `{"target":"` + target + `"}`
	}
	d := e.req(http.MethodPost, base+"/drills", body).ok(http.StatusAccepted).drill()
	d = e.req(http.MethodGet, base+"/drills/"+d.ID, "").ok(http.StatusOK).drill()
	if d.Awaiting != domain.ApprovalStart {
		e.t.Fatalf("drill %+v does not await start", d)
	}
	return d
}

func TestDrillLifecycle(t *testing.T) {
	e := newEnv(t)
	r := e.req(http.MethodPost, base+"/drills", `{"target":"analytics"}`).ok(http.StatusAccepted)
	d := r.drill()
	if d.Target != "analytics" || d.State != domain.DrillRunning || d.RequestedBy != api.AnonymousPrincipal ||
		r.Header.Get("Location") != base+"/drills/"+d.ID || d.Steps == nil || d.Approvals == nil {
		t.Fatalf("started %+v (Location %q)", d, r.Header.Get("Location"))
	}
	// Not awaiting anything yet: both decisions are conflicts.
	e.req(http.MethodPost, base+"/drills/"+d.ID+"/approve", `{"step":"start"}`).problem(http.StatusConflict, api.CodeConflict)
	d = e.req(http.MethodGet, base+"/drills/"+d.ID, "").ok(http.StatusOK).drill()
	if d.State != domain.DrillAwaiting || d.Awaiting != domain.ApprovalStart {
		t.Fatalf("observed %+v", d)
	}
	// The other step is not awaited.
	p := e.req(http.MethodPost, base+"/drills/"+d.ID+"/approve", `{"step":"complete","comment":"too early"}`).problem(http.StatusConflict, api.CodeConflict)
	if !strings.Contains(p.Detail, "awaiting start") {
		t.Errorf("detail %q", p.Detail)
	}
	d = e.req(http.MethodPost, base+"/drills/"+d.ID+"/approve", `{"step":"start","comment":"CHG-1"}`).ok(http.StatusOK).drill()
	if d.Awaiting != domain.ApprovalComplete || !d.Measured || !d.Passed || d.RTOMs != 120_000 || d.RPOMs != 5_000 ||
		len(d.Approvals) != 1 || d.Approvals[0].Approver != api.AnonymousPrincipal || d.Approvals[0].Comment != "CHG-1" {
		t.Fatalf("after approve start %+v", d)
	}
	// Approving start twice is a conflict.
	e.req(http.MethodPost, base+"/drills/"+d.ID+"/approve", `{"step":"start"}`).problem(http.StatusConflict, api.CodeConflict)
	d = e.req(http.MethodPost, base+"/drills/"+d.ID+"/approve", `{"step":"complete"}`).ok(http.StatusOK).drill()
	if d.State != domain.DrillPassed || !d.CleanedUp || d.FinishedAtMs == 0 || d.Awaiting != "" {
		t.Fatalf("after approve complete %+v", d)
	}
	// Finished: no abort, no decision.
	e.req(http.MethodPost, base+"/drills/"+d.ID+"/abort", `{"reason":"late"}`).problem(http.StatusConflict, api.CodeConflict)
	e.req(http.MethodPost, base+"/drills/"+d.ID+"/reject", `{"step":"complete"}`).problem(http.StatusConflict, api.CodeConflict)

	var list api.DrillList
	e.req(http.MethodGet, base+"/drills?limit=5", "").ok(http.StatusOK).decode(&list)
	if list.Count != 1 || list.Drills[0].ID != d.ID {
		t.Fatalf("list %+v", list)
	}
	if c := e.fake.Counts(); c.DrillStarts != 1 || c.DrillDecisions != 2 || c.DrillAborts != 0 {
		t.Fatalf("counts %+v", c)
	}
}

func TestDrillFailsObjectives(t *testing.T) {
	e := newEnv(t)
	e.fake.SetDrillMeasurement(20*60_000, 5_000)
	d := e.startAwaiting("")
	if d.Target != "orders" {
		t.Fatalf("default target: %q", d.Target)
	}
	d = e.req(http.MethodPost, base+"/drills/"+d.ID+"/approve", `{"step":"start"}`).ok(http.StatusOK).drill()
	if d.Passed || !d.Measured {
		t.Fatalf("%+v", d)
	}
	d = e.req(http.MethodPost, base+"/drills/"+d.ID+"/approve", `{"step":"complete"}`).ok(http.StatusOK).drill()
	if d.State != domain.DrillFailed {
		t.Fatalf("%+v", d)
	}
}

func TestDrillRejectAndAbort(t *testing.T) {
	e := newEnv(t)
	d := e.startAwaiting("orders")
	d = e.req(http.MethodPost, base+"/drills/"+d.ID+"/reject", `{"step":"start","comment":"not today"}`).ok(http.StatusOK).drill()
	if d.State != domain.DrillRejected || !d.CleanedUp || !strings.Contains(d.Reason, "not today") {
		t.Fatalf("rejected %+v", d)
	}
	d2 := e.startAwaiting("orders")
	d2 = e.req(http.MethodPost, base+"/drills/"+d2.ID+"/abort", "").ok(http.StatusOK).drill()
	if d2.State != domain.DrillAborted || !d2.CleanedUp {
		t.Fatalf("aborted %+v", d2)
	}
	e.req(http.MethodPost, base+"/drills/"+d2.ID+"/abort", `{"reason":"again"}`).problem(http.StatusConflict, api.CodeConflict)
	d3 := e.startAwaiting("orders")
	e.req(http.MethodPost, base+"/drills/"+d3.ID+"/abort", `{"reason":"incident on the primary"}`).ok(http.StatusOK)
	if ev := e.lastEvent(); ev.Action != "drill.abort" || !strings.Contains(ev.Detail, "incident on the primary") {
		t.Fatalf("audit %+v", ev)
	}
}

func TestDrillErrors(t *testing.T) {
	e := newEnv(t)
	e.req(http.MethodGet, base+"/drills/drill-orders-1", "").problem(http.StatusNotFound, api.CodeNotFound)
	e.req(http.MethodPost, base+"/drills/drill-orders-1/approve", `{"step":"start"}`).problem(http.StatusNotFound, api.CodeNotFound)
	e.fake.FailWith(apitest.MethodStartDrill, domain.ErrUnavailable)
	r := e.req(http.MethodPost, base+"/drills", "")
	r.problem(http.StatusServiceUnavailable, api.CodeUnavailable)
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if e.fake.Counts().DrillStarts != 0 {
		t.Fatal("started")
	}
}

func TestDrillsAndInfoUnavailableWithoutServices(t *testing.T) {
	fake := apitest.NewFake()
	h := apitest.NewValidator(t).Handler(t, api.New(fake, api.Options{Logger: slog.New(slog.DiscardHandler)}))
	e := &env{t: t, fake: fake, h: h}
	for _, rq := range [][3]string{
		{"GET", base + "/drills", ""}, {"GET", base + "/drills/drill-x-1", ""}, {"POST", base + "/drills", ""},
		{"POST", base + "/drills/drill-x-1/approve", `{"step":"start"}`}, {"POST", base + "/drills/drill-x-1/reject", `{"step":"start"}`},
		{"POST", base + "/drills/drill-x-1/abort", ""},
		{"GET", base + "/health", ""}, {"GET", base + "/task-types", ""}, {"GET", base + "/targets", ""},
		{"GET", base + "/audit", ""},
	} {
		r := e.req(rq[0], rq[1], rq[2])
		r.problem(http.StatusServiceUnavailable, api.CodeUnavailable)
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s: no Retry-After", rq[0], rq[1])
		}
	}
	// Input errors still come first.
	e.req(http.MethodPost, base+"/drills/drill-x-1/approve", `{"step":"middle"}`).problem(http.StatusBadRequest, api.CodeValidationFailed)
}

func TestStartDrillUnknownTargetIs400(t *testing.T) {
	e := newEnv(t)
	p := e.req(http.MethodPost, base+"/drills", `{"target":"nowhere"}`).problem(http.StatusBadRequest, api.CodeValidationFailed)
	if p.Field != "target" {
		t.Fatalf("field %q", p.Field)
	}
	if e.fake.Counts().DrillStarts != 0 {
		t.Fatal("started")
	}
	if ev := e.lastEvent(); ev.Action != "drill.start" || ev.Outcome != "failure" || ev.Status != 400 || ev.Resource != "drills" {
		t.Fatalf("audit %+v", ev)
	}
}

func TestDrillErrorsAreNot500(t *testing.T) {
	e := newEnv(t)
	e.fake.FailWith(apitest.MethodDecideDrill, errors.New("temporal: rpc error with password=hunter2"))
	d := e.startAwaiting("")
	r := e.req(http.MethodPost, base+"/drills/"+d.ID+"/approve", `{"step":"start"}`)
	r.problem(http.StatusInternalServerError, api.CodeInternal)
	if strings.Contains(string(r.Body), "hunter2") {
		t.Fatal("leak")
	}
}

// GET /drills/{id}?wait=: parameters checked (400 naming the field), a
// drill that already meets the condition answered at once, one that does
// not held for the wait; decisions are audited with their channel.
func TestDrillWaitAndDecisionAudit(t *testing.T) {
	e := newEnv(t)
	d := e.startAwaiting("")
	for q, field := range map[string]string{
		"wait=soon": "wait", "wait=61s": "wait", "wait=1s&wait=1s": "wait", "until=ended": "until",
		"since_step=x": "since_step", "wait=1s&until=soon": "until", "wait=1s&since_state=gone": "since_state",
		"wait=1s&since_step=Await": "since_step", "wait=1s&limit=3": "limit",
	} {
		p := e.req(http.MethodGet, base+"/drills/"+d.ID+"?"+q, "").problem(http.StatusBadRequest, api.CodeInvalidParameter)
		if p.Field != field {
			t.Errorf("?%s: field %q, want %q", q, p.Field, field)
		}
	}
	start := time.Now()
	got := e.req(http.MethodGet, base+"/drills/"+d.ID+"?wait=5s&until=awaiting_approval", "").ok(http.StatusOK).drill()
	if got.Awaiting != domain.ApprovalStart || time.Since(start) > 2*time.Second {
		t.Fatalf("already awaiting: %+v after %s", got, time.Since(start))
	}
	start = time.Now()
	got = e.req(http.MethodGet, base+"/drills/"+d.ID+"?wait=300ms&since_state=awaiting_approval&since_step=await_start", "").ok(http.StatusOK).drill()
	if took := time.Since(start); got.State != domain.DrillAwaiting || took < 250*time.Millisecond {
		t.Fatalf("unchanged drill answered after %s: %+v", took, got)
	}

	e.req(http.MethodPost, base+"/drills/"+d.ID+"/approve", `{"step":"complete"}`).problem(http.StatusConflict, api.CodeConflict)
	ev := e.lastEvent()
	if !strings.Contains(ev.Detail, "channel=api") || !strings.Contains(ev.Detail, "refused=") {
		t.Errorf("refusal audited as %+v", ev)
	}
	d = e.req(http.MethodPost, base+"/drills/"+d.ID+"/approve", `{"step":"start"}`).ok(http.StatusOK).drill()
	ev = e.lastEvent()
	if !strings.Contains(ev.Detail, "channel=api") || !strings.Contains(ev.Detail, `applied="approved by`) || d.Approvals[0].Channel != domain.ChannelAPI {
		t.Errorf("approval audited as %+v; drill %+v", ev, d.Approvals)
	}
}

// POST /drills takes a strategy: a known one reaches the drill service, an
// unknown one (or a non-string) is 400 on field strategy.
func TestDrillStartStrategy(t *testing.T) {
	e := newEnv(t)
	d := e.req(http.MethodPost, base+"/drills", `{"target":"orders","strategy":"replica_clone"}`).ok(http.StatusAccepted).drill()
	if d.Strategy != domain.DrillStrategyReplicaClone {
		t.Fatalf("started %+v", d)
	}
	d = e.req(http.MethodPost, base+"/drills", `{"strategy":""}`).ok(http.StatusAccepted).drill()
	if d.Strategy != "" {
		t.Fatalf("started %+v", d)
	}
	for _, body := range []string{`{"strategy":"pitr"}`, `{"strategy":"Backup_Restore"}`, `{"target":"orders","strategy":"replica-clone"}`} {
		p := e.req(http.MethodPost, base+"/drills", body).problem(http.StatusBadRequest, api.CodeValidationFailed)
		if p.Field != "strategy" || !strings.Contains(p.Detail, "backup_restore or replica_clone") {
			t.Errorf("%s: %+v", body, p)
		}
	}
	if r := e.req(http.MethodPost, base+"/drills", `{"strategy":7}`); r.Status != http.StatusBadRequest {
		t.Errorf("a number as strategy: %d %s", r.Status, r.Body)
	}
	if c := e.fake.Counts(); c.DrillStarts != 2 {
		t.Fatalf("counts %+v", c)
	}
}

// A drill service that cannot take a strategy refuses a request naming one
// instead of running another strategy; without one it starts the drill.
func TestDrillStartStrategyNeedsAStarter(t *testing.T) {
	other := apitest.NewFake()
	e := newEnvWith(t, api.Options{Drills: struct{ api.DrillService }{other}})
	e.req(http.MethodPost, base+"/drills", `{"strategy":"backup_restore"}`).problem(http.StatusServiceUnavailable, api.CodeUnavailable)
	e.req(http.MethodPost, base+"/drills", `{"target":"orders"}`).ok(http.StatusAccepted)
	if c := other.Counts(); c.DrillStarts != 1 {
		t.Fatalf("counts %+v", c)
	}
}
