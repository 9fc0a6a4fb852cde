package cluster

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	apiclient "github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/domain"
)

// The dev server (file-backed) is stopped and started again in the middle
// of a job: the job completes, and every schedule keeps its spec and its
// enabled/paused state.
func TestDevServerRestartMidJob(t *testing.T) {
	t.Parallel()
	c := Start(t, Options{Postgres: true, HistoryOnPostgres: true})
	ctx := context.Background()
	seedTables(t, c, 60, 10000)
	slowVacuum(t, c)
	before := vacuumCounts(t, c)

	on := true
	enabled := c.CreateSchedule(0, apiclient.ScheduleInput{
		Name: "Restart enabled", Target: PGTarget, Frequency: domain.FrequencyMonthly, Enabled: &on,
		Tasks: []domain.TaskType{domain.TaskQuotaCheck, domain.TaskMetricsCollection},
	})
	desc := "patched before the restart"
	other := c.CreateSchedule(1, apiclient.ScheduleInput{
		Name: "Restart disabled", Target: PGTarget, Description: &desc,
		Tasks: []domain.TaskType{domain.TaskConsistencyCheck},
	})
	sc := c.CreateSchedule(0, apiclient.ScheduleInput{
		Name: "Restart job", Target: PGTarget, Tasks: []domain.TaskType{domain.TaskMVCCCleanup},
		TaskOptions: map[domain.TaskType]domain.TaskOptions{domain.TaskMVCCCleanup: {"parallelism": 1}},
	})
	// api-1 lists api-2's write after its read model's next refresh.
	var list []domain.Schedule
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var err error
		if list, err = c.APIs[0].ListSchedules(ctx); err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(list, func(s domain.Schedule) bool { return s.ID == other.ID }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("api-1 does not list %s, created through api-2, after 30 s", other.ID)
		}
	}
	stored := map[string]string{}
	for _, s := range list {
		got, err := c.TemporalSchedule(s.ID)
		if err != nil {
			t.Fatal(err)
		}
		stored[s.ID] = storedKey(t, got)
	}
	if got, _ := c.TemporalSchedule(enabled.ID); got.Paused {
		t.Fatalf("schedule %s was created enabled but is paused in Temporal", enabled.ID)
	}

	job, err := c.APIs[0].RunSchedule(ctx, sc.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	done := func() int {
		n := 0
		for name, v := range vacuumCounts(t, c) {
			if v > before[name] {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(2 * time.Minute)
	for done() < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("mvcc_cleanup did not reach 10 tables in 2 minutes (%d)", done())
		}
		time.Sleep(50 * time.Millisecond)
	}
	atStop := done()
	stopAt := time.Now()
	c.StopDevServer()
	time.Sleep(3 * time.Second)
	c.StartDevServer()
	down := time.Since(stopAt)
	t.Logf("dev server stopped at %d of 60 tables done, back after %.1f s (same db file, same port)", atStop, down.Seconds())

	job = c.WaitJob(1, job.ID, 4*time.Minute, Terminal)
	var attempt int
	for _, tr := range job.Tasks {
		attempt = tr.Attempt
	}
	t.Logf("dev server restart test: job %s %s in %d ms, mvcc_cleanup attempt %d, %d tables vacuumed", job.ID, job.State, job.DurationMs, attempt, done())
	if job.State != domain.StateSucceeded {
		t.Errorf("job across the dev server restart ended %s, want succeeded: %s (%s)", job.State, job.ErrorMessage, TaskLine(job))
	}
	if n := done(); n != 60 {
		t.Errorf("%d of 60 tables vacuumed after the job", n)
	}

	// Every schedule as it was, in Temporal and through both APIs.
	for id, want := range stored {
		got, err := c.TemporalSchedule(id)
		if err != nil {
			t.Errorf("after the restart: %v", err)
			continue
		}
		if k := storedKey(t, got); k != want {
			t.Errorf("schedule %s changed across the restart:\n before %s\n after  %s", id, want, k)
		}
	}
	for i := range c.APIs {
		after, err := c.APIs[i].ListSchedules(ctx)
		if err != nil {
			t.Errorf("api-%d: list schedules after the restart: %v", i+1, err)
			continue
		}
		if len(after) != len(list) {
			t.Errorf("api-%d lists %d schedules after the restart, %d before", i+1, len(after), len(list))
		}
		for _, s := range after {
			if s.ID == enabled.ID && !s.Enabled {
				t.Errorf("api-%d: %s is disabled after the restart", i+1, s.ID)
			}
		}
	}
	t.Logf("schedules intact across the restart: %d checked in Temporal", len(stored))
}

// storedKey is a schedule's spec, paused state and cron expressions as one
// comparable string.
func storedKey(t *testing.T, s StoredSchedule) string {
	t.Helper()
	raw, err := json.Marshal(struct {
		Spec   domain.ScheduleSpec
		Paused bool
		Crons  []string
	}{s.Spec, s.Paused, s.Crons})
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
