package api_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/domain"
)

func TestHealthEndpoint(t *testing.T) {
	e := newEnv(t)
	var rep api.HealthReport
	e.req(http.MethodGet, base+"/health", "").ok(http.StatusOK).decode(&rep)
	if rep.OverallStatus != api.HealthOK || len(rep.Modules) != 4 || rep.Modules[0].Name != "temporal" {
		t.Fatalf("%+v", rep)
	}
	// A failed job makes the report degraded.
	e.fake.SeedJob(domain.Job{ID: "j1", ScheduleID: "x", State: domain.StateFailed})
	e.req(http.MethodGet, base+"/health", "").ok(http.StatusOK).decode(&rep)
	if rep.OverallStatus != api.HealthDegraded || rep.Modules[1].Status != api.HealthDegraded {
		t.Fatalf("%+v", rep)
	}
	// Nil modules are rendered as [], a critical report is still 200.
	e.fake.SetHealth(api.HealthReport{OverallStatus: api.HealthCritical})
	r := e.req(http.MethodGet, base+"/health", "").ok(http.StatusOK)
	if !strings.Contains(string(r.Body), `"modules":[]`) {
		t.Fatalf("body %s", r.Body)
	}
	e.fake.FailWith(apitest.MethodHealth, domain.ErrUnavailable)
	e.req(http.MethodGet, base+"/health", "").problem(http.StatusServiceUnavailable, api.CodeUnavailable)
}

// The endpoint answers from the cache: well under the 10 ms the health endpoint promises
// even under the race detector (a loose bound, not a benchmark).
func TestHealthIsFast(t *testing.T) {
	e := newEnv(t)
	e.req(http.MethodGet, base+"/health", "").ok(http.StatusOK)
	start := time.Now()
	const n = 50
	for i := 0; i < n; i++ {
		e.req(http.MethodGet, base+"/health", "").ok(http.StatusOK)
	}
	// Includes the OpenAPI validation of every exchange.
	if avg := time.Since(start) / n; avg > 200*time.Millisecond {
		t.Fatalf("average %v", avg)
	}
}

func TestTaskTypesAndTargets(t *testing.T) {
	e := newEnv(t)
	var tl api.TaskTypeList
	e.req(http.MethodGet, base+"/task-types", "").ok(http.StatusOK).decode(&tl)
	if tl.Count != len(domain.AllTaskTypes()) || tl.Count != len(tl.TaskTypes) {
		t.Fatalf("count %d", tl.Count)
	}
	for _, tt := range tl.TaskTypes {
		if tt.Name == string(domain.TaskMVCCCleanup) {
			o := tt.Options["parallelism"]
			if o.Type != "integer" || o.Min == nil || *o.Min != 1 || len(tt.Drivers) != 2 {
				t.Fatalf("%+v", tt)
			}
		}
	}
	var targets api.TargetList
	r := e.req(http.MethodGet, base+"/targets", "").ok(http.StatusOK)
	r.decode(&targets)
	if targets.Count != 2 || !targets.Targets[0].Default || targets.Targets[0].Name != "orders" {
		t.Fatalf("%+v", targets)
	}
	for _, bad := range []string{"dsn", "password"} {
		if strings.Contains(string(r.Body), bad) {
			t.Errorf("targets mention %q", bad)
		}
	}
}

func TestInfoInternalError(t *testing.T) {
	e := newEnv(t)
	e.fake.FailWith(apitest.MethodHealth, errors.New("cache poisoned"))
	e.req(http.MethodGet, base+"/health", "").problem(http.StatusInternalServerError, api.CodeInternal)
}
