package workflows

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/themis-maintenance/themis/activities"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// MaintenanceInput is the input of one job. Scheduled runs carry it in the
// Temporal Schedule's action; manual runs set Forced and TriggeredBy.
type MaintenanceInput struct {
	ScheduleID   string              `json:"schedule_id"`
	ScheduleName string              `json:"schedule_name"`
	Spec         domain.ScheduleSpec `json:"spec"`
	Forced       bool                `json:"forced"`
	TriggeredBy  string              `json:"triggered_by"`
	// DryRun: each heavy task plans what it would do and executes nothing;
	// the window, blackouts and the target's lock do not apply (nothing
	// heavy runs), light tasks and the drill are skipped.
	DryRun bool `json:"dry_run,omitempty"`
	// HeartbeatTimeout overrides DefaultHeartbeatTimeout (tests shorten it).
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout,omitempty"`
}

// MaintenanceWorkflow runs one job: window check, then each task as its own
// activity — in order, or as the dependency graph of task_dependencies
// (jobrun.go) — honouring halt_on_task_failure. A job with a failed task
// ends with the workflow failed; a cancelled job ends cancelled.
func MaintenanceWorkflow(ctx workflow.Context, in MaintenanceInput) (domain.Job, error) {
	info := workflow.GetInfo(ctx)
	job := newJob(in, info.WorkflowExecution.ID, info.WorkflowExecution.RunID, workflow.Now(ctx))
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (domain.Job, error) { return job, nil }); err != nil {
		return job, err
	}
	logger := workflow.GetLogger(ctx)
	countTriggered(ctx, job)

	if in.Spec.EnforceWindow && !in.Forced && !in.DryRun && !inWindow(ctx, in.Spec) {
		job.State = domain.StateSkipped
		job.ResultSummary = fmt.Sprintf("outside the maintenance window %02d:00–%02d:00 %s; no task ran",
			in.Spec.WindowStartHour, in.Spec.WindowEndHour, in.Spec.Timezone)
		for i := range job.Tasks {
			job.Tasks[i].State = domain.StateSkipped
		}
		finish(ctx, &job, "")
		return job, nil
	}

	// Version 1: a scheduled run that starts inside one of the target's
	// blackouts is skipped (a forced run goes through: the API lets only
	// admins force, and audits it).
	if !in.Forced && !in.DryRun && workflow.GetVersion(ctx, blackoutChange, workflow.DefaultVersion, 1) >= 1 {
		w, err := activeBlackout(ctx, in)
		if err != nil {
			job.State, job.ErrorMessage = domain.StateFailed, "blackout check failed: "+taskErrorMessage(err)
			for i := range job.Tasks {
				job.Tasks[i].State = domain.StateSkipped
			}
			finish(ctx, &job, "")
			return job, temporal.NewNonRetryableApplicationError(job.ErrorMessage, JobFailedErrorType, nil, job)
		}
		if w != nil {
			job.State = domain.StateSkipped
			job.ResultSummary = "skipped: " + w.String() + "; no task ran"
			for i := range job.Tasks {
				job.Tasks[i].State = domain.StateSkipped
				job.Tasks[i].ResultSummary = "skipped: " + w.String()
			}
			finish(ctx, &job, "")
			return job, nil
		}
	}

	r := &jobRun{in: in, job: &job, logger: logger}
	// Version 1: heavy tasks take a slot of the target's lock first.
	// A dry run takes none: it runs nothing heavy.
	r.slots = !in.DryRun && workflow.GetVersion(ctx, targetSlotsChange, workflow.DefaultVersion, 1) >= 1
	// Version 1: task states are kept in the progress memo.
	r.memo = workflow.GetVersion(ctx, progressMemoChange, workflow.DefaultVersion, 1) >= 1

	// Version 1: predicted durations (ETA, window fit).
	if !in.DryRun && workflow.GetVersion(ctx, predictionChange, workflow.DefaultVersion, 1) >= 1 {
		r.predict(ctx)
	}
	// Version 1: heavy tasks stop starting units of work when the window
	// closes or time_limit_minutes has passed (budget.go).
	if !in.DryRun && workflow.GetVersion(ctx, windowBudgetChange, workflow.DefaultVersion, 1) >= 1 {
		r.setBudget(ctx)
	}

	job.State = domain.StateRunning
	setState(ctx, domain.StateRunning)
	// Version 1: task_dependencies make the tasks a graph (only schedules
	// that have dependencies ask, so older runs replay unchanged).
	if in.Spec.HasTaskGraph() && workflow.GetVersion(ctx, taskGraphChange, workflow.DefaultVersion, 1) >= 1 {
		r.runGraph(ctx)
	} else {
		r.runInOrder(ctx)
	}
	finish(ctx, &job, r.note)
	switch job.State {
	case domain.StateCancelled:
		return job, temporal.NewCanceledError(job.ResultSummary)
	case domain.StateFailed:
		return job, temporal.NewNonRetryableApplicationError(job.ErrorMessage, JobFailedErrorType, nil, job)
	}
	return job, nil
}

// blackoutChange versions the blackout check of scheduled runs.
const blackoutChange = "target-blackouts"

// activeBlackout asks a worker whether a blackout of the target is in force
// at the job's start; nil when none is.
func activeBlackout(ctx workflow.Context, in MaintenanceInput) (*domain.BlackoutWindow, error) {
	actx := workflow.WithActivityOptions(ctx, shortActivityOptions("Check the blackouts of "+in.Spec.Target))
	var res activities.BlackoutResult
	if err := workflow.ExecuteActivity(actx, CheckBlackoutActivity, activities.BlackoutInput{
		Target: in.Spec.Target, AtMs: workflow.GetInfo(ctx).WorkflowStartTime.UnixMilli(),
	}).Get(actx, &res); err != nil {
		return nil, err
	}
	if !res.Active {
		return nil, nil
	}
	return &res.Window, nil
}

// targetSlotsChange versions the heavy-task slots (GetVersion).
const targetSlotsChange = "target-heavy-task-slots"

// needsSlot: heavy tasks wait for a slot of their target. The drill takes
// its own slot around its restore (DrillWorkflow), so the job does not hold
// one for the whole drill, approvals included.
func needsSlot(t domain.TaskType) bool {
	return t.Heavy() && t != domain.TaskDisasterRecoveryDrill
}

// waitForSlot takes a heavy-task slot for task i; while the job waits, its
// state is waiting and the Temporal UI says whom for. The wait counts
// against the window: at the deadline it gives up with errWindowClosed.
func waitForSlot(ctx workflow.Context, in MaintenanceInput, job *domain.Job, i int, deadline time.Time) (*targetSlot, error) {
	task := &job.Tasks[i]
	t := in.Spec.Tasks[i]
	slot, err := acquireSlot(ctx, slotRequest{
		target: in.Spec.Target, key: "task-" + strconv.Itoa(i+1), owner: job.ID, task: string(t), deadline: deadline,
		onQueued: func(q LockQueued) {
			msg := waitingFor(in.Spec.Target, q)
			if job.State != domain.StateWaiting {
				job.State = domain.StateWaiting
				setState(ctx, domain.StateWaiting)
			}
			task.State = domain.StateWaiting
			task.ResultSummary = msg
			workflow.SetCurrentDetails(ctx, fmt.Sprintf("%s — before task %d/%d **%s**", msg, i+1, len(in.Spec.Tasks), t.Title()))
		},
	})
	if job.State == domain.StateWaiting {
		job.State = domain.StateRunning
		setState(ctx, domain.StateRunning)
		task.ResultSummary = ""
	}
	return slot, err
}

// windowDeadline is when the job's maintenance window closes (zero for a
// forced run or a schedule without window), decided once and recorded.
func windowDeadline(ctx workflow.Context, in MaintenanceInput) time.Time {
	spec := in.Spec
	if !spec.EnforceWindow || in.Forced || spec.WindowStartHour == spec.WindowEndHour {
		return time.Time{}
	}
	now := workflow.Now(ctx)
	var ms int64
	encoded := workflow.SideEffect(ctx, func(workflow.Context) any {
		loc, err := domain.LoadTimezone(spec.Timezone)
		if err != nil {
			loc = time.UTC
		}
		return windowEnd(now, loc, spec.WindowEndHour).UnixMilli()
	})
	if err := encoded.Get(&ms); err != nil || ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// windowEnd is the first end of the window after now: endHour:00 in loc
// today, or tomorrow when that has passed.
func windowEnd(now time.Time, loc *time.Location, endHour int) time.Time {
	t := now.In(loc)
	end := time.Date(t.Year(), t.Month(), t.Day(), endHour, 0, 0, 0, loc)
	if !end.After(t) {
		end = time.Date(t.Year(), t.Month(), t.Day()+1, endHour, 0, 0, 0, loc)
	}
	return end
}

func newJob(in MaintenanceInput, id, runID string, now time.Time) domain.Job {
	job := domain.Job{
		ID: id, RunID: runID, ScheduleID: in.ScheduleID, ScheduleName: in.ScheduleName,
		Target: in.Spec.Target, State: domain.StatePending, Forced: in.Forced, DryRun: in.DryRun,
		TriggeredBy: in.TriggeredBy, StartedAtMs: now.UnixMilli(),
		Tasks: make([]domain.TaskRun, len(in.Spec.Tasks)),
	}
	if job.TriggeredBy == "" {
		job.TriggeredBy = "schedule"
	}
	for i, t := range in.Spec.Tasks {
		job.Tasks[i] = domain.TaskRun{TaskType: t, State: domain.StatePending}
	}
	return job
}

// inWindow decides the window check once and records it, so a replay on a
// machine with other time-zone data still takes the same branch.
func inWindow(ctx workflow.Context, spec domain.ScheduleSpec) bool {
	now := workflow.Now(ctx)
	var ok bool
	encoded := workflow.SideEffect(ctx, func(workflow.Context) any {
		loc, err := domain.LoadTimezone(spec.Timezone)
		if err != nil {
			loc = time.UTC
		}
		return domain.InWindow(now, loc, spec.WindowStartHour, spec.WindowEndHour)
	})
	if err := encoded.Get(&ok); err != nil {
		return true
	}
	return ok
}

func runTask(ctx workflow.Context, in MaintenanceInput, jobID string, t domain.TaskType, i int, budget driver.Budget) (activities.TaskOutput, error) {
	if t == domain.TaskDisasterRecoveryDrill {
		return runDrill(ctx, in, jobID, i)
	}
	actx := workflow.WithActivityOptions(ctx, taskActivityOptions(in, t, i, len(in.Spec.Tasks)))
	var out activities.TaskOutput
	err := workflow.ExecuteActivity(actx, string(t), activities.TaskInput{
		JobID: jobID, ScheduleID: in.ScheduleID, Target: in.Spec.Target, Task: t,
		Options: in.Spec.TaskOptions[t], DryRun: in.DryRun, Budget: budget,
	}).Get(actx, &out)
	return out, err
}

// finish settles the job's state, records it in the history store (even when
// the workflow was cancelled), publishes the state as a search attribute and
// counts the job and its tasks. note, when set, says why the remaining tasks
// were skipped (the window closed while waiting for the target); a job none
// of whose tasks ran is then skipped.
func finish(ctx workflow.Context, job *domain.Job, note string) {
	now := workflow.Now(ctx)
	job.FinishedAtMs = now.UnixMilli()
	job.DurationMs = job.FinishedAtMs - job.StartedAtMs
	if job.State != domain.StateSkipped {
		job.State, job.ErrorMessage, job.ResultSummary = settle(job.Tasks, ctx.Err() != nil)
		job.ProgressPct = 100
		if note != "" {
			job.ResultSummary += "; " + note
			if job.State == domain.StateSucceeded && noneRan(job.Tasks) {
				job.State = domain.StateSkipped
			}
		}
	}
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("Job **%s**: %s", job.State, job.ResultSummary))

	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	rctx := workflow.WithActivityOptions(dctx, shortActivityOptions("Record job "+string(job.State)+" in history"))
	if err := workflow.ExecuteActivity(rctx, RecordJobActivity, activities.RecordJobInput{Job: *job}).Get(rctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("record job in history failed", "error", err)
	}
	setState(dctx, job.State)
	countOutcome(dctx, *job)
}

func noneRan(tasks []domain.TaskRun) bool {
	for _, t := range tasks {
		if t.State != domain.StateSkipped {
			return false
		}
	}
	return true
}

// settle derives the job state from its tasks: any failed task fails the
// job; otherwise a cancelled workflow is cancelled; otherwise it succeeded.
func settle(tasks []domain.TaskRun, cancelled bool) (domain.JobState, string, string) {
	var failed, done, skipped []string
	for _, t := range tasks {
		switch t.State {
		case domain.StateFailed:
			failed = append(failed, fmt.Sprintf("%s: %s", t.TaskType, t.ErrorMessage))
		case domain.StateSucceeded:
			done = append(done, string(t.TaskType))
		case domain.StateSkipped:
			skipped = append(skipped, string(t.TaskType))
		}
	}
	summary := fmt.Sprintf("%d of %d tasks succeeded", len(done), len(tasks))
	if len(skipped) > 0 {
		summary += fmt.Sprintf(", %d skipped", len(skipped))
	}
	switch {
	case len(failed) > 0:
		return domain.StateFailed, fmt.Sprintf("%d task(s) failed: %s", len(failed), strings.Join(failed, "; ")), summary
	case cancelled:
		return domain.StateCancelled, "cancelled by request", summary + ", cancelled"
	}
	return domain.StateSucceeded, "", summary
}

func setState(ctx workflow.Context, s domain.JobState) {
	_ = workflow.UpsertTypedSearchAttributes(ctx, JobStateKey.ValueSet(string(s)))
}

// taskErrorMessage unwraps Temporal's activity error to the task's own message.
func taskErrorMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) {
		return "timed out (" + timeoutErr.TimeoutType().String() + ")"
	}
	return err.Error()
}

func failedAttempt(err error) int {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.HasDetails() {
		var d activities.FailureDetails
		if appErr.Details(&d) == nil {
			return d.Attempt
		}
	}
	return 0
}

// runDrill runs the disaster_recovery_drill task as a child DrillWorkflow:
// the job waits for it (approvals included), and a drill that does not pass
// fails the task, so halt_on_task_failure skips what follows.
func runDrill(ctx workflow.Context, in MaintenanceInput, jobID string, i int) (activities.TaskOutput, error) {
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:          DrillIDForJob(jobID),
		StaticSummary:       "DR drill of " + in.Spec.Target + " (task " + strconv.Itoa(i+1) + "/" + strconv.Itoa(len(in.Spec.Tasks)) + " of " + jobID + ")",
		ParentClosePolicy:   enums.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		WaitForCancellation: true,
	})
	start := workflow.Now(ctx).UnixMilli()
	var d domain.Drill
	err := workflow.ExecuteChildWorkflow(cctx, DrillWorkflowName, DrillInput{
		Target: in.Spec.Target, RequestedBy: in.TriggeredBy, JobID: jobID, HeartbeatTimeout: in.HeartbeatTimeout,
	}).Get(cctx, &d)
	if err != nil {
		return activities.TaskOutput{}, err
	}
	return activities.TaskOutput{
		Summary: fmt.Sprintf("drill %s: RTO %d ms (objective %d), RPO %d ms (objective %d)", d.State, d.RTOMs, d.RTOObjectiveMs, d.RPOMs, d.RPOObjectiveMs),
		Details: map[string]any{"drill_id": d.ID, "rto_ms": d.RTOMs, "rpo_ms": d.RPOMs, "passed": d.Passed},
		Attempt: 1, StartedAtMs: start, FinishedAtMs: workflow.Now(ctx).UnixMilli(),
	}, nil
}
