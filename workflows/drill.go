package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/themis-maintenance/themis/activities"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// Drill workflow names: type, query and signals. The signals' payload is
// ApprovalSignal (approve, reject) or AbortSignal (abort), for example
//
//	temporal workflow signal --workflow-id <drill id> --name approve \
//	  --input '{"step":"start","approver":"alice","comment":"go"}'
const (
	DrillWorkflowName = "DrillWorkflow"
	DrillStateQuery   = "state"
	ApproveSignal     = "approve"
	RejectSignal      = "reject"
	AbortSignalName   = "abort"
)

// Drill defaults.
const (
	DefaultStartApprovalTimeout    = 24 * time.Hour
	DefaultCompleteApprovalTimeout = 4 * time.Hour
	DefaultCanaryInterval          = time.Second
	DefaultCanaryDuration          = 10 * time.Second
	DefaultHostTimeout             = 15 * time.Minute
)

// drillSlotsAndHostChange versions the drill's heavy-task slot around
// restore and verify and the pinning of verify and clean-up to the host of
// the scratch instance (GetVersion).
const drillSlotsAndHostChange = "drill-target-slot-and-host-queue"

// drillOneClockChange versions running the restore and verify on the host
// of the canary writer, so that the failure instant (canary) and the
// serving instant (verify) are read from one host's clock, and passing the
// strategy and failure instant to the restore (GetVersion).
const drillOneClockChange = "drill-one-clock"

// drillBackupTimeRPOChange versions the recovery point of a restored
// backup: the later of the newest canary row found and the backup's time,
// instead of failing a drill whose copy holds no canary row (GetVersion).
const drillBackupTimeRPOChange = "drill-rpo-backup-time"

// DrillInput starts a drill.
type DrillInput struct {
	Target      string `json:"target"`
	RequestedBy string `json:"requested_by"`
	JobID       string `json:"job_id,omitempty"`
	// Approval timeouts; zero takes the defaults (24 h, 4 h).
	StartApprovalTimeout    time.Duration `json:"start_approval_timeout"`
	CompleteApprovalTimeout time.Duration `json:"complete_approval_timeout"`
	// Canary writer rate and run time before the simulated failure.
	CanaryInterval time.Duration `json:"canary_interval"`
	CanaryDuration time.Duration `json:"canary_duration"`
	RTOObjective   time.Duration `json:"rto_objective"`
	RPOObjective   time.Duration `json:"rpo_objective"`
	// HeartbeatTimeout of the restore and verify steps; zero is the default.
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout,omitempty"`
	// HostTimeout is how long verify and clean-up wait for the host of the
	// scratch instance to poll its queue (a restarting worker comes back
	// within it; past it the host is taken as gone). Zero: DefaultHostTimeout.
	HostTimeout time.Duration `json:"host_timeout,omitempty"`
	// Strategy is the drill strategy (domain.DrillStrategies): "" takes
	// the target's drill.strategy, else the driver's default.
	Strategy string `json:"strategy,omitempty"`
}

// ApprovalSignal approves or rejects the awaited step; it is the argument
// of the approve and reject signals and Updates.
type ApprovalSignal struct {
	Step     string `json:"step"`
	Approver string `json:"approver"`
	Comment  string `json:"comment"`
	// Channel is "api" when the API sends the Update; other Updates are
	// recorded as "update", signals as "signal" whatever it says.
	Channel string `json:"channel,omitempty"`
}

// AbortSignal stops a drill at any step; clean-up still runs.
type AbortSignal struct {
	By     string `json:"by"`
	Reason string `json:"reason"`
}

// drillRun is the state of one drill execution.
type drillRun struct {
	ctx     workflow.Context
	in      DrillInput
	d       domain.Drill
	scratch *driver.Scratch
	// v1: slot and host queue (drillSlotsAndHostChange).
	v1 bool
	// host made the scratch instance; verify and clean-up run on its queue.
	host activities.Host
	// v2: approvals by Update, signals received from the start
	// (drillApprovalUpdates).
	v2 bool
	// pending is the decision accepted for the awaited step, until the
	// wait applies it; wake tells the wait one came.
	pending *pendingDecision
	wake    workflow.Channel
	// ending: the steps are over, clean-up and report run.
	ending bool
	// oneClock: canary, restore and verify on one host's queue
	// (drillOneClockChange).
	oneClock bool
	// backupTimeRPO: a restored backup's time bounds the RPO
	// (drillBackupTimeRPOChange).
	backupTimeRPO bool
}

// DrillWorkflow runs a disaster-recovery drill: preflight → approval
// "start" → canary writer until the simulated failure → restore into a
// scratch instance → verify → measure RTO/RPO → approval "complete" →
// clean-up → report. Reject, abort, cancel, timeout or failure at any step
// still cleans up. The drill fails (and so does the workflow) unless it
// passes: verified, measured, and within both objectives.
func DrillWorkflow(ctx workflow.Context, in DrillInput) (domain.Drill, error) {
	info := workflow.GetInfo(ctx)
	r := &drillRun{in: withDrillDefaults(in)}
	r.d = domain.Drill{
		ID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID, Target: in.Target,
		State: domain.DrillRunning, RequestedBy: in.RequestedBy, JobID: in.JobID,
		StartedAtMs:    workflow.Now(ctx).UnixMilli(),
		RTOObjectiveMs: r.in.RTOObjective.Milliseconds(), RPOObjectiveMs: r.in.RPOObjective.Milliseconds(),
		Steps: []domain.DrillStep{}, Approvals: []domain.Approval{}, Refused: []domain.Approval{},
		Strategy: in.Strategy,
	}
	if err := workflow.SetQueryHandler(ctx, DrillStateQuery, func() (domain.Drill, error) { return r.d, nil }); err != nil {
		return r.d, err
	}
	if err := domain.ValidateDrillStrategy(in.Strategy); err != nil {
		// Nothing was touched: no clean-up, no report.
		r.d.State, r.d.Reason = domain.DrillFailed, err.Error()
		r.d.FinishedAtMs = workflow.Now(ctx).UnixMilli()
		return r.d, temporal.NewNonRetryableApplicationError("drill failed: "+err.Error(), driver.KindInvalidInput, nil, r.d)
	}
	r.v1 = workflow.GetVersion(ctx, drillSlotsAndHostChange, workflow.DefaultVersion, 1) >= 1
	r.v2 = workflow.GetVersion(ctx, drillApprovalUpdates, workflow.DefaultVersion, 1) >= 1
	r.oneClock = workflow.GetVersion(ctx, drillOneClockChange, workflow.DefaultVersion, 1) >= 1
	r.backupTimeRPO = workflow.GetVersion(ctx, drillBackupTimeRPOChange, workflow.DefaultVersion, 1) >= 1
	if err := r.setupApprovals(ctx); err != nil {
		return r.d, err
	}

	// An abort cancels the drill's steps; clean-up runs disconnected.
	runCtx, cancelRun := workflow.WithCancel(ctx)
	r.ctx = runCtx
	workflow.Go(ctx, func(gctx workflow.Context) {
		var sig AbortSignal
		workflow.GetSignalChannel(gctx, AbortSignalName).Receive(gctx, &sig)
		if r.d.Reason == "" {
			r.d.Reason = fmt.Sprintf("aborted by %s: %s", sig.By, sig.Reason)
		}
		r.d.State = domain.DrillAborted
		cancelRun()
	})

	err := r.steps()
	r.finish(ctx, err)
	switch r.d.State {
	case domain.DrillPassed:
		return r.d, nil
	case domain.DrillCancelled:
		return r.d, temporal.NewCanceledError(r.d.Reason)
	}
	return r.d, temporal.NewNonRetryableApplicationError("drill "+string(r.d.State)+": "+r.d.Reason, "Drill"+string(r.d.State), nil, r.d)
}

func withDrillDefaults(in DrillInput) DrillInput {
	if in.StartApprovalTimeout <= 0 {
		in.StartApprovalTimeout = DefaultStartApprovalTimeout
	}
	if in.CompleteApprovalTimeout <= 0 {
		in.CompleteApprovalTimeout = DefaultCompleteApprovalTimeout
	}
	if in.CanaryInterval <= 0 {
		in.CanaryInterval = DefaultCanaryInterval
	}
	if in.CanaryDuration <= 0 {
		in.CanaryDuration = DefaultCanaryDuration
	}
	if in.HostTimeout <= 0 {
		in.HostTimeout = DefaultHostTimeout
	}
	return in
}

// steps runs the drill up to (not including) clean-up. It returns nil when
// the drill got through both approvals; the state says whether it passed.
func (r *drillRun) steps() error {
	target := activities.DrillTargetInput{DrillID: r.d.ID, Target: r.in.Target, Strategy: r.in.Strategy}

	var pre activities.DrillPreflightResult
	if err := r.step("preflight", "Preflight: target healthy, restore source present, scratch space free", 10*time.Minute, 0,
		func(actx workflow.Context) error {
			return workflow.ExecuteActivity(actx, DrillPreflightActivity, target).Get(actx, &pre)
		}, func() string {
			return fmt.Sprintf("source %s; scratch %s with %d MiB free", pre.Source, pre.ScratchDir, pre.ScratchFreeBytes>>20)
		}); err != nil {
		return err
	}
	// Objectives come from the worker's target configuration unless the
	// caller set them.
	if r.in.RTOObjective <= 0 {
		r.in.RTOObjective = pre.RTOObjective
	}
	if r.in.RPOObjective <= 0 {
		r.in.RPOObjective = pre.RPOObjective
	}
	r.d.RTOObjectiveMs, r.d.RPOObjectiveMs = r.in.RTOObjective.Milliseconds(), r.in.RPOObjective.Milliseconds()

	if err := r.await(domain.ApprovalStart, r.in.StartApprovalTimeout); err != nil {
		return err
	}

	var canary activities.CanaryResult
	if err := r.step("canary", fmt.Sprintf("Canary writer: a row every %s for %s, then simulated failure", r.in.CanaryInterval, r.in.CanaryDuration),
		r.in.CanaryDuration+5*time.Minute, r.in.CanaryDuration/2+30*time.Second,
		func(actx workflow.Context) error {
			return workflow.ExecuteActivity(actx, DrillCanaryActivity, activities.CanaryInput{
				DrillID: r.d.ID, Target: r.in.Target, Interval: r.in.CanaryInterval, Duration: r.in.CanaryDuration,
			}).Get(actx, &canary)
		}, func() string {
			return fmt.Sprintf("%d canary rows; failure instant %s", canary.Rows, canary.FailureAt.UTC().Format(time.RFC3339Nano))
		}); err != nil {
		return err
	}
	r.d.CanaryRows = canary.Rows
	r.d.FailureAtMs = canary.FailureAt.UnixMilli()
	failureAt := canary.FailureAt
	restoreIn := target
	if r.oneClock {
		// The canary's host stamped the failure instant: restore and
		// verify run there, so the serving instant is read on its clock.
		restoreIn.FailureAt = failureAt
		if canary.Host.Queue != "" {
			r.host = canary.Host
			r.d.ClockSource = "host " + canary.Host.ID
		} else {
			r.d.ClockSource = "workers"
		}
	}

	// The restore is heavy: it holds a slot of the target's lock until the
	// restored copy is verified.
	var slot *targetSlot
	if r.v1 {
		var err error
		if slot, err = r.awaitTarget(); err != nil {
			return err
		}
		defer func() { slot.release(r.ctx, "drill stopped") }()
	}

	var res activities.RestoreResult
	if err := r.step("restore", "Restore into an isolated scratch instance", 6*time.Hour, r.heartbeat(),
		func(actx workflow.Context) error {
			if r.oneClock {
				actx = r.onHostQueue(actx)
			}
			return workflow.ExecuteActivity(actx, DrillRestoreActivity, restoreIn).Get(actx, &res)
		}, func() string { return restoreDetail(res) }); err != nil {
		return err
	}
	scratch := res.Scratch
	r.scratch = &scratch
	if r.v1 {
		r.host = res.Host
	}
	r.d.RestoredFrom, r.d.Scratch = scratch.RestoredFrom, scratch.Location
	r.noteRestore(scratch)

	verifySummary := "Verify: integrity, row counts, newest canary row, serving queries"
	if r.oneClock {
		// The timeline shows activity summaries: say what was restored.
		verifySummary += " of " + restoreDetail(res)
	}
	var v driver.DrillVerification
	if err := r.step("verify", verifySummary, 2*time.Hour, r.heartbeat(),
		func(actx workflow.Context) error {
			return workflow.ExecuteActivity(r.onHostQueue(actx), DrillVerifyActivity, activities.VerifyInput{Target: r.in.Target, Scratch: scratch}).Get(actx, &v)
		}, func() string {
			if v.NewestCanaryAt.IsZero() {
				return fmt.Sprintf("integrity ok=%t, %d tables, no canary row (written after the restored backup)%s", v.IntegrityOK, v.Tables, onHost(r.host))
			}
			return fmt.Sprintf("integrity ok=%t, %d tables, %d canary rows, newest %s%s", v.IntegrityOK, v.Tables, v.CanaryRows, v.NewestCanaryAt.UTC().Format(time.RFC3339Nano), onHost(r.host))
		}); err != nil {
		return err
	}
	slot.release(r.ctx, "drill restore and verify done")
	if !v.IntegrityOK {
		r.d.State, r.d.Reason = domain.DrillFailed, fmt.Sprintf("restored instance failed verification: %v", v.Problems)
		return nil
	}

	if !r.measure(failureAt, scratch, v) {
		return errDrillStopped
	}

	return r.await(domain.ApprovalComplete, r.in.CompleteApprovalTimeout)
}

// noteRestore copies what the restore used and how fast it went into the
// report.
func (r *drillRun) noteRestore(s driver.Scratch) {
	if s.Strategy != "" {
		r.d.Strategy = s.Strategy
	}
	r.d.BackupID, r.d.WALRange = s.BackupID, s.WALRange
	if !s.BackupAt.IsZero() {
		r.d.BackupAtMs = s.BackupAt.UnixMilli()
	}
	r.d.RestoredBytes, r.d.WALBytes, r.d.CopyMs, r.d.ReplayMs = s.RestoredBytes, s.WALBytes, s.CopyMs, s.ReplayMs
	r.d.RestoreMBps = domain.MBPerSecond(s.RestoredBytes, s.CopyMs)
	r.d.ReplayMBps = domain.MBPerSecond(s.WALBytes, s.ReplayMs)
}

// restoreDetail is the restore step's line in the report and the timeline:
// where, by which strategy, from which backup and WAL, how much how fast.
func restoreDetail(res activities.RestoreResult) string {
	s := res.Scratch
	out := fmt.Sprintf("%s from %s%s", s.Location, s.RestoredFrom, onHost(res.Host))
	if s.Strategy != "" {
		out += "; strategy " + s.Strategy
	}
	if s.BackupID != "" {
		out += "; backup " + s.BackupID
		if !s.BackupAt.IsZero() {
			out += " taken " + s.BackupAt.UTC().Format(time.RFC3339Nano)
		}
	}
	if s.WALRange != "" {
		out += "; WAL " + s.WALRange
	}
	if s.RestoredBytes > 0 {
		out += fmt.Sprintf("; restored %.1f MB in %d ms (%.1f MB/s)", float64(s.RestoredBytes)/1e6, s.CopyMs, domain.MBPerSecond(s.RestoredBytes, s.CopyMs))
	}
	if s.WALBytes > 0 {
		out += fmt.Sprintf("; replayed %.1f MB of WAL in %d ms (%.1f MB/s)", float64(s.WALBytes)/1e6, s.ReplayMs, domain.MBPerSecond(s.WALBytes, s.ReplayMs))
	}
	return out
}

// recoveryPoint is the newest instant whose data the restored instance is
// known to hold: the newest canary row found in it, or, for a restored
// backup (backupTimeRPO), the backup's time when that is later (a backup
// taken before the canary started holds no canary row at all). Zero when
// neither is known.
func (r *drillRun) recoveryPoint(s driver.Scratch, v driver.DrillVerification) (time.Time, string) {
	var at time.Time
	basis := ""
	if v.CanaryRows > 0 && !v.NewestCanaryAt.IsZero() {
		at, basis = v.NewestCanaryAt, domain.RPOBasisCanary
	}
	if r.backupTimeRPO && !s.BackupAt.IsZero() && s.BackupAt.After(at) {
		at, basis = s.BackupAt, domain.RPOBasisBackup
	}
	return at, basis
}

// measure computes RPO and RTO; it is its own (instant) step so that the
// timeline shows the figures.
func (r *drillRun) measure(failureAt time.Time, s driver.Scratch, v driver.DrillVerification) bool {
	now := workflow.Now(r.ctx).UnixMilli()
	r.d.VerifiedAtMs = v.ServingAt.UnixMilli()
	point, basis := r.recoveryPoint(s, v)
	if point.IsZero() {
		r.d.State, r.d.Reason = domain.DrillFailed, "no canary row in the restored instance: RPO cannot be measured"
		if r.backupTimeRPO {
			r.d.Reason = "no canary row in the restored instance and no backup time: RPO cannot be measured"
		}
		r.addStep("measure", domain.StepFailed, now, now, r.d.Reason)
		return false
	}
	if !v.NewestCanaryAt.IsZero() {
		r.d.NewestCanaryMs = v.NewestCanaryAt.UnixMilli()
	}
	if r.backupTimeRPO {
		r.d.RPOBasis = basis
	}
	r.d.RPOMs = max(0, failureAt.Sub(point).Milliseconds())
	r.d.RTOMs = max(0, v.ServingAt.Sub(failureAt).Milliseconds())
	r.d.Measured = true
	rtoOK, rpoOK := r.d.RTOMs <= r.d.RTOObjectiveMs, r.d.RPOMs <= r.d.RPOObjectiveMs
	r.d.Passed = rtoOK && rpoOK
	detail := fmt.Sprintf("RTO %d ms (objective %d ms, met=%t); RPO %d ms (objective %d ms, met=%t)",
		r.d.RTOMs, r.d.RTOObjectiveMs, rtoOK, r.d.RPOMs, r.d.RPOObjectiveMs, rpoOK)
	if r.backupTimeRPO {
		switch basis {
		case domain.RPOBasisBackup:
			detail += "; recovery point: the restored backup's time " + point.UTC().Format(time.RFC3339Nano)
		default:
			detail += "; recovery point: the newest canary row restored, " + point.UTC().Format(time.RFC3339Nano)
		}
	}
	if r.d.ClockSource != "" {
		detail += "; failure and serving instants from the clock of " + r.d.ClockSource
	}
	r.addStep("measure", domain.StepSucceeded, now, now, detail)
	workflow.SetCurrentDetails(r.ctx, "**Measured** "+detail)
	return true
}

func (r *drillRun) heartbeat() time.Duration {
	if r.in.HeartbeatTimeout > 0 {
		return r.in.HeartbeatTimeout
	}
	return DefaultHeartbeatTimeout
}

// step runs one activity step with its options, summary and timing.
func (r *drillRun) step(name, summary string, timeout, heartbeat time.Duration, run func(workflow.Context) error, detail func() string) error {
	r.d.Step = name
	workflow.SetCurrentDetails(r.ctx, fmt.Sprintf("Drill of `%s`: **%s** — %s", r.in.Target, name, summary))
	opts := workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    heartbeat,
		WaitForCancellation: true,
		Summary:             summary,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 3,
			NonRetryableErrorTypes: driver.NonRetryableKinds(),
		},
	}
	start := workflow.Now(r.ctx).UnixMilli()
	err := run(workflow.WithActivityOptions(r.ctx, opts))
	end := workflow.Now(r.ctx).UnixMilli()
	if err != nil {
		state := domain.StepFailed
		if r.ctx.Err() != nil {
			state = domain.StepCancelled
		}
		msg := taskErrorMessage(err)
		if isScheduleToStart(err) {
			msg = r.unreachable()
		}
		r.addStep(name, state, start, end, msg)
		r.failedAt(name, err)
		return err
	}
	r.addStep(name, domain.StepSucceeded, start, end, detail())
	return nil
}

func (r *drillRun) failedAt(name string, err error) {
	msg := taskErrorMessage(err)
	if isScheduleToStart(err) {
		msg = r.unreachable()
	}
	switch {
	case r.d.State == domain.DrillAborted:
	case r.ctx.Err() != nil:
		r.d.State, r.d.Reason = domain.DrillCancelled, "cancelled during "+name
	default:
		r.d.State, r.d.Reason = domain.DrillFailed, name+" failed: "+msg
	}
}

// awaitTarget takes a heavy-task slot of the target for restore and
// verify; a wait shows as its own step.
func (r *drillRun) awaitTarget() (*targetSlot, error) {
	start := workflow.Now(r.ctx).UnixMilli()
	r.d.Step = "await_target"
	slot, err := acquireSlot(r.ctx, slotRequest{
		target: r.in.Target, key: "restore", owner: r.d.ID, task: "drill restore",
		onQueued: func(q LockQueued) {
			workflow.SetCurrentDetails(r.ctx, fmt.Sprintf("Drill of `%s`: %s — before the restore", r.in.Target, waitingFor(r.in.Target, q)))
		},
	})
	end := workflow.Now(r.ctx).UnixMilli()
	if err != nil {
		state := domain.StepFailed
		if r.ctx.Err() != nil {
			state = domain.StepCancelled
		}
		r.addStep("await_target", state, start, end, taskErrorMessage(err))
		r.failedAt("await_target", err)
		return nil, err
	}
	if slot.queued {
		r.addStep("await_target", domain.StepSucceeded, start, end, fmt.Sprintf("waited %s for a heavy-task slot on %s (held by %s)",
			slot.waited, r.in.Target, orNone(slot.holders)))
	}
	return slot, nil
}

// onHostQueue schedules an activity on the queue of the scratch instance's
// host, waiting at most HostTimeout for that host to poll it.
func (r *drillRun) onHostQueue(ctx workflow.Context) workflow.Context {
	if r.host.Queue == "" {
		return ctx
	}
	opts := workflow.GetActivityOptions(ctx)
	opts.TaskQueue = r.host.Queue
	opts.ScheduleToStartTimeout = r.in.HostTimeout
	return workflow.WithActivityOptions(ctx, opts)
}

func (r *drillRun) unreachable() string {
	if r.scratch == nil && r.oneClock {
		return fmt.Sprintf("could not reach host %s (its clock marked the failure instant: the restore runs there) within %s", r.host.ID, r.in.HostTimeout)
	}
	return fmt.Sprintf("could not reach host %s (it has the scratch instance) within %s", r.host.ID, r.in.HostTimeout)
}

func onHost(h activities.Host) string {
	if h.ID == "" {
		return ""
	}
	return " on host " + h.ID
}

// isScheduleToStart: no worker of the queue picked the activity up in time.
func isScheduleToStart(err error) bool {
	var te *temporal.TimeoutError
	return errors.As(err, &te) && te.TimeoutType() == enums.TIMEOUT_TYPE_SCHEDULE_TO_START
}

func (r *drillRun) addStep(name string, state domain.StepState, start, end int64, detail string) {
	r.d.Steps = append(r.d.Steps, domain.DrillStep{
		Name: name, State: state, StartedAtMs: start, FinishedAtMs: end, DurationMs: end - start, Detail: detail,
	})
}

// errDrillStopped ends the step sequence without a failure of its own.
var errDrillStopped = temporal.NewApplicationError("drill stopped", "DrillStopped")

// finish always cleans up (disconnected from cancellation), settles the
// outcome and stores the report.
func (r *drillRun) finish(ctx workflow.Context, stepErr error) {
	r.ending = true
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	start := workflow.Now(dctx).UnixMilli()
	r.d.Step = "cleanup"
	workflow.SetCurrentDetails(dctx, fmt.Sprintf("Drill of `%s`: **cleaning up** scratch instance and canary", r.in.Target))
	cctx := workflow.WithActivityOptions(dctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute,
		Summary:             "Clean-up: remove scratch instance, processes, ports, directories and the canary table",
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 20},
	})
	var rep driver.DrillCleanupReport
	in := activities.DrillTargetInput{DrillID: r.d.ID, Target: r.in.Target, ScratchHost: r.host.ID}
	err := workflow.ExecuteActivity(r.onHostQueue(cctx), DrillCleanupActivity, in).Get(cctx, &rep)
	end := workflow.Now(dctx).UnixMilli()
	switch {
	case err != nil && isScheduleToStart(err):
		// The host is gone for good: what the target holds (the canary) is
		// removed from any host; the scratch instance stays on that host
		// until orphan_cleanup runs there.
		detail := r.unreachable() + "; its scratch instance stays there until orphan_cleanup runs on " + r.host.ID
		if cerr := workflow.ExecuteActivity(cctx, DrillCleanupActivity, in).Get(cctx, &rep); cerr != nil {
			detail += "; removing the canary failed too: " + taskErrorMessage(cerr)
		} else {
			detail += "; canary removed"
		}
		end = workflow.Now(dctx).UnixMilli()
		r.addStep("cleanup", domain.StepFailed, start, end, detail)
		if r.d.Reason == "" {
			r.d.Reason = "clean-up " + detail
		}
	case err != nil:
		r.addStep("cleanup", domain.StepFailed, start, end, taskErrorMessage(err))
	default:
		r.d.CleanedUp = true
		r.addStep("cleanup", domain.StepSucceeded, start, end, fmt.Sprintf("removed %d item(s)%s", len(rep.Removed), onHost(r.host)))
	}

	if stepErr == nil && (r.d.State == domain.DrillAwaiting || r.d.State == domain.DrillRunning) {
		if r.d.Passed {
			r.d.State = domain.DrillPassed
		} else {
			r.d.State = domain.DrillFailed
			if r.d.Reason == "" {
				r.d.Reason = fmt.Sprintf("objectives missed: RTO %d/%d ms, RPO %d/%d ms", r.d.RTOMs, r.d.RTOObjectiveMs, r.d.RPOMs, r.d.RPOObjectiveMs)
			}
		}
	}
	if r.d.State == domain.DrillPassed && !r.d.CleanedUp {
		r.d.State = domain.DrillFailed
		if r.d.Reason == "" {
			r.d.Reason = "clean-up failed"
		}
	}
	r.d.Step, r.d.Awaiting = "report", ""
	r.d.FinishedAtMs = workflow.Now(dctx).UnixMilli()
	r.addStep("report", domain.StepSucceeded, r.d.FinishedAtMs, r.d.FinishedAtMs, string(r.d.State))

	rctx := workflow.WithActivityOptions(dctx, shortActivityOptions("Report: store drill "+string(r.d.State)+" in history"))
	if err := workflow.ExecuteActivity(rctx, SaveDrillReportActivity, activities.DrillReportInput{DrillID: r.d.ID, Target: r.in.Target, Report: r.d}).Get(rctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("store drill report failed", "error", err)
	}
	workflow.SetCurrentDetails(dctx, fmt.Sprintf("Drill **%s**: %s · RTO %d ms · RPO %d ms", r.d.State, r.d.Reason, r.d.RTOMs, r.d.RPOMs))
}
