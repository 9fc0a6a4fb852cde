package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/commandlog"
	"github.com/themis-maintenance/themis/internal/audit"
	"github.com/themis-maintenance/themis/internal/history"
	"github.com/themis-maintenance/themis/internal/telemetry"
)

// Store is the history store the activities write to.
type Store interface {
	driver.History
	RecordTaskResult(ctx context.Context, rec history.TaskRecord) error
}

// Activities holds the dependencies of the task activities.
type Activities struct {
	Registry *driver.Registry
	History  Store
	// Metrics is not used to count outcomes: an activity runs once per
	// attempt, so jobs and tasks are counted by the workflows through the
	// SDK's replay-safe metrics handler (themis_jobs_total,
	// themis_tasks_total, themis_jobs_triggered_total).
	Metrics *telemetry.Metrics
	// Audit is the audit log (api.audit_sink) where drill decisions sent
	// outside the API (signals and Updates from the Temporal UI or CLI) are
	// recorded. Optional: without it they are in the drill report only.
	Audit audit.Sink
	// HeartbeatInterval is how often a running task heartbeats even when its
	// driver reports nothing new (a long VACUUM of one table, say).
	// Optional: defaulted to 5s.
	HeartbeatInterval time.Duration
}

// Task returns the activity function for task type t; the worker registers
// it under the task type's wire name so the Temporal UI shows that name.
func (a *Activities) Task(t domain.TaskType) func(context.Context, TaskInput) (TaskOutput, error) {
	return func(ctx context.Context, in TaskInput) (TaskOutput, error) {
		if in.Task != t {
			return TaskOutput{}, classify(driver.Permanentf(driver.KindInvalidInput, "activity %s got input for task %s", t, in.Task), 0, 0)
		}
		return a.run(ctx, in)
	}
}

func (a *Activities) run(ctx context.Context, in TaskInput) (TaskOutput, error) {
	info := activity.GetInfo(ctx)
	attempt := int(info.Attempt)
	started := time.Now()
	logger := activity.GetLogger(ctx)

	target, drv, err := a.Registry.Lookup(in.Target)
	if err != nil {
		return TaskOutput{}, classify(err, attempt, started.UnixMilli())
	}
	if !driver.Supports(drv, in.Task) {
		return TaskOutput{}, classify(driver.NotSupported(drv.Name(), in.Task), attempt, started.UnixMilli())
	}
	if in.DryRun && !driver.PlansDryRun(drv, in.Task) {
		why := fmt.Sprintf("dry run: the %s driver cannot plan %s without doing it", drv.Name(), in.Task)
		if !in.Task.Heavy() {
			why = fmt.Sprintf("dry run: %s only reads the target, so there is nothing to plan", in.Task)
		}
		return TaskOutput{
			Skipped: why,
			Attempt: attempt, StartedAtMs: started.UnixMilli(), FinishedAtMs: time.Now().UnixMilli(),
		}, nil
	}
	budget := in.Budget
	budget.Carried = a.carried(ctx, in)

	var resume Heartbeat
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &resume); err != nil {
			logger.Warn("ignoring undecodable heartbeat checkpoint", "error", err)
			resume = Heartbeat{}
		}
	}

	hb := newHeartbeater(ctx, attempt, resume)
	stop := hb.keepAlive(a.heartbeatInterval())
	defer stop()

	// Every statement the driver runs goes to the command log (a dry run
	// executes none: its catalog reads are not kept).
	var cmdlog *commandlog.Recorder
	if !in.DryRun {
		cmdlog = a.commandRecorder(in, attempt)
	}
	ctx = commandlog.WithRecorder(ctx, cmdlog)
	defer a.flushCommands(ctx, cmdlog)

	res, err := driver.Run(ctx, drv, driver.Request{
		Target: target, Task: in.Task, Options: in.Options,
		Checkpoint: resume.Checkpoint, Progress: hb.report,
		History: a.History, JobID: in.JobID, Attempt: attempt,
		DryRun: in.DryRun, Budget: budget,
	})
	if err != nil && ctx.Err() == nil {
		hb.flush() // the retry resumes from the newest checkpoint
	}
	finished := time.Now()
	rec := history.TaskRecord{
		JobID: in.JobID, Target: in.Target, Task: in.Task,
		StartedAt: started, FinishedAt: finished,
	}
	if err != nil {
		if ctx.Err() != nil {
			// Cancelled: report the cancellation itself, not what it caused.
			return TaskOutput{}, ctx.Err()
		}
		rec.State, rec.Error = domain.StateFailed, err.Error()
		a.recordQuietly(ctx, rec)
		return TaskOutput{}, classify(err, attempt, started.UnixMilli())
	}
	details := withBudgetDetails(res, in.DryRun, budget)
	if in.DryRun {
		// A plan is no run: it must not count in duration predictions.
		return TaskOutput{
			Summary: res.Summary, Details: details, Alerts: res.Alerts, Attempt: attempt,
			StartedAtMs: started.UnixMilli(), FinishedAtMs: finished.UnixMilli(),
		}, nil
	}
	a.saveCarried(ctx, in, res)
	rec.State, rec.Summary, rec.Details = domain.StateSucceeded, res.Summary, details
	a.recordQuietly(ctx, rec)
	return TaskOutput{
		Summary: res.Summary, Details: details, Alerts: res.Alerts, Attempt: attempt,
		StartedAtMs: started.UnixMilli(), FinishedAtMs: finished.UnixMilli(),
	}, nil
}

// commandRecorder returns the Recorder of one task attempt, writing to the
// history store when it keeps a command log (nil otherwise: nothing is
// recorded).
func (a *Activities) commandRecorder(in TaskInput, attempt int) *commandlog.Recorder {
	sink, ok := a.History.(commandlog.Sink)
	if !ok {
		return nil
	}
	return commandlog.NewRecorder(commandlog.Meta{
		JobID: in.JobID, ScheduleID: in.ScheduleID, Target: in.Target, Task: string(in.Task), Attempt: attempt,
	}, sink)
}

// flushCommands writes what is left of a task's command log; like the task
// record, a history-store hiccup is logged, not returned.
func (a *Activities) flushCommands(ctx context.Context, rec *commandlog.Recorder) {
	if err := rec.Flush(context.WithoutCancel(ctx)); err != nil {
		activity.GetLogger(ctx).Warn("record the task's command log in history failed", "error", err)
	}
}

func (a *Activities) heartbeatInterval() time.Duration {
	if a.HeartbeatInterval > 0 {
		return a.HeartbeatInterval
	}
	return 5 * time.Second
}

// recordQuietly writes a task record; a history-store hiccup must not fail
// maintenance work that already happened, so it is logged instead.
func (a *Activities) recordQuietly(ctx context.Context, rec history.TaskRecord) {
	if a.History == nil {
		return
	}
	if err := a.History.RecordTaskResult(context.WithoutCancel(ctx), rec); err != nil {
		activity.GetLogger(ctx).Warn("record task result in history failed", "task", rec.Task, "error", err)
	}
}

// JobRecordTask is the task name under which whole jobs are kept in the
// history store, beside the records of their tasks.
const JobRecordTask domain.TaskType = "job"

// RecordJob stores a finished job in the history store. Jobs and tasks are
// counted by the workflow (once per outcome), not here: an activity runs
// once per attempt.
func (a *Activities) RecordJob(ctx context.Context, in RecordJobInput) error {
	a.Metrics.JobDurations(ctx, in.Job)
	if a.History == nil {
		return nil
	}
	raw, err := json.Marshal(in.Job)
	if err != nil {
		return fmt.Errorf("encode job %s: %w", in.Job.ID, err)
	}
	var details map[string]any
	_ = json.Unmarshal(raw, &details)
	return a.History.RecordTaskResult(ctx, history.TaskRecord{
		JobID: in.Job.ID, Target: in.Job.Target, Task: JobRecordTask, State: in.Job.State,
		StartedAt: time.UnixMilli(in.Job.StartedAtMs), FinishedAt: time.UnixMilli(in.Job.FinishedAtMs),
		Summary: in.Job.ResultSummary, Error: in.Job.ErrorMessage, Details: details,
	})
}

// heartbeater turns driver progress into Temporal heartbeats. The latest
// progress is re-sent on a ticker so cancellation reaches a task that sits in
// one long statement, and so the heartbeat timeout never fires on live work.
//
// A task working through many small relations reports after each one, with
// a checkpoint that grows with the relations done; encoding it every time
// would cost time quadratic in their number, while the worker sends the
// server one heartbeat a second at most. So progress is recorded at most
// every recordEvery: reports in between update the latest state, which a
// timer records at the end of the window (and stop records it when the task
// failed, so a retry resumes from it). The worker itself sends a recorded
// heartbeat only at the end of its throttle interval, so a worker killed
// mid-task loses the last second or so of checkpoints; a Durable report is
// therefore sent to the server at once, and the driver waits for it.
type heartbeater struct {
	ctx      context.Context
	mu       sync.Mutex
	last     Heartbeat
	pending  any // the newest checkpoint, not yet encoded into last
	recorded time.Time
	timer    *time.Timer
	attempt  int
}

// recordEvery bounds how often progress is encoded and recorded.
const recordEvery = 250 * time.Millisecond

func newHeartbeater(ctx context.Context, attempt int, resume Heartbeat) *heartbeater {
	h := &heartbeater{ctx: ctx, attempt: attempt, last: resume}
	h.last.Attempt = attempt
	if h.last.Note == "" {
		h.last.Note = "starting"
	} else {
		h.last.Note = "resuming: " + h.last.Note
	}
	h.mu.Lock()
	h.recordLocked()
	h.mu.Unlock()
	return h
}

func (h *heartbeater) report(p driver.Progress) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last.Pct, h.last.Note = p.Pct, p.Note
	if p.Checkpoint != nil {
		h.pending = p.Checkpoint
	}
	if p.Durable {
		h.recordLocked()
		last := h.last
		h.mu.Unlock()
		h.deliver(last)
		h.mu.Lock()
		return
	}
	if wait := recordEvery - time.Since(h.recorded); wait > 0 {
		if h.timer == nil {
			h.timer = time.AfterFunc(wait, h.flush)
		}
		return
	}
	h.recordLocked()
}

// flush records the latest progress if a report is waiting for its window.
func (h *heartbeater) flush() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.timer == nil {
		return
	}
	h.timer.Stop()
	h.timer = nil
	h.recordLocked()
}

// recordLocked encodes the pending checkpoint and records the heartbeat.
func (h *heartbeater) recordLocked() {
	if h.pending != nil {
		if raw, err := json.Marshal(h.pending); err == nil {
			h.last.Checkpoint = raw
		}
		h.pending = nil
	}
	h.recorded = time.Now()
	activity.RecordHeartbeat(h.ctx, h.last)
}

// durableTimeout bounds the wait for a durable heartbeat to be delivered.
const durableTimeout = 10 * time.Second

// deliver sends hb to the server now and waits for it, bypassing the
// worker's heartbeat throttling, under which a heartbeat recorded within a
// throttle interval of the last one sent waits for the interval's end and is
// lost if the worker dies first. A failure is logged: the heartbeat is
// recorded as usual too, and the work goes on.
func (h *heartbeater) deliver(hb Heartbeat) {
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil { // no server behind the activity (SDK test environment)
				err = fmt.Errorf("no client: %v", r)
			}
		}()
		ctx, cancel := context.WithTimeout(h.ctx, durableTimeout)
		defer cancel()
		return activity.GetClient(h.ctx).RecordActivityHeartbeat(ctx, activity.GetInfo(h.ctx).TaskToken, hb)
	}()
	if err != nil && h.ctx.Err() == nil {
		activity.GetLogger(h.ctx).Warn("durable checkpoint not delivered; it is sent with the next heartbeat", "error", err)
	}
}

// keepAlive re-records the latest progress every interval until stop, which
// also cancels a pending window so nothing is recorded after the task ends.
func (h *heartbeater) keepAlive(every time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-h.ctx.Done():
				return
			case <-t.C:
				h.mu.Lock()
				h.recordLocked()
				h.mu.Unlock()
			}
		}
	}()
	return func() {
		close(done)
		h.mu.Lock()
		if h.timer != nil {
			h.timer.Stop()
			h.timer = nil
		}
		h.mu.Unlock()
	}
}
