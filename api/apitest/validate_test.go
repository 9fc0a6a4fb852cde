package apitest

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/audit"
)

// The validator must catch what it exists to catch.
func TestValidatorCatchesDrift(t *testing.T) {
	v := NewValidator(t)
	hdr := func(ct string) http.Header {
		h := http.Header{}
		h.Set("Content-Type", ct)
		h.Set(api.RequestIDHeader, "r1")
		return h
	}
	get := httptest.NewRequest(http.MethodGet, api.BasePath+"/schedules", nil)
	for _, tc := range []struct {
		name   string
		req    *http.Request
		body   string
		status int
		header http.Header
		resp   string
	}{
		{"missing field", get, "", 200, hdr("application/json"), `{"schedules":[]}`},
		{"wrong type", get, "", 200, hdr("application/json"), `{"schedules":[],"count":"0","as_of_ms":1}`},
		{"undocumented status", get, "", 418, hdr(api.ProblemContentType), `{"type":"t","title":"x","status":418,"detail":"d","code":"internal","request_id":"r1"}`},
		{"no request id", get, "", 200, http.Header{"Content-Type": {"application/json"}}, `{"schedules":[],"count":0,"as_of_ms":1}`},
		{"problem status mismatch", get, "", 500, hdr(api.ProblemContentType), `{"type":"t","title":"x","status":400,"detail":"d","code":"internal","request_id":"r1"}`},
		{"unknown problem code", get, "", 500, hdr(api.ProblemContentType), `{"type":"t","title":"x","status":500,"detail":"d","code":"oops","request_id":"r1"}`},
		{"bad request accepted", httptest.NewRequest(http.MethodPost, api.BasePath+"/schedules", strings.NewReader(`{"name":"x","tasks":["nope"]}`)),
			`{"name":"x","tasks":["nope"]}`, 201, hdr("application/json"), `{}`},
		{"unknown route answered 200", httptest.NewRequest(http.MethodGet, "/nowhere", nil), "", 200, hdr("application/json"), `{}`},
	} {
		if tc.req.Method == http.MethodPost {
			tc.req.Header.Set("Content-Type", "application/json")
		}
		ex := v.Check(tc.req, []byte(tc.body), tc.status, tc.header, []byte(tc.resp))
		if ex.ResponseErr == nil {
			t.Errorf("%s: not caught", tc.name)
		}
	}
	ok := v.Check(get, nil, 200, hdr("application/json"), []byte(`{"schedules":[],"count":0,"as_of_ms":1}`))
	if ok.ResponseErr != nil || ok.RequestErr != nil {
		t.Fatalf("valid exchange refused: %v / %v", ok.RequestErr, ok.ResponseErr)
	}
}

func TestFakeAutoProgress(t *testing.T) {
	srv := NewServer(t, nil, api.Options{})
	srv.Fake.SeedDefaults()
	j, err := srv.Fake.RunSchedule(t.Context(), "daily-maintenance", false, "me")
	if err != nil {
		t.Fatal(err)
	}
	srv.Fake.SetAutoProgress(true)
	for i := 0; i < 20 && !j.State.Terminal(); i++ {
		if j, err = srv.Fake.GetJob(t.Context(), j.ID); err != nil {
			t.Fatal(err)
		}
	}
	if j.State != "succeeded" || j.ProgressPct != 100 {
		t.Fatalf("job %+v", j)
	}
}

func TestFakeDrillStateMachine(t *testing.T) {
	f := NewFake()
	ctx := t.Context()
	d, err := f.StartDrill(ctx, "", "ops")
	if err != nil || d.State != "running" || d.Target != "orders" {
		t.Fatalf("%+v %v", d, err)
	}
	if _, err := f.DecideDrill(ctx, d.ID, true, "start", "", "ops"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("decision before observation: %v", err)
	}
	if d, _ = f.GetDrill(ctx, d.ID); d.Awaiting != "start" {
		t.Fatalf("%+v", d)
	}
	if _, err := f.DecideDrill(ctx, d.ID, true, "middle", "", "ops"); err == nil {
		t.Fatal("bad step accepted")
	}
	d, _ = f.DecideDrill(ctx, d.ID, true, "start", "", "ops")
	d, _ = f.DecideDrill(ctx, d.ID, true, "complete", "", "ops")
	if d.State != "passed" || !d.CleanedUp || len(d.Approvals) != 2 {
		t.Fatalf("%+v", d)
	}
	if _, err := f.AbortDrill(ctx, d.ID, "late", "ops"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("abort finished: %v", err)
	}
	if c := f.Counts(); c.DrillStarts != 1 || c.DrillDecisions != 2 || c.Changes() != 3 {
		t.Fatalf("%+v", c)
	}
	// The in-memory audit log follows the file log's rules.
	a := f.AuditLog()
	a.FailWith(errors.New("disk full"))
	if err := a.Record(ctx, audit.Event{Action: "x"}); err == nil {
		t.Fatal("recorded while failing")
	}
	a.FailWith(nil)
	_ = a.Record(ctx, audit.Event{Action: "x", Detail: "password=hunter2"})
	if ev := a.Events(); len(ev) != 1 || ev[0].Time.IsZero() || ev[0].Detail != "password=***" {
		t.Fatalf("%+v", ev)
	}
}
