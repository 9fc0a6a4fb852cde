package cluster

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
)

// The SQLite demo as a new user gets it, behind two API processes: the
// defaults are installed once, `themisctl health` reports healthy, and a
// forced run of the Weekly default succeeds (the defaults leave out tasks
// SQLite cannot run).
func TestSQLiteDemoHealthyAndWeeklySucceeds(t *testing.T) {
	t.Parallel()
	c := Start(t, Options{Workers: 2, APIs: 2})
	ctx := context.Background()

	// Both API processes raced to install the defaults: each exactly once.
	// api-2's list shows api-1's writes after its read model's next
	// refresh, so it is read until every default is there (or 30 s).
	defaults := domain.DefaultSchedules(DemoTarget, "sqlite", func(domain.TaskType) bool { return true })
	var byName map[string]int
	var weekly domain.Schedule
	var scheds []domain.Schedule
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var err error
		scheds, err = c.APIs[1].ListSchedules(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byName = map[string]int{}
		for _, s := range scheds {
			byName[s.Name]++
			if s.Name == "Weekly Maintenance" {
				weekly = s
			}
		}
		all := true
		for _, d := range defaults {
			all = all && byName[d.Spec.Name] > 0
		}
		if all || time.Now().After(deadline) {
			break
		}
	}
	for _, d := range defaults {
		if byName[d.Spec.Name] != 1 {
			t.Errorf("default schedule %q exists %d times after two API processes started, want once", d.Spec.Name, byName[d.Spec.Name])
		}
	}
	if weekly.ID == "" {
		t.Fatalf("no Weekly Maintenance default schedule: %v", byName)
	}

	// Every task of every default can run on SQLite.
	types, err := c.APIs[0].TaskTypes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	drivers := map[string][]string{}
	for _, tt := range types {
		drivers[tt.Name] = tt.Drivers
	}
	for _, s := range scheds {
		if s.Target != DemoTarget {
			continue
		}
		for _, task := range s.Tasks {
			if !slices.Contains(drivers[string(task)], "sqlite") {
				t.Errorf("default schedule %q has task %s, which the sqlite driver cannot run (drivers %v)", s.Name, task, drivers[string(task)])
			}
		}
	}

	// themisctl health, the binary against each API process; every
	// process runs its own probes at start (each has its own cache), so
	// allow them a moment on both before the exit-status check.
	for i := range c.APIs {
		var rep api.HealthReport
		deadline := time.Now().Add(45 * time.Second)
		for {
			stdout, stderr, err := c.Themisctl(i, "health", "-o", "json", "--fail-on", "never")
			if err != nil {
				t.Fatalf("themisctl health through api-%d: %v\n%s%s", i+1, err, stdout, stderr)
			}
			rep = api.HealthReport{}
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatalf("themisctl health -o json through api-%d: %v\n%s", i+1, err, stdout)
			}
			if (rep.OverallStatus == api.HealthOK && rep.CheckedAtMs > 0) || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
		}
		for _, m := range rep.Modules {
			t.Logf("api-%d health %-20s %-9s %s", i+1, m.Name, m.Status, m.Message)
		}
		if rep.OverallStatus != api.HealthOK {
			t.Errorf("themisctl health through api-%d: overall %q, want %q", i+1, rep.OverallStatus, api.HealthOK)
		}
		if stdout, stderr, err := c.Themisctl(i, "health", "--check"); err != nil {
			t.Errorf("themisctl health --check through api-%d exits with %v\n%s%s", i+1, err, stdout, stderr)
		}
	}

	// A forced run of the Weekly default, started on one API process and
	// followed on the other.
	job, err := c.APIs[0].RunSchedule(ctx, weekly.ID, true)
	if err != nil {
		t.Fatalf("run Weekly Maintenance: %v", err)
	}
	job = c.WaitJob(1, job.ID, 3*time.Minute, Terminal)
	for _, tr := range job.Tasks {
		t.Logf("weekly %-24s %-9s %s %s", tr.TaskType, tr.State, tr.ResultSummary, tr.ErrorMessage)
	}
	t.Logf("Weekly Maintenance on the SQLite demo: %s in %d ms (%d tasks)", job.State, job.DurationMs, len(job.Tasks))
	if job.State != domain.StateSucceeded {
		t.Errorf("Weekly Maintenance on SQLite ended %s, want succeeded: %s", job.State, job.ErrorMessage)
	}
}
