package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"

	"github.com/themis-maintenance/themis/api"
	apiclient "github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/health"
	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/internal/daemon"
	"github.com/themis-maintenance/themis/starter"
	"github.com/themis-maintenance/themis/workflows"
)

// Target groups (docs/TARGETS.md): two SQLite targets in zones a and b,
// one worker per zone and an ungrouped worker (the demo target). Each
// zone's jobs run on its zone's worker only, workflow tasks and
// activities alike, and so does its target lock; a job of zone b while
// zone b's worker is down waits untouched (the other workers poll other
// queues) and runs once zone b's worker is back. Zone c has a target and no
// worker: the workers probe names it.
func TestTargetGroupsRunOnTheirZonesWorkers(t *testing.T) {
	t.Parallel()
	const (
		targetA, targetB, targetC   = "zone-a-db", "zone-b-db", "zone-c-db"
		ungrouped, workerA, workerB = 0, 1, 2
	)
	c := Start(t, Options{APIs: 1,
		GroupedTargets: map[string]string{targetA: "zone-a", targetB: "zone-b", targetC: "zone-c"},
		WorkerGroups:   [][]string{nil, {"zone-a"}, {"zone-b"}},
	})
	ctx := context.Background()
	queueA, queueB := config.GroupQueue(TaskQueue, "zone-a"), config.GroupQueue(TaskQueue, "zone-b")

	// Each worker says on /healthz which queues it polls.
	for i, want := range [][]string{{TaskQueue}, {queueA, TaskQueue + " (workflows only)"}, {queueB, TaskQueue + " (workflows only)"}} {
		var h daemon.WorkerHealth
		resp, err := http.Get("http://" + c.MetricsAddrs[i] + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		if err != nil || !slices.Equal(h.TaskQueues, want) {
			t.Errorf("worker %d /healthz: %+v (%v), want task_queues %v", i, h, err, want)
		}
	}

	// The workers probe, against the real queues: zone c has nobody.
	cfg, err := config.Load(c.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	probes, err := daemon.BuiltinProbes(c.Temporal, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := health.NewRunner(health.RunnerOptions{Timeout: 10 * time.Second}, probes).Check(ctx)
	w, _ := rep.Module("workers")
	t.Logf("workers probe: %s: %s", w.Status, w.Message)
	if w.Status != health.Critical || w.Message != "no worker polls the tasks of group zone-c (task queue "+
		config.GroupQueue(TaskQueue, "zone-c")+"): jobs and drills of "+targetC+" cannot run" {
		t.Errorf("workers probe: %s %q", w.Status, w.Message)
	}
	for _, q := range w.Details["queues"].([]map[string]any) {
		polled := q["workflow_pollers"].(int) > 0 && q["activity_pollers"].(int) > 0
		if polled != (q["group"] != "zone-c") {
			t.Errorf("workers probe, queue %v", q)
		}
	}

	// One schedule per zone; the Schedule's action starts on the zone's
	// queue. Its tasks take the target's heavy-task slot (the lock).
	tasks := []domain.TaskType{domain.TaskQuotaCheck, domain.TaskMVCCCleanup}
	if !domain.TaskMVCCCleanup.Heavy() {
		t.Fatal("mvcc_cleanup is not heavy any more: pick a heavy task so the target lock is exercised")
	}
	// Zone a's job also takes a verified backup: the drill below restores it.
	scA := c.CreateSchedule(0, apiclient.ScheduleInput{Name: "Zone A", Target: targetA,
		Tasks: append(slices.Clone(tasks), domain.TaskBackupVerification)})
	scB := c.CreateSchedule(0, apiclient.ScheduleInput{Name: "Zone B", Target: targetB, Tasks: tasks})
	for id, want := range map[string]string{scA.ID: queueA, scB.ID: queueB} {
		if got := scheduleQueue(t, c, id); got != want {
			t.Errorf("schedule %s starts on %s, want %s", id, got, want)
		}
	}

	// A forced run of each: it ran on its zone's worker, and nowhere else.
	jobA, err := c.APIs[0].RunSchedule(ctx, scA.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	jobB, err := c.APIs[0].RunSchedule(ctx, scB.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range []struct {
		id, target, queue string
		worker            int
	}{{jobA.ID, targetA, queueA, workerA}, {jobB.ID, targetB, queueB, workerB}} {
		job := c.WaitJob(0, run.id, time.Minute, Terminal)
		if job.State != domain.StateSucceeded {
			t.Fatalf("job %s on %s: %s (%s)", run.id, run.target, job.State, TaskLine(job))
		}
		ranOn(t, c, run.id, run.queue, run.worker, true)
		// The target's lock workflow runs on the zone's queue too.
		lock := workflows.TargetLockID(run.queue, run.target)
		desc, err := c.Temporal.DescribeWorkflowExecution(ctx, lock, "")
		if err != nil {
			t.Fatalf("lock workflow %s: %v", lock, err)
		}
		if q := desc.GetWorkflowExecutionInfo().GetTaskQueue(); q != run.queue {
			t.Errorf("lock workflow of %s on %s, want %s", run.target, q, run.queue)
		}
		ranOn(t, c, lock, run.queue, run.worker, false)
	}

	// A drill of zone a runs meanwhile: on zone a's queue, its verify and
	// clean-up on the queue of zone a's restoring host.
	drill, err := c.APIs[0].StartDrill(ctx, targetA)
	if err != nil {
		t.Fatal(err)
	}
	waitDrill(t, c, drill.ID, func(d domain.Drill) bool { return d.Awaiting == domain.ApprovalStart || d.FinishedAtMs > 0 })
	if _, err := c.APIs[0].ApproveDrill(ctx, drill.ID, domain.ApprovalStart, "go"); err != nil {
		t.Fatal(err)
	}

	// Zone b's worker stops: a run of zone b waits, untouched by the others.
	c.StopWorker(workerB)
	queued, err := c.APIs[0].RunSchedule(ctx, scB.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	// Workers poll continuously: a wrong pickup would happen within
	// milliseconds.
	time.Sleep(3 * time.Second)
	if n := len(startedBy(t, c, queued.ID)); n != 0 {
		t.Fatalf("job %s of zone b was picked up (%d workflow or activity tasks) while zone b's worker was stopped", queued.ID, n)
	}
	// Read at once from visibility: no query waits for a worker.
	asked := time.Now()
	if job, err := c.APIs[0].GetJob(ctx, queued.ID); err != nil || job.State != domain.StatePending || len(job.Tasks) != len(tasks) {
		t.Fatalf("job %s while zone b's worker is stopped: %v %+v", queued.ID, err, job)
	}
	if took := time.Since(asked); took > 3*time.Second {
		t.Errorf("GET /jobs/%s of a job no worker has run took %s", queued.ID, took)
	}
	restarted := time.Now()
	c.StartWorker(workerB)
	job := waitJobOrDump(t, c, queued.ID, time.Minute, workflows.TargetLockID(queueB, targetB))
	if job.State != domain.StateSucceeded {
		t.Fatalf("queued job of zone b: %s (%s)", job.State, TaskLine(job))
	}
	ranOn(t, c, queued.ID, queueB, workerB, true)
	t.Logf("zone b's job waited for its worker and ended %s after the worker was started again", time.Since(restarted).Round(time.Millisecond))

	waitDrill(t, c, drill.ID, func(d domain.Drill) bool { return d.Awaiting == domain.ApprovalComplete || d.FinishedAtMs > 0 })
	if _, err := c.APIs[0].ApproveDrill(ctx, drill.ID, domain.ApprovalComplete, "checked"); err != nil {
		t.Fatal(err)
	}
	if d := waitDrill(t, c, drill.ID, func(d domain.Drill) bool { return d.FinishedAtMs > 0 }); d.State != domain.DrillPassed {
		t.Errorf("drill of %s: %s (%s)", targetA, d.State, d.Reason)
	}
	ranOn(t, c, drill.ID, queueA, workerA, true)
	onHost := 0
	for _, ts := range startedBy(t, c, drill.ID) {
		if ts.queue == queueA+"@"+c.HostIDs[workerA] {
			onHost++
		}
	}
	if onHost == 0 {
		t.Errorf("drill %s: no step ran on zone a's host queue %s@%s", drill.ID, queueA, c.HostIDs[workerA])
	}

	// The read model lists the jobs of every group's queue (TaskQueue IN
	// (...)), read from visibility by a fresh service; one that knows the
	// base queue only lists none of them.
	configured := map[string]string{targetA: "zone-a", targetB: "zone-b", targetC: "zone-c"}
	for _, view := range []struct {
		svc  *starter.Service
		want bool
	}{{groupService(c, configured), true}, {groupService(c, map[string]string{targetA: "", targetB: "", targetC: ""}), false}} {
		page, err := view.svc.ListJobs(ctx, api.JobFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, j := range page.Jobs {
			ids = append(ids, j.ID)
		}
		for _, id := range []string{jobA.ID, jobB.ID, queued.ID} {
			if slices.Contains(ids, id) != view.want {
				t.Errorf("job %s listed: %t, want %t (listed %v)", id, !view.want, view.want, ids)
			}
		}
	}

	// Schedules follow their target to another group: a service that
	// sees zone-b-db in zone a moves its Schedule, and one with the
	// configured groups moves it back; zone a's Schedule stays.
	before, err := c.TemporalSchedule(scB.ID)
	if err != nil {
		t.Fatal(err)
	}
	moved := groupService(c, map[string]string{targetA: "zone-a", targetB: "zone-a", targetC: "zone-c"})
	res, err := moved.ReconcileScheduleQueues(ctx)
	if err != nil || !slices.Equal(res.Moved, []string{scB.ID}) || len(res.Failed) != 0 {
		t.Fatalf("reconcile into zone a: %+v %v", res, err)
	}
	if got := scheduleQueue(t, c, scB.ID); got != queueA {
		t.Errorf("after the move schedule %s starts on %s, want %s", scB.ID, got, queueA)
	}
	back := groupService(c, configured)
	if res, err := back.ReconcileScheduleQueues(ctx); err != nil || !slices.Equal(res.Moved, []string{scB.ID}) {
		t.Fatalf("reconcile back: %+v %v", res, err)
	}
	for id, want := range map[string]string{scA.ID: queueA, scB.ID: queueB} {
		if got := scheduleQueue(t, c, id); got != want {
			t.Errorf("after reconciling back schedule %s starts on %s, want %s", id, got, want)
		}
	}
	// Only the queue changed.
	after, err := c.TemporalSchedule(scB.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Spec.Name != before.Spec.Name || after.Spec.Target != targetB || !slices.Equal(after.Spec.Tasks, before.Spec.Tasks) ||
		after.Paused != before.Paused || !slices.Equal(after.Crons, before.Crons) {
		t.Errorf("schedule %s changed beyond its queue: %+v, was %+v", scB.ID, after, before)
	}
}

// groupService is a starter service on the cluster's dev server with the
// demo target and the given targets' groups.
func groupService(c *Cluster, groups map[string]string) *starter.Service {
	targets := []config.TargetInfo{{Name: DemoTarget, Driver: "sqlite"}}
	for name, g := range groups {
		targets = append(targets, config.TargetInfo{Name: name, Driver: "sqlite", Group: g})
	}
	return starter.New(c.Temporal, starter.Options{Namespace: Namespace, TaskQueue: TaskQueue, Targets: targets})
}

// scheduleQueue is the task queue schedule id's action starts on.
func scheduleQueue(t *testing.T, c *Cluster, id string) string {
	t.Helper()
	// A describe is a query of the Schedule's workflow: on a loaded
	// machine right after an update it can fail; it is tried again.
	var desc *client.ScheduleDescription
	var err error
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		desc, err = c.Temporal.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("describe schedule %s: %v", id, err)
		}
	}
	act, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok {
		t.Fatalf("schedule %s: action %T", id, desc.Schedule.Action)
	}
	return act.TaskQueue
}

// taskStart is a workflow or activity task of a workflow's history: which
// worker identity took it, from which queue (activities).
type taskStart struct {
	kind, name, identity, queue string
}

// startedBy lists the workflow tasks (by the identity that completed them)
// and activity tasks (by the identity that started them, with the queue
// they were scheduled on) of workflow id.
func startedBy(t *testing.T, c *Cluster, id string) []taskStart {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iter := c.Temporal.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	scheduled := map[int64]*historypb.ActivityTaskScheduledEventAttributes{}
	var out []taskStart
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", id, err)
		}
		switch ev.GetEventType() {
		case enums.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			out = append(out, taskStart{kind: "workflow task", identity: ev.GetWorkflowTaskStartedEventAttributes().GetIdentity()})
		case enums.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			scheduled[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes()
		case enums.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := ev.GetActivityTaskStartedEventAttributes()
			s := scheduled[a.GetScheduledEventId()]
			out = append(out, taskStart{kind: "activity", name: s.GetActivityType().GetName(), identity: a.GetIdentity(), queue: s.GetTaskQueue().GetName()})
		}
	}
	return out
}

// ranOn checks that every workflow and activity task of workflow id ran on
// worker (by identity) and every activity was scheduled on queue (and,
// with wantActivities, that some activity ran).
func ranOn(t *testing.T, c *Cluster, id, queue string, worker int, wantActivities bool) {
	t.Helper()
	tasks := startedBy(t, c, id)
	activities := 0
	for _, ts := range tasks {
		if got := c.WorkerOfIdentity(ts.identity); got != worker {
			t.Errorf("%s: %s %s ran on %q (worker %d), want worker %d (%s)", id, ts.kind, ts.name, ts.identity, got, worker, c.Worker(worker).Name)
		}
		if ts.kind == "activity" {
			activities++
			// Host-pinned steps (drills) would be on queue@host.
			if ts.queue != queue && !strings.HasPrefix(ts.queue, queue+"@") {
				t.Errorf("%s: activity %s scheduled on %s, want %s", id, ts.name, ts.queue, queue)
			}
		}
	}
	if wantActivities && activities == 0 {
		t.Errorf("%s: no activity ran (%d tasks)", id, len(tasks))
	}
	t.Logf("%s: %d workflow and activity tasks, all on %s (queue %s)", id, len(tasks), c.Worker(worker).Name, queue)
}

// waitJobOrDump waits for job id to end; on timeout it logs the histories
// of the job and of the other workflows named, then fails.
func waitJobOrDump(t *testing.T, c *Cluster, id string, timeout time.Duration, others ...string) domain.Job {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		job, err := c.APIs[0].GetJob(ctx, id)
		cancel()
		if err == nil && job.State.Terminal() {
			return job
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, wid := range append([]string{id}, others...) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		iter := c.Temporal.GetWorkflowHistory(ctx, wid, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		var lines []string
		for iter.HasNext() {
			ev, err := iter.Next()
			if err != nil {
				lines = append(lines, err.Error())
				break
			}
			lines = append(lines, fmt.Sprintf("%d %s %s %v", ev.GetEventId(), ev.GetEventTime().AsTime().Format("15:04:05.000"), ev.GetEventType(), ev.GetAttributes()))
		}
		desc, err := c.Temporal.DescribeWorkflowExecution(ctx, wid, "")
		cancel()
		t.Logf("---- %s: pending workflow task %v, pending activities %v (%v)\n%s", wid, desc.GetPendingWorkflowTask(), desc.GetPendingActivities(), err, strings.Join(lines, "\n"))
	}
	t.Fatalf("job %s did not end within %s", id, timeout)
	return domain.Job{}
}

// waitDrill polls drill id until cond holds (2 minutes at most).
func waitDrill(t *testing.T, c *Cluster, id string, cond func(domain.Drill) bool) domain.Drill {
	t.Helper()
	var last domain.Drill
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		d, err := c.APIs[0].GetDrill(ctx, id)
		cancel()
		if err == nil {
			last = d
			if cond(d) {
				return d
			}
		}
	}
	t.Fatalf("drill %s: condition not met within 2 min; last state %s step %s awaiting %q", id, last.State, last.Step, last.Awaiting)
	return last
}
