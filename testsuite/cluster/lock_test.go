package cluster

import (
	"context"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/themis-maintenance/themis/api"
	apiclient "github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/domain"
)

// Two schedules plus manual runs of heavy tasks on one PostgreSQL target,
// through both API processes and both workers: pg_stat_activity, sampled
// every 50 ms, never shows two heavy tasks on the target at once; every job
// ends; a manual run of a schedule with an active job is a 409.
func TestOneHeavyTaskPerTarget(t *testing.T) {
	t.Parallel()
	c := Start(t, Options{Postgres: true, HistoryOnPostgres: true})
	ctx := context.Background()
	seedTables(t, c, 40, 10000)
	slowVacuum(t, c)
	off := false
	rebuildAll := domain.TaskOptions{"min_size_bytes": 0, "high_threshold_pct": 0, "parallelism": 2}
	a := c.CreateSchedule(0, apiclient.ScheduleInput{
		Name: "Heavy A", Target: PGTarget, EnforceWindow: &off, Tasks: []domain.TaskType{domain.TaskMVCCCleanup, domain.TaskIndexRebuild},
		TaskOptions: map[domain.TaskType]domain.TaskOptions{domain.TaskMVCCCleanup: {"parallelism": 2}, domain.TaskIndexRebuild: rebuildAll},
	})
	b := c.CreateSchedule(1, apiclient.ScheduleInput{
		Name: "Heavy B", Target: PGTarget, EnforceWindow: &off, Tasks: []domain.TaskType{domain.TaskIndexRebuild, domain.TaskFullCheckDB},
		TaskOptions: map[domain.TaskType]domain.TaskOptions{domain.TaskIndexRebuild: rebuildAll},
	})
	m := c.CreateSchedule(0, apiclient.ScheduleInput{
		Name: "Heavy manual", Target: PGTarget, EnforceWindow: &off, Tasks: []domain.TaskType{domain.TaskIndexRebuild, domain.TaskMVCCCleanup},
		TaskOptions: map[domain.TaskType]domain.TaskOptions{domain.TaskIndexRebuild: rebuildAll},
	})

	// The sampler: every 50 ms, the busy Themis sessions on the target.
	conn := c.Primary.Conn(t, PGDatabase)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	samples, withThemis, violations, maxKeys := 0, 0, 0, 0
	var examples []string
	keysSeen := map[string]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			ss, err := themisSessions(ctx, conn, true)
			if err != nil {
				continue
			}
			keys := map[string]bool{}
			for _, s := range ss {
				// Sessions of one task attempt share their name; light tasks
				// may overlap anything.
				if _, task, _, ok := parseAppName(s.appName); ok && !domain.TaskType(task).Heavy() {
					continue
				}
				// A pooled connection keeps the name of the last run that
				// used it until the next acquire renames it: the pool's
				// liveness ping and the rename itself run under the old
				// name, and are no work of that task.
				if poolHousekeeping(s.query) {
					continue
				}
				keys[s.appName] = true
			}
			mu.Lock()
			samples++
			if len(ss) > 0 {
				withThemis++
			}
			for k := range keys {
				keysSeen[k] = true
			}
			if len(keys) > maxKeys {
				maxKeys = len(keys)
			}
			if len(keys) > 1 {
				violations++
				if len(examples) < 5 {
					var ks []string
					for k := range keys {
						ks = append(ks, k)
					}
					sort.Strings(ks)
					examples = append(examples, time.Now().Format("15:04:05.000")+" "+strings.Join(ks, " + "))
				}
			}
			mu.Unlock()
		}
	}()

	var jobs []domain.Job
	run := func(api int, sc domain.Schedule) {
		j, err := c.APIs[api].RunSchedule(ctx, sc.ID, true)
		if err != nil {
			t.Fatalf("run %s through api-%d: %v", sc.Name, api+1, err)
		}
		jobs = append(jobs, j)
	}
	run(0, a)
	run(1, b)
	run(0, m)
	// A second manual run of a schedule whose job is active: 409 naming it.
	_, err := c.APIs[1].RunSchedule(ctx, a.ID, true)
	conflict := apiclient.IsConflict(err)
	if !conflict {
		t.Errorf("a manual run of %s while its job %s is active answered %v, want 409 naming the active job", a.Name, jobs[0].ID, err)
	} else if !strings.Contains(err.Error(), jobs[0].ID) {
		t.Errorf("the 409 does not name the active job %s: %v", jobs[0].ID, err)
	}
	// And the scheduled path: the Temporal Schedules of A and B fire too
	// (Trigger runs a paused schedule's action once).
	for _, sc := range []domain.Schedule{a, b} {
		if err := c.Temporal.ScheduleClient().GetHandle(ctx, sc.ID).Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
			t.Fatalf("trigger schedule %s: %v", sc.ID, err)
		}
	}

	began := time.Now()
	for _, j := range jobs {
		c.WaitJob(1, j.ID, 6*time.Minute, Terminal)
	}
	// The triggered runs: wait until no job is active.
	deadline := time.Now().Add(6 * time.Minute)
	for {
		page, err := c.APIs[0].ListJobs(ctx, api.JobFilter{ActiveOnly: true})
		if err == nil && len(page.Jobs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs still active 6 minutes later: %+v", page.Jobs)
		}
		time.Sleep(500 * time.Millisecond)
	}
	total := time.Since(began)
	close(stop)
	wg.Wait()
	var ended []domain.Job
	for _, sc := range []domain.Schedule{a, b, m} {
		page, err := c.APIs[1].ListJobs(ctx, api.JobFilter{ScheduleID: sc.ID, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range page.Jobs {
			full, err := c.APIs[1].GetJob(ctx, j.ID)
			if err != nil {
				t.Fatal(err)
			}
			ended = append(ended, full)
		}
	}
	manual := map[string]bool{}
	for _, j := range jobs {
		manual[j.ID] = true
	}
	if len(ended) < len(jobs) {
		t.Errorf("%d jobs listed for the three schedules, want at least the %d manual runs", len(ended), len(jobs))
	}

	var longestWait time.Duration
	var longestJob string
	for _, j := range ended {
		w := c.lockWait(t, j.ID)
		if w > longestWait {
			longestWait, longestJob = w, j.ID
		}
		t.Logf("job %-45s %-9s %6d ms, waited ≤ %6d ms: %s", j.ID, j.State, j.DurationMs, w.Milliseconds(), TaskLine(j))
		// A scheduled run may be skipped while its schedule has an active
		// job; everything that ran must succeed.
		if j.State != domain.StateSucceeded && (manual[j.ID] || j.State != domain.StateSkipped) {
			t.Errorf("job %s ended %s, want succeeded: %s", j.ID, j.State, j.ErrorMessage)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("heavy-lock test: %d jobs ended in %.1f s; %d pg_stat_activity samples (50 ms), %d with Themis sessions, %d distinct task sessions, at most %d heavy tasks at once, %d samples with two or more; longest wait for the target %d ms (job %s); 409 for a second manual run: %v",
		len(ended), total.Seconds(), samples, withThemis, len(keysSeen), maxKeys, violations, longestWait.Milliseconds(), longestJob, conflict)
	if withThemis == 0 {
		t.Errorf("no sample showed a session named themis:<job>:<task>:a<attempt> on %s: the heavy-task check cannot be made (sessions lack the application_name)", PGDatabase)
	}
	if violations > 0 {
		t.Errorf("%d of %d samples showed two or more heavy tasks on target %s at once, e.g.:\n%s", violations, samples, PGTarget, strings.Join(examples, "\n"))
	}
}

// poolHousekeeping reports whether query is the connection pool's own:
// pgx's liveness ping or the driver's rename of a pooled connection.
func poolHousekeeping(query string) bool {
	q := strings.TrimSpace(query)
	return q == "-- ping" || q == ";" || strings.HasPrefix(q, "SELECT set_config('application_name'")
}

// lockWait is the longest time job waited before one of its heavy tasks
// was scheduled, from the workflow's Temporal history: after the job
// started, or after its previous heavy task ended. That is where a job
// waits for its target.
func (c *Cluster) lockWait(t *testing.T, job string) time.Duration {
	t.Helper()
	ctx := context.Background()
	it := c.Temporal.GetWorkflowHistory(ctx, job, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var last time.Time
	var w time.Duration
	heavy := map[int64]bool{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", job, err)
		}
		at := ev.GetEventTime().AsTime()
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			last = at
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			name := ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
			if domain.TaskType(name).Heavy() {
				heavy[ev.GetEventId()] = true
				if d := at.Sub(last); d > w {
					w = d
				}
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			if heavy[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()] {
				last = at
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			if heavy[ev.GetActivityTaskFailedEventAttributes().GetScheduledEventId()] {
				last = at
			}
		}
	}
	return w
}
