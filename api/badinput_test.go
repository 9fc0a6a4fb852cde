package api_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"go.temporal.io/api/serviceerror"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/domain"
)

// A key given twice in any object of a body is 400 invalid_json naming the
// key, and nothing is written.
func TestDuplicateJSONKeys(t *testing.T) {
	e := newEnv(t)
	e.seedNightly()
	e.fake.SeedDrill(domain.Drill{ID: "drill-orders-1", Target: "orders", State: domain.DrillAwaiting, Step: "await_start",
		Awaiting: domain.ApprovalStart, Steps: []domain.DrillStep{}, Approvals: []domain.Approval{}})
	for _, tc := range []struct {
		method, path, body, field string
	}{
		{"POST", "/schedules", `{"name":"a","name":"b","tasks":["quota_check"]}`, "name"},
		{"POST", "/schedules", `{"name":"a","tasks":["quota_check"],"enforce_window":true,"enforce_window":false}`, "enforce_window"},
		{"POST", "/schedules", `{"name":"a","tasks":["quota_check"],"task_options":{"quota_check":{"alert_pct":50,"alert_pct":90}}}`, "task_options.quota_check.alert_pct"},
		{"POST", "/schedules", `{"name":"a","tasks":["quota_check"],"task_options":{"quota_check":{},"quota_check":{}}}`, "task_options.quota_check"},
		{"PUT", "/schedules/nightly", `{"name":"Nightly","tasks":["quota_check"],"tasks":["disaster_recovery_drill"]}`, "tasks"},
		{"PATCH", "/schedules/nightly", `{"enabled":false,"enabled":true}`, "enabled"},
		{"PATCH", "/schedules/nightly", `{"description":"x","task_options":{"storage_compaction":{"full":false,"full":true}}}`, "task_options.storage_compaction.full"},
		{"POST", "/schedules/nightly/run", `{"force":false,"force":true}`, "force"},
		{"POST", "/drills", `{"target":"orders","target":"other"}`, "target"},
		{"POST", "/drills/drill-orders-1/approve", `{"step":"start","step":"complete"}`, "step"},
		{"POST", "/drills/drill-orders-1/abort", `{"reason":"a","reason":"b"}`, "reason"},
		{"POST", "/schedules", `{"name":"a","tasks":["quota_check"],"description":"x","task_options":{"a.b":{},"a.b":{}}}`, "task_options.a.b"},
		// Escaped spellings of one key are the same key.
		{"POST", "/schedules", `{"name":"a","n\u0061me":"b","tasks":["quota_check"]}`, "name"},
	} {
		t.Run(tc.method+" "+tc.body, func(t *testing.T) {
			e.t = t
			before := e.fake.Counts()
			p := e.req(tc.method, base+tc.path, tc.body).problem(http.StatusBadRequest, api.CodeInvalidJSON)
			if p.Field != tc.field {
				t.Errorf("field %q, want %q (%s)", p.Field, tc.field, p.Detail)
			}
			if c := e.fake.Counts(); c != before {
				t.Errorf("counts %+v → %+v", before, c)
			}
		})
	}
	e.t = t
	// The same keys in sibling objects, or in an array of objects, are fine.
	e.req("POST", base+"/schedules", `{"name":"ok","tasks":["quota_check","mvcc_cleanup"],"task_options":{"quota_check":{},"mvcc_cleanup":{"parallelism":2}}}`).ok(http.StatusCreated)
}

// A next_page_token the visibility store refuses, or fails on, is 400
// whatever the store's error: never 200, never 500.
func TestPageTokenRefusedByStoreIs400(t *testing.T) {
	for name, storeErr := range map[string]error{
		"temporal invalid argument": serviceerror.NewInvalidArgument("invalid page token"),
		"wrapped invalid argument":  fmt.Errorf("list jobs: %w", serviceerror.NewInvalidArgument("bad token")),
		"unclassified store error":  errors.New("visibility: cannot deserialize token"),
		"validation error":          &domain.ValidationError{Field: "next_page_token", Message: "garbled"},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.fake.FailWith(apitest.MethodListJobs, storeErr)
			p := e.req("GET", base+"/jobs?next_page_token=AAAAAAAAAAAAAAAA", "").anyProblem(http.StatusBadRequest)
			if p.Field != "next_page_token" {
				t.Errorf("field %q", p.Field)
			}
		})
	}
	// Without a token the same unclassified failure stays a 500 (it is
	// not the client's fault).
	e := newEnv(t)
	e.fake.FailWith(apitest.MethodListJobs, errors.New("visibility down"))
	e.req("GET", base+"/jobs", "").problem(http.StatusInternalServerError, api.CodeInternal)
	// Tokens the fake (and starter) did not issue: 400.
	e = newEnv(t)
	for _, tok := range []string{"x", "AAAA", "%00", "....", "eyJvZmZzZXQiOjEwMH0", "_-_-_-_-_-_-_-_-_-_-"} {
		e.req("GET", base+"/jobs?next_page_token="+tok, "").anyProblem(http.StatusBadRequest)
	}
}

// Target names that are not safe slugs are refused before any lookup.
func TestTargetNameSlug(t *testing.T) {
	e := newEnv(t)
	e.seedNightly()
	for _, tgt := range []string{"../x", "a/b", ".", "..", "orders/../../etc", "-orders", "_x", "or ders", "orders\u0000", "ördèrs",
		"a%2F..", string(make([]byte, 65))} {
		body := mustJSON(t, map[string]any{"name": "Target test", "tasks": []string{"quota_check"}, "target": tgt})
		p := e.req("POST", base+"/schedules", body).problem(http.StatusBadRequest, api.CodeValidationFailed)
		if p.Field != "target" {
			t.Errorf("%q: field %q", tgt, p.Field)
		}
		e.req("PATCH", base+"/schedules/nightly", mustJSON(t, map[string]any{"target": tgt})).problem(http.StatusBadRequest, api.CodeValidationFailed)
	}
	if c := e.fake.Counts(); c.Changes() != 0 {
		t.Fatalf("written: %+v", c)
	}
	for _, ok := range []string{"orders", "Orders-2", "a", "db_01"} {
		if !domain.ValidTargetName(ok) {
			t.Errorf("%q refused", ok)
		}
	}
}

// anyProblem asserts a problem+json answer of status, whatever its code.
func (r *response) anyProblem(status int) api.Problem {
	r.t.Helper()
	var p api.Problem
	r.decode(&p)
	if r.Status != status || r.Header.Get("Content-Type") != api.ProblemContentType || p.Code == "" || p.Status != status {
		r.t.Fatalf("%s %s: status %d (%s), want a %d problem; body %s", r.Ex.Method, r.Ex.Path, r.Status, r.Header.Get("Content-Type"), status, r.Body)
	}
	return p
}
