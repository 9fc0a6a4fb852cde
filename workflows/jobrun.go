package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/themis-maintenance/themis/activities"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// taskGraphChange versions running a schedule's tasks as a dependency
// graph (GetVersion).
const taskGraphChange = "task-dependency-graph"

// jobRun runs the tasks of one job, in order or as a dependency graph.
type jobRun struct {
	in     MaintenanceInput
	job    *domain.Job
	logger log.Logger
	slots  bool // heavy tasks take a slot of the target's lock
	memo   bool // task states are kept in the progress memo

	deadline *time.Time
	// halted: a task failed and halt_on_task_failure is set.
	halted bool
	// note, when set, says why the tasks not started yet are skipped (the
	// window closed while waiting for the target).
	note string
	// graph: tasks run as a dependency graph; running lists those running.
	graph   bool
	running []int
	// fitWindow: a task predicted not to end before the window closes is
	// skipped (scheduled runs of a schedule with an enforced window).
	fitWindow bool
	// budget bounds the units of work heavy tasks start (budget.go).
	budget driver.Budget
}

// predictionChange versions the duration prediction (GetVersion).
const predictionChange = "task-duration-prediction"

// predict asks the history store what each task is expected to take and
// keeps it on the job (job watch shows an ETA from it); for a scheduled run
// in an enforced window it also fixes the window's end, so a task that
// would not fit is skipped instead of started. A failed prediction predicts
// nothing.
func (r *jobRun) predict(ctx workflow.Context) {
	actx := workflow.WithActivityOptions(ctx, shortActivityOptions("Predict task durations from past runs"))
	var out activities.PredictOutput
	if err := workflow.ExecuteActivity(actx, PredictDurationsActivity, activities.PredictInput{
		Target: r.in.Spec.Target, Tasks: r.in.Spec.Tasks,
	}).Get(actx, &out); err != nil {
		r.logger.Warn("task duration prediction failed; no ETA and no window fit check", "error", err)
		return
	}
	for i, t := range r.in.Spec.Tasks {
		r.job.Tasks[i].PredictedMs = out.Ms[t]
	}
	spec := r.in.Spec
	if spec.EnforceWindow && !r.in.Forced && spec.WindowStartHour != spec.WindowEndHour {
		d := windowDeadline(ctx, r.in)
		r.deadline, r.fitWindow = &d, !d.IsZero()
	}
}

// wontFit says why task i would not end before the window closes ("" when
// it would, or nothing is known).
func (r *jobRun) wontFit(ctx workflow.Context, i int) string {
	p := r.job.Tasks[i].PredictedMs
	if !r.fitWindow || p <= 0 {
		return ""
	}
	left := r.deadline.Sub(workflow.Now(ctx))
	if time.Duration(p)*time.Millisecond <= left {
		return ""
	}
	return fmt.Sprintf("would not fit the window: predicted %s from past runs, %s left before it closes at %s",
		(time.Duration(p) * time.Millisecond).Round(time.Second), max(0, left).Round(time.Second), r.deadline.UTC().Format(time.RFC3339))
}

// runInOrder runs the tasks one after another.
func (r *jobRun) runInOrder(ctx workflow.Context) {
	for i := range r.in.Spec.Tasks {
		if r.notStarted(ctx, i, "") {
			continue
		}
		if !r.runAt(ctx, i) {
			continue
		}
		r.job.ProgressPct = float64(i+1) * 100 / float64(len(r.in.Spec.Tasks))
		if ctx.Err() == nil {
			upsertProgress(ctx, r.memo, *r.job)
		}
	}
}

// runGraph runs the tasks as the dependency graph of task_dependencies: a
// task starts once all its prerequisites have finished, in its own
// coroutine, so tasks with no path between them run in parallel (heavy
// ones still wait for a slot of the target). A prerequisite that did not
// succeed skips its dependents, saying which and why.
func (r *jobRun) runGraph(ctx workflow.Context) {
	r.graph = true
	tasks := r.in.Spec.Tasks
	pre := r.in.Spec.Prerequisites()
	started, finished := make([]bool, len(tasks)), make([]bool, len(tasks))
	done := workflow.NewBufferedChannel(ctx, len(tasks))
	nFinished, nRunning := 0, 0
	settled := func(i int) {
		finished[i] = true
		nFinished++
		r.job.ProgressPct = float64(nFinished) * 100 / float64(len(tasks))
		if ctx.Err() == nil {
			upsertProgress(ctx, r.memo, *r.job)
		}
	}
	for nFinished < len(tasks) {
		for again := true; again; {
			again = false
			for i := range tasks {
				if started[i] || !allOf(pre[i], finished) {
					continue
				}
				started[i] = true
				if r.notStarted(ctx, i, r.blockedBy(pre[i])) {
					settled(i)
					again = true // its dependents may be settled now too
					continue
				}
				nRunning++
				r.running = append(r.running, i)
				workflow.Go(ctx, func(gctx workflow.Context) {
					r.runAt(gctx, i)
					done.Send(gctx, i)
				})
			}
		}
		if nRunning == 0 {
			break // cannot happen with a validated (acyclic) graph
		}
		var i int
		done.Receive(ctx, &i)
		nRunning--
		r.running = removeInt(r.running, i)
		settled(i)
	}
}

// blockedBy says why a task whose prerequisites have all finished cannot
// run ("" when they all succeeded).
func (r *jobRun) blockedBy(pre []int) string {
	var why []string
	for _, j := range pre {
		t := r.job.Tasks[j]
		switch t.State {
		case domain.StateSucceeded:
		case domain.StateFailed:
			why = append(why, fmt.Sprintf("prerequisite %s failed", t.TaskType))
		case domain.StateCancelled:
			why = append(why, fmt.Sprintf("prerequisite %s was cancelled", t.TaskType))
		default:
			why = append(why, fmt.Sprintf("prerequisite %s was %s", t.TaskType, t.State))
		}
	}
	return strings.Join(why, "; ")
}

// notStarted settles task i without running it when it must not start: the
// job was halted or its window closed, it was cancelled, or (graph) a
// prerequisite did not succeed (blocked says which). It reports whether it
// did.
func (r *jobRun) notStarted(ctx workflow.Context, i int, blocked string) bool {
	task := &r.job.Tasks[i]
	switch {
	case r.halted:
		task.State = domain.StateSkipped
		task.ResultSummary = "skipped: an earlier task failed and halt_on_task_failure is set"
	case r.note != "":
		task.State = domain.StateSkipped
		task.ResultSummary = "skipped: " + r.note
	case ctx.Err() != nil:
		task.State = domain.StateCancelled
	case blocked != "":
		task.State = domain.StateSkipped
		task.ResultSummary = "skipped: " + blocked
	case r.in.DryRun && dryRunSkip(r.in.Spec.Tasks[i]) != "":
		task.State = domain.StateSkipped
		task.ResultSummary = "skipped: " + dryRunSkip(r.in.Spec.Tasks[i])
	case r.budgetSpent(ctx) != "":
		task.State = domain.StateSkipped
		task.ResultSummary = "skipped: " + r.budgetSpent(ctx)
	default:
		why := r.wontFit(ctx, i)
		if why == "" {
			return false
		}
		task.State = domain.StateSkipped
		task.ResultSummary = "skipped: " + why
	}
	return true
}

// runAt runs task i: a slot of the target first when it is heavy, then its
// activity (or child drill). It reports whether the task itself ran (false
// when waiting for the target ended it).
func (r *jobRun) runAt(ctx workflow.Context, i int) bool {
	in, job := r.in, r.job
	t := in.Spec.Tasks[i]
	task := &job.Tasks[i]
	var slot *targetSlot
	if r.slots && needsSlot(t) {
		if r.deadline == nil {
			d := windowDeadline(ctx, in)
			r.deadline = &d
		}
		var err error
		slot, err = waitForSlot(ctx, in, job, i, *r.deadline)
		switch {
		case err == nil:
		case isWindowClosed(err):
			r.note = fmt.Sprintf("the maintenance window closed at %s while waiting for target %s (held by %s)",
				r.deadline.UTC().Format(time.RFC3339), in.Spec.Target, orNone(slot.lastHolders()))
			task.State = domain.StateSkipped
			task.ResultSummary = "skipped: " + r.note
			return false
		case temporal.IsCanceledError(err) || ctx.Err() != nil:
			task.State = domain.StateCancelled
			task.ErrorMessage = "cancelled while waiting for the target"
			return false
		default:
			task.State = domain.StateFailed
			task.ErrorMessage = taskErrorMessage(err)
			r.halted = in.Spec.HaltOnTaskFailure
			return false
		}
	}
	workflow.SetCurrentDetails(ctx, r.runningDetails(i))
	task.State = domain.StateRunning
	task.StartedAtMs = workflow.Now(ctx).UnixMilli()
	upsertProgress(ctx, r.memo, *job)
	out, err := runTask(ctx, in, job.ID, t, i, r.budget)
	task.FinishedAtMs = workflow.Now(ctx).UnixMilli()
	slot.release(ctx, "task "+string(t)+" done")
	switch {
	case err == nil && out.Skipped != "":
		task.State = domain.StateSkipped
		task.Attempt = out.Attempt
		task.ResultSummary = "skipped: " + out.Skipped
	case err == nil:
		task.State = domain.StateSucceeded
		task.Attempt = out.Attempt
		task.ProgressPct = 100
		task.ResultSummary = out.Summary
		task.Details = out.Details
		if len(out.Alerts) > 0 {
			if task.Details == nil {
				task.Details = map[string]any{}
			}
			task.Details["alerts"] = out.Alerts
		}
	case temporal.IsCanceledError(err) || ctx.Err() != nil:
		task.State = domain.StateCancelled
		task.ErrorMessage = "cancelled while running"
	default:
		task.State = domain.StateFailed
		task.ErrorMessage = taskErrorMessage(err)
		task.Attempt = failedAttempt(err)
		r.logger.Warn("task failed", "task", t, "error", err)
		if in.Spec.HaltOnTaskFailure {
			r.halted = true
		}
	}
	if slot != nil && slot.queued {
		if task.Details == nil {
			task.Details = map[string]any{}
		}
		task.Details["waited_for_target_ms"] = slot.waited.Milliseconds()
	}
	return true
}

// runningDetails is the Temporal UI's current-details line when task i
// starts: the task, or in a graph every task running now.
func (r *jobRun) runningDetails(i int) string {
	tasks := r.in.Spec.Tasks
	if !r.graph {
		return fmt.Sprintf("Running task %d/%d: **%s** on `%s`", i+1, len(tasks), tasks[i].Title(), r.in.Spec.Target)
	}
	names := make([]string, 0, len(r.running))
	for _, j := range r.running {
		if j == i || r.job.Tasks[j].State == domain.StateRunning {
			names = append(names, "**"+tasks[j].Title()+"**")
		}
	}
	return fmt.Sprintf("Running %d task(s) in parallel on `%s` (dependency graph): %s", len(names), r.in.Spec.Target, strings.Join(names, ", "))
}

func allOf(idx []int, set []bool) bool {
	for _, j := range idx {
		if !set[j] {
			return false
		}
	}
	return true
}

func removeInt(s []int, v int) []int {
	for k, x := range s {
		if x == v {
			return append(s[:k], s[k+1:]...)
		}
	}
	return s
}
