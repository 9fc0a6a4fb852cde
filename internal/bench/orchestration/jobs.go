package orchestration

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	apiclient "github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/workflows"
)

// lightTask is the task of the light 1-task schedules: a file-size check
// of the SQLite demo target.
const lightTask = domain.TaskQuotaCheck

// lightSchedule is one of the bench's 1-task schedules.
type lightSchedule struct {
	ID   string
	Spec domain.ScheduleSpec
}

// jobIDs hands out the manual job ids the API would (schedule id and start
// millisecond), one millisecond apart within a schedule.
type jobIDs struct {
	mu   sync.Mutex
	last map[string]int64
}

func (g *jobIDs) next(scheduleID string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last == nil {
		g.last = map[string]int64{}
	}
	ms := max(time.Now().UnixMilli(), g.last[scheduleID]+1)
	g.last[scheduleID] = ms
	return workflows.ManualJobID(scheduleID, ms)
}

// startLightJob starts a forced job of sc directly on the worker's task
// queue, as POST /schedules/{id}/run does after its checks (same workflow,
// input, id scheme, search attributes and memo), and waits for its end.
func startLightJob(ctx context.Context, c client.Client, ids *jobIDs, sc lightSchedule) error {
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       ids.next(sc.ID),
		TaskQueue:                taskQueue,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.ScheduleIDKey.ValueSet(sc.ID), workflows.TargetKey.ValueSet(sc.Spec.Target),
			workflows.JobStateKey.ValueSet(string(domain.StatePending))),
		// The API's memo key for the schedule's spec (package starter).
		Memo: map[string]any{"schedule": sc.Spec},
	}, workflows.MaintenanceWorkflowName, workflows.MaintenanceInput{
		ScheduleID: sc.ID, ScheduleName: sc.Spec.Name, Spec: sc.Spec, Forced: true, TriggeredBy: "bench",
	})
	if err != nil {
		return fmt.Errorf("start job of %s: %w", sc.ID, err)
	}
	var job domain.Job
	if err := run.Get(ctx, &job); err != nil {
		return fmt.Errorf("job %s: %w", run.GetID(), err)
	}
	if job.State != domain.StateSucceeded {
		return fmt.Errorf("job %s ended %s: %s", job.ID, job.State, job.ErrorMessage)
	}
	return nil
}

// runThroughAPI runs a forced job of schedule id through the API with wait
// and checks it succeeded. A 409 (the previous manual run's claim not yet
// released) is retried.
func runThroughAPI(ctx context.Context, c *apiclient.Client, id string) (domain.Job, error) {
	for attempt := 0; ; attempt++ {
		job, err := c.RunScheduleWait(ctx, id, true, 60*time.Second)
		if apiclient.IsConflict(err) && attempt < 100 && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if err != nil {
			return job, fmt.Errorf("run %s: %w", id, err)
		}
		if job.State != domain.StateSucceeded {
			return job, fmt.Errorf("job %s of %s ended %s: %s", job.ID, id, job.State, job.ErrorMessage)
		}
		return job, nil
	}
}

// throughput is a jobs-per-minute phase.
type throughput struct {
	Completed int
	Errors    int
	FirstErr  string
	Window    time.Duration
	Latencies durations
}

func (t throughput) perMinute() float64 {
	if t.Window <= 0 {
		return 0
	}
	return float64(t.Completed) / t.Window.Minutes()
}

// sustain keeps conc jobs in flight for warm + d, each goroutine i running
// job(i) back to back, and counts the jobs that ended in the window d after
// the warm-up (a job started in the warm-up counts when it ends in the
// window: the loop is already full).
func sustain(ctx context.Context, conc int, warm, d time.Duration, job func(ctx context.Context, i int) error) throughput {
	var mu sync.Mutex
	var res throughput
	var wg sync.WaitGroup
	begin := time.Now().Add(warm)
	end := begin.Add(d)
	for i := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) && ctx.Err() == nil {
				t0 := time.Now()
				// A job running past the window may finish (uncounted), so
				// the next phase starts on a quiet worker.
				jctx, cancel := context.WithTimeout(ctx, d+2*time.Minute)
				err := job(jctx, i)
				cancel()
				done := time.Now()
				mu.Lock()
				switch {
				case err != nil:
					res.Errors++
					if res.FirstErr == "" {
						res.FirstErr = err.Error()
					}
				case done.Before(begin) || done.After(end):
				default:
					res.Completed++
					res.Latencies = append(res.Latencies, done.Sub(t0))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Window = d
	return res
}

// countJobs counts the maintenance workflows visibility knows of.
func countJobs(ctx context.Context, c client.Client, running bool) (int, error) {
	q := fmt.Sprintf("WorkflowType = '%s'", workflows.MaintenanceWorkflowName)
	if running {
		q += " AND ExecutionStatus = 'Running'"
	}
	resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: namespace, Query: q})
	if err != nil {
		return 0, fmt.Errorf("count jobs: %w", err)
	}
	return int(resp.GetCount()), nil
}

// fillJobs runs light jobs directly, conc at a time, until visibility
// counts want jobs or timeout passes; it returns the count.
func fillJobs(ctx context.Context, c client.Client, ids *jobIDs, scheds []lightSchedule, want, conc int, timeout time.Duration) (int, error) {
	if len(scheds) == 0 {
		return 0, errors.New("no light schedule to run")
	}
	have, err := countJobs(ctx, c, false)
	if err != nil || have >= want {
		return have, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var left atomic.Int64
	left.Store(int64(want - have))
	var wg sync.WaitGroup
	for i := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 && ctx.Err() == nil {
				_ = startLightJob(ctx, c, ids, scheds[i%len(scheds)])
			}
		}()
	}
	wg.Wait()
	return waitJobsSettled(context.WithoutCancel(ctx), c)
}

// waitJobsSettled waits (up to a minute) until no job runs and visibility
// has caught up, and returns the number of jobs.
func waitJobsSettled(ctx context.Context, c client.Client) (int, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		running, err := countJobs(ctx, c, true)
		if err == nil && running == 0 || time.Now().After(deadline) {
			return countJobs(ctx, c, false)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
