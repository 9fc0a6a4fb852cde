package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/themis-maintenance/themis/activities"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// fakeDrill stands in for the drill activities: the workflow only sees
// their results. It counts clean-ups, the property every branch must keep.
type fakeDrill struct {
	mu           sync.Mutex
	calls        []string
	cleanups     int
	reports      int
	failVerify   bool
	badVerify    bool
	blockStep    string
	onBlock      func()
	onCleanup    func()
	failureAt    time.Time
	newestAt     time.Time
	servingAt    time.Time
	rpoObjective time.Duration
	// host is the host of a restore on the shared queue.
	host activities.Host
	// canaryHost is the host the canary reports; skew is each queue's
	// clock error (a host queue's, or the shared queue's worker's): the
	// instants the fakes report are read on the clock of their queue.
	canaryHost activities.Host
	skew       map[string]time.Duration
	// noCanaryRows: the restored copy holds no canary row (a backup taken
	// before the canary); scratch adds to the restore's result.
	noCanaryRows bool
	scratch      driver.Scratch
	// inputs are the preflight's and the restore's inputs.
	inputs map[string]activities.DrillTargetInput
}

// clock is the skew of the clock of the queue ctx's activity runs on.
func (f *fakeDrill) clock(ctx context.Context) time.Duration {
	return f.skew[activity.GetInfo(ctx).TaskQueue]
}

func (f *fakeDrill) input(step string, in activities.DrillTargetInput) {
	f.mu.Lock()
	if f.inputs == nil {
		f.inputs = map[string]activities.DrillTargetInput{}
	}
	f.inputs[step] = in
	f.mu.Unlock()
}

func (f *fakeDrill) called(name string) {
	f.mu.Lock()
	f.calls = append(f.calls, name)
	f.mu.Unlock()
}

func (f *fakeDrill) block(ctx context.Context, name string) error {
	if f.blockStep != name {
		return nil
	}
	if f.onBlock != nil {
		go f.onBlock()
	}
	for {
		activity.RecordHeartbeat(ctx, "waiting")
		f.mu.Lock()
		released := f.blockStep != name
		f.mu.Unlock()
		if released {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (f *fakeDrill) register(env *testsuite.TestWorkflowEnvironment) {
	reg := func(name string, fn any) { env.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name}) }
	reg(DrillPreflightActivity, func(ctx context.Context, in activities.DrillTargetInput) (activities.DrillPreflightResult, error) {
		f.called("preflight")
		f.input("preflight", in)
		return activities.DrillPreflightResult{
			DrillPreflight: driver.DrillPreflight{Healthy: true, Source: "backup-1.db", ScratchDir: "/tmp/x", ScratchFreeBytes: 1 << 30},
			RTOObjective:   5 * time.Minute, RPOObjective: f.rpoObjective,
		}, nil
	})
	reg(DrillCanaryActivity, func(ctx context.Context, in activities.CanaryInput) (activities.CanaryResult, error) {
		f.called("canary")
		skew := f.skew[f.canaryHost.Queue]
		return activities.CanaryResult{Rows: 10, LastWriteAt: f.newestAt.Add(skew), FailureAt: f.failureAt.Add(skew), Host: f.canaryHost}, nil
	})
	reg(DrillRestoreActivity, func(ctx context.Context, in activities.DrillTargetInput) (activities.RestoreResult, error) {
		f.called("restore")
		f.input("restore", in)
		if err := f.block(ctx, "restore"); err != nil {
			return activities.RestoreResult{}, err
		}
		host := f.host
		if q := activity.GetInfo(ctx).TaskQueue; f.canaryHost.Queue != "" && q == f.canaryHost.Queue {
			host = f.canaryHost
		}
		sc := f.scratch
		sc.DrillID, sc.Dir, sc.Location, sc.RestoredFrom = in.DrillID, "/tmp/x/"+in.DrillID, "file /tmp/x/restored.db", "backup-1.db"
		return activities.RestoreResult{Scratch: sc, Host: host}, nil
	})
	reg(DrillVerifyActivity, func(ctx context.Context, in activities.VerifyInput) (driver.DrillVerification, error) {
		f.called("verify")
		if f.failVerify {
			return driver.DrillVerification{}, temporal.NewNonRetryableApplicationError("restored copy is corrupt", driver.KindVerificationFailed, nil)
		}
		skew := f.clock(ctx)
		v := driver.DrillVerification{IntegrityOK: !f.badVerify, Problems: problems(f.badVerify), Tables: 4,
			CanaryRows: 10, NewestCanaryAt: f.newestAt.Add(f.skew[f.canaryHost.Queue]), ServingAt: f.servingAt.Add(skew)}
		if f.noCanaryRows {
			v.CanaryRows, v.NewestCanaryAt = 0, time.Time{}
		}
		return v, nil
	})
	reg(DrillCleanupActivity, func(ctx context.Context, in activities.DrillTargetInput) (driver.DrillCleanupReport, error) {
		f.mu.Lock()
		f.cleanups++
		f.mu.Unlock()
		if f.onCleanup != nil {
			f.onCleanup()
		}
		return driver.DrillCleanupReport{Removed: []string{"scratch"}}, nil
	})
	reg(SaveDrillReportActivity, func(ctx context.Context, in activities.DrillReportInput) error {
		f.mu.Lock()
		f.reports++
		f.mu.Unlock()
		return nil
	})
}

func problems(bad bool) []string {
	if bad {
		return []string{"row count of orders differs"}
	}
	return nil
}

func newDrillEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *fakeDrill) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	failure := time.Date(2026, 11, 22, 3, 0, 10, 0, time.UTC)
	f := &fakeDrill{
		failureAt: failure, newestAt: failure.Add(-400 * time.Millisecond), servingAt: failure.Add(3 * time.Second),
		rpoObjective: time.Minute,
	}
	f.register(env)
	env.RegisterWorkflowWithOptions(DrillWorkflow, drillRegisterOptions())
	installFreeLock(env)
	return env, f
}

func signal(env *testsuite.TestWorkflowEnvironment, name, step string, after time.Duration) {
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(name, ApprovalSignal{Step: step, Approver: "alice", Comment: name + " " + step})
	}, after)
}

func drillResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) domain.Drill {
	t.Helper()
	v, err := env.QueryWorkflow(DrillStateQuery)
	require.NoError(t, err)
	var d domain.Drill
	require.NoError(t, v.Get(&d))
	return d
}

func stepStates(d domain.Drill) map[string]domain.StepState {
	m := map[string]domain.StepState{}
	for _, s := range d.Steps {
		m[s.Name] = s.State
	}
	return m
}

func TestDrillApprovedTwicePasses(t *testing.T) {
	env, f := newDrillEnv(t)
	signal(env, ApproveSignal, domain.ApprovalComplete, time.Minute) // wrong step first: ignored
	signal(env, ApproveSignal, domain.ApprovalStart, 2*time.Minute)
	signal(env, ApproveSignal, domain.ApprovalComplete, time.Hour)
	env.ExecuteWorkflow(DrillWorkflowName, DrillInput{Target: "demo", RequestedBy: "alice"})
	require.NoError(t, env.GetWorkflowError())
	d := drillResult(t, env)
	require.Equal(t, domain.DrillPassed, d.State, d.Reason)
	require.True(t, d.Passed)
	require.Equal(t, int64(400), d.RPOMs)
	require.Equal(t, int64(3000), d.RTOMs)
	require.Equal(t, int64(5*60*1000), d.RTOObjectiveMs)
	require.Len(t, d.Approvals, 2)
	require.Equal(t, []string{"preflight", "canary", "restore", "verify"}, f.calls)
	require.Equal(t, 1, f.cleanups)
	require.Equal(t, 1, f.reports)
	require.True(t, d.CleanedUp)
	states := stepStates(d)
	for _, s := range []string{"preflight", "await_start", "canary", "restore", "verify", "measure", "await_complete", "cleanup", "report"} {
		require.Contains(t, states, s)
	}
}

func TestDrillMissingObjectiveFails(t *testing.T) {
	env, f := newDrillEnv(t)
	f.rpoObjective = 100 * time.Millisecond
	signal(env, ApproveSignal, domain.ApprovalStart, time.Minute)
	signal(env, ApproveSignal, domain.ApprovalComplete, time.Hour)
	env.ExecuteWorkflow(DrillWorkflowName, DrillInput{Target: "demo"})
	require.Error(t, env.GetWorkflowError())
	d := drillResult(t, env)
	require.Equal(t, domain.DrillFailed, d.State)
	require.True(t, d.Measured)
	require.False(t, d.Passed)
	require.Contains(t, d.Reason, "objectives missed")
	require.Equal(t, 1, f.cleanups)
}

func TestDrillRejectAtEachStep(t *testing.T) {
	for _, step := range []string{domain.ApprovalStart, domain.ApprovalComplete} {
		t.Run(step, func(t *testing.T) {
			env, f := newDrillEnv(t)
			if step == domain.ApprovalComplete {
				signal(env, ApproveSignal, domain.ApprovalStart, time.Minute)
			}
			signal(env, RejectSignal, step, 2*time.Hour)
			env.ExecuteWorkflow(DrillWorkflowName, DrillInput{Target: "demo"})
			var appErr *temporal.ApplicationError
			require.True(t, errors.As(env.GetWorkflowError(), &appErr))
			d := drillResult(t, env)
			require.Equal(t, domain.DrillRejected, d.State)
			require.Equal(t, 1, f.cleanups, "clean-up runs after a rejection")
			if step == domain.ApprovalStart {
				require.Equal(t, []string{"preflight"}, f.calls, "nothing is touched before the start approval")
			}
		})
	}
}

func TestDrillApprovalTimeoutAtEachWait(t *testing.T) {
	for _, step := range []string{domain.ApprovalStart, domain.ApprovalComplete} {
		t.Run(step, func(t *testing.T) {
			env, f := newDrillEnv(t)
			if step == domain.ApprovalComplete {
				signal(env, ApproveSignal, domain.ApprovalStart, time.Minute)
			}
			env.ExecuteWorkflow(DrillWorkflowName, DrillInput{Target: "demo", StartApprovalTimeout: 3 * time.Hour, CompleteApprovalTimeout: time.Hour})
			require.Error(t, env.GetWorkflowError())
			d := drillResult(t, env)
			require.Equal(t, domain.DrillAborted, d.State)
			require.Equal(t, "approval_timeout", d.Reason)
			require.Equal(t, domain.StepTimedOut, stepStates(d)["await_"+step])
			require.Equal(t, 1, f.cleanups)
		})
	}
}

func TestDrillCancelMidRestoreCleansUp(t *testing.T) {
	env, f := newDrillEnv(t)
	signal(env, ApproveSignal, domain.ApprovalStart, time.Minute)
	f.blockStep = "restore"
	f.onBlock = func() { env.CancelWorkflow() }
	env.ExecuteWorkflow(DrillWorkflowName, DrillInput{Target: "demo"})
	require.True(t, temporal.IsCanceledError(env.GetWorkflowError()), "%v", env.GetWorkflowError())
	d := drillResult(t, env)
	require.Equal(t, domain.DrillCancelled, d.State)
	require.Equal(t, domain.StepCancelled, stepStates(d)["restore"])
	require.Equal(t, 1, f.cleanups)
	require.Equal(t, 1, f.reports)
}

func TestDrillAbortMidRestoreCleansUp(t *testing.T) {
	env, f := newDrillEnv(t)
	signal(env, ApproveSignal, domain.ApprovalStart, time.Minute)
	f.blockStep = "restore"
	f.onBlock = func() { env.SignalWorkflow(AbortSignalName, AbortSignal{By: "bob", Reason: "incident"}) }
	env.ExecuteWorkflow(DrillWorkflowName, DrillInput{Target: "demo"})
	require.Error(t, env.GetWorkflowError())
	d := drillResult(t, env)
	require.Equal(t, domain.DrillAborted, d.State)
	require.Contains(t, d.Reason, "aborted by bob: incident")
	require.Equal(t, 1, f.cleanups)
}

func TestDrillVerifyFailureCleansUp(t *testing.T) {
	for _, mode := range []string{"error", "problems"} {
		t.Run(mode, func(t *testing.T) {
			env, f := newDrillEnv(t)
			f.failVerify, f.badVerify = mode == "error", mode == "problems"
			signal(env, ApproveSignal, domain.ApprovalStart, time.Minute)
			env.ExecuteWorkflow(DrillWorkflowName, DrillInput{Target: "demo"})
			require.Error(t, env.GetWorkflowError())
			d := drillResult(t, env)
			require.Equal(t, domain.DrillFailed, d.State)
			require.False(t, d.Passed)
			require.Equal(t, 1, f.cleanups)
		})
	}
}

// The quarterly job's drill task runs the drill as a child; a failed drill
// fails the task and, with halt_on_task_failure, skips baseline_update.
func TestQuarterlyJobHaltsWhenDrillFails(t *testing.T) {
	env, f := newEnv(t, time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC))
	d := &fakeDrill{rpoObjective: time.Minute}
	d.register(env)
	env.RegisterDelayedCallback(func() {
		err := env.SignalWorkflowByID(DrillIDForJob("default-test-workflow-id"), RejectSignal,
			ApprovalSignal{Step: domain.ApprovalStart, Approver: "carol", Comment: "not this quarter"})
		require.NoError(t, err)
	}, time.Minute)
	in := input(domain.TaskDisasterRecoveryDrill, domain.TaskBaselineUpdate)
	in.Spec.WindowStartHour, in.Spec.HaltOnTaskFailure = 0, true
	env.ExecuteWorkflow(MaintenanceWorkflowName, in)
	require.Error(t, env.GetWorkflowError())
	job := result(t, env)
	require.Equal(t, domain.StateFailed, job.Tasks[0].State)
	require.Contains(t, job.Tasks[0].ErrorMessage, "rejected")
	require.Equal(t, domain.StateSkipped, job.Tasks[1].State)
	require.Empty(t, f.calls, "baseline_update never ran")
	require.Equal(t, 1, d.cleanups)
}
