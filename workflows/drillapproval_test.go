package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/themis-maintenance/themis/domain"
)

// updateResult is what one Update got: refused by the validator, or
// accepted and completed with a drill or an error.
type updateResult struct {
	refused   error
	accepted  bool
	completed bool
	drill     domain.Drill
	err       error
}

// update sends the Update name for step after the delay, as the API does.
func update(env *testsuite.TestWorkflowEnvironment, name, step string, after time.Duration) *updateResult {
	res := &updateResult{}
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(name, "", &testsuite.TestUpdateCallback{
			OnAccept: func() { res.accepted = true },
			OnReject: func(err error) { res.refused = err },
			OnComplete: func(v any, err error) {
				res.completed, res.err = true, err
				if d, ok := v.(domain.Drill); ok {
					res.drill = d
				}
			},
		}, ApprovalSignal{Step: step, Approver: "alice", Comment: name + " " + step, Channel: domain.ChannelAPI})
	}, after)
	return res
}

func requireRefused(t *testing.T, res *updateResult, contains string) {
	t.Helper()
	require.Error(t, res.refused, "the validator refuses")
	require.False(t, res.accepted, "a refused update is never accepted")
	var ae *temporal.ApplicationError
	require.ErrorAs(t, res.refused, &ae)
	require.Equal(t, DrillDecisionRefused, ae.Type())
	require.Contains(t, res.refused.Error(), contains)
}

// Approvals by Update through both waits: each accepted one answers the
// drill after the decision was applied, with its channel.
func TestDrillApprovedByUpdatePasses(t *testing.T) {
	env, f := newDrillEnv(t)
	start := update(env, ApproveUpdate, domain.ApprovalStart, time.Minute)
	complete := update(env, ApproveUpdate, domain.ApprovalComplete, time.Hour)
	env.ExecuteWorkflow(DrillWorkflowName, DrillInput{Target: "demo", RequestedBy: "alice"})
	require.NoError(t, env.GetWorkflowError())

	require.NoError(t, start.refused)
	require.True(t, start.accepted && start.completed, "%+v", start)
	require.NoError(t, start.err)
	require.Equal(t, domain.DrillRunning, start.drill.State, "the answer is the drill after the approval")
	require.Equal(t, "canary", start.drill.Step, "the drill went on to the canary before answering")
	require.Len(t, start.drill.Approvals, 1)
	require.Equal(t, domain.ChannelAPI, start.drill.Approvals[0].Channel)

	require.True(t, complete.completed)
	require.NoError(t, complete.err)
	require.Len(t, complete.drill.Approvals, 2)
	require.Equal(t, "cleanup", complete.drill.Step)

	d := drillResult(t, env)
	require.Equal(t, domain.DrillPassed, d.State, d.Reason)
	require.Len(t, d.Approvals, 2)
	for _, a := range d.Approvals {
		require.Equal(t, domain.ChannelAPI, a.Channel)
	}
	require.Empty(t, d.Refused)
	require.Equal(t, 1, f.cleanups)
}

// An approval before its wait began is refused synchronously: during
// preflight (nothing awaited yet), and "complete" while "start" is awaited.
func TestDrillApproveBeforeWaitRefused(t *testing.T) {
	env, f := newDrillEnv(t)
	f.blockStep = "restore"
	early := update(env, ApproveUpdate, domain.ApprovalStart, 0)
	wrong := update(env, ApproveUpdate, domain.ApprovalComplete, time.Minute)
	good := update(env, ApproveUpdate, domain.ApprovalStart, 2*time.Minute)
	// While the restore runs, nothing is awaited.
	f.onBlock = func() { env.SignalWorkflow(AbortSignalName, AbortSignal{By: "bob", Reason: "enough"}) }
	env.ExecuteWorkflow(DrillWorkflowName, DrillInput{Target: "demo"})

	requireRefused(t, wrong, `awaiting approval "start", not "complete"`)
	require.True(t, good.completed)
	require.NoError(t, good.err)
	d := drillResult(t, env)
	require.Equal(t, domain.DrillAborted, d.State)
	require.Equal(t, 1, f.cleanups)
	require.Empty(t, d.Refused, "a refused Update leaves no trace in the drill")
	// The update sent at the very start met the drill in preflight.
	requireRefused(t, early, "not awaiting an approval")
}

// A second approval of the same step is refused, and so is a rejection of
// a step already approved.
func TestDrillDoubleApproveRefused(t *testing.T) {
	env, f := newDrillEnv(t)
	first := update(env, ApproveUpdate, domain.ApprovalStart, time.Minute)
	second := update(env, ApproveUpdate, domain.ApprovalStart, 2*time.Minute)
	late := update(env, RejectUpdate, domain.ApprovalStart, 3*time.Minute)
	complete := update(env, ApproveUpdate, domain.ApprovalComplete, time.Hour)
	again := update(env, ApproveUpdate, domain.ApprovalComplete, time.Hour)
	env.ExecuteWorkflow(DrillWorkflowName, DrillInput{Target: "demo"})
	require.NoError(t, env.GetWorkflowError())
	require.True(t, first.completed)
	requireRefused(t, second, `approval "start" was already decided: approved by alice (api)`)
	requireRefused(t, late, `approval "start" was already decided`)
	require.True(t, complete.completed)
	requireRefused(t, again, `approval "complete"`)
	require.Contains(t, again.refused.Error(), "already decided")
	d := drillResult(t, env)
	require.Equal(t, domain.DrillPassed, d.State)
	require.Len(t, d.Approvals, 2)
	require.Equal(t, 1, f.cleanups)
}

// An approval after an abort (while the clean-up runs) is refused.
func TestDrillApproveAfterAbortRefused(t *testing.T) {
	env, f := newDrillEnv(t)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(AbortSignalName, AbortSignal{By: "bob", Reason: "stop"}) }, time.Minute)
	after := &updateResult{}
	refused := make(chan struct{})
	f.onCleanup = func() {
		env.UpdateWorkflow(ApproveUpdate, "", &testsuite.TestUpdateCallback{
			OnAccept: func() { after.accepted = true },
			OnReject: func(err error) { after.refused = err; close(refused) },
		}, ApprovalSignal{Step: domain.ApprovalStart, Approver: "alice", Channel: domain.ChannelAPI})
		select {
		case <-refused:
		case <-time.After(2 * time.Second):
		}
	}
	env.ExecuteWorkflow(DrillWorkflowName, DrillInput{Target: "demo"})
	require.Error(t, env.GetWorkflowError())
	requireRefused(t, after, "drill is aborted")
	d := drillResult(t, env)
	require.Equal(t, domain.DrillAborted, d.State)
	require.Empty(t, d.Approvals)
	require.Equal(t, 1, f.cleanups)
}

// A signal sent before its step's wait began is not consumed by that wait:
// it is refused on arrival and recorded with its channel; the drill then
// times out at that wait and cleans up.
func TestDrillEarlySignalNotConsumed(t *testing.T) {
	env, f := newDrillEnv(t)
	f.blockStep = "restore"
	signal(env, ApproveSignal, domain.ApprovalStart, time.Minute)
	// "complete" approved while the restore runs: long before its wait.
	f.onBlock = func() {
		env.SignalWorkflow(ApproveSignal, ApprovalSignal{Step: domain.ApprovalComplete, Approver: "mallory", Comment: "early"})
		f.mu.Lock()
		f.blockStep = ""
		f.mu.Unlock()
	}
	env.ExecuteWorkflow(DrillWorkflowName, DrillInput{Target: "demo", CompleteApprovalTimeout: time.Hour})
	require.Error(t, env.GetWorkflowError())
	d := drillResult(t, env)
	require.Equal(t, domain.DrillAborted, d.State, "the early approval did not pass the complete wait")
	require.Equal(t, "approval_timeout", d.Reason)
	require.Equal(t, domain.StepTimedOut, stepStates(d)["await_complete"])
	require.Len(t, d.Approvals, 1)
	require.Equal(t, domain.ChannelSignal, d.Approvals[0].Channel, "the start approval came by signal")
	require.Len(t, d.Refused, 1)
	require.Equal(t, "mallory", d.Refused[0].Approver)
	require.Equal(t, domain.ChannelSignal, d.Refused[0].Channel)
	require.Contains(t, d.Refused[0].Reason, "not awaiting an approval")
	require.Equal(t, 1, f.cleanups)
}

// A signal for the awaited step after an Update decided it is refused and
// recorded; the Update's decision stands.
func TestDrillSignalAfterUpdateRefused(t *testing.T) {
	env, f := newDrillEnv(t)
	byAPI := update(env, RejectUpdate, domain.ApprovalStart, time.Minute)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(ApproveSignal, ApprovalSignal{Step: domain.ApprovalStart, Approver: "dave", Comment: "go"})
	}, time.Minute)
	env.ExecuteWorkflow(DrillWorkflowName, DrillInput{Target: "demo"})
	require.Error(t, env.GetWorkflowError())
	require.True(t, byAPI.completed)
	require.NoError(t, byAPI.err)
	require.Equal(t, domain.DrillRejected, byAPI.drill.State)
	d := drillResult(t, env)
	require.Equal(t, domain.DrillRejected, d.State)
	require.Len(t, d.Approvals, 1)
	require.Equal(t, domain.ChannelAPI, d.Approvals[0].Channel)
	require.Len(t, d.Refused, 1)
	require.Equal(t, "dave", d.Refused[0].Approver)
	require.Contains(t, d.Refused[0].Reason, "already decided")
	require.Equal(t, []string{"preflight"}, f.calls)
	require.Equal(t, 1, f.cleanups)
}

// Reject by Update at each wait, and an abort while a wait runs: clean-up
// runs every time.
func TestDrillRejectByUpdateAndAbortAtEachWait(t *testing.T) {
	for _, step := range []string{domain.ApprovalStart, domain.ApprovalComplete} {
		for _, how := range []string{"reject", "abort"} {
			t.Run(step+"/"+how, func(t *testing.T) {
				env, f := newDrillEnv(t)
				if step == domain.ApprovalComplete {
					update(env, ApproveUpdate, domain.ApprovalStart, time.Minute)
				}
				var res *updateResult
				if how == "reject" {
					res = update(env, RejectUpdate, step, 2*time.Hour)
				} else {
					env.RegisterDelayedCallback(func() {
						env.SignalWorkflow(AbortSignalName, AbortSignal{By: "bob", Reason: "incident"})
					}, 2*time.Hour)
				}
				env.ExecuteWorkflow(DrillWorkflowName, DrillInput{Target: "demo"})
				require.Error(t, env.GetWorkflowError())
				d := drillResult(t, env)
				if how == "reject" {
					require.True(t, res.completed)
					require.NoError(t, res.err)
					require.Equal(t, domain.DrillRejected, d.State)
					require.Equal(t, domain.StepRejected, stepStates(d)["await_"+step])
				} else {
					require.Equal(t, domain.DrillAborted, d.State)
					require.Equal(t, domain.StepCancelled, stepStates(d)["await_"+step])
				}
				require.Equal(t, 1, f.cleanups, "clean-up runs")
				require.True(t, d.CleanedUp)
				require.Equal(t, 1, f.reports)
			})
		}
	}
}

// Executions started before drill-approval-updates keep their signal
// rules (a signal is read by the wait, so one sent early is consumed
// there, as their recorded histories expect), and take Updates too.
func TestDrillBeforeApprovalUpdatesVersion(t *testing.T) {
	env, f := newDrillEnv(t)
	env.OnGetVersion(drillApprovalUpdates, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	f.blockStep = "restore"
	signal(env, ApproveSignal, domain.ApprovalStart, time.Minute)
	f.onBlock = func() {
		env.SignalWorkflow(ApproveSignal, ApprovalSignal{Step: domain.ApprovalComplete, Approver: "early", Comment: "buffered"})
		f.mu.Lock()
		f.blockStep = ""
		f.mu.Unlock()
	}
	env.ExecuteWorkflow(DrillWorkflowName, DrillInput{Target: "demo", CompleteApprovalTimeout: time.Hour})
	require.NoError(t, env.GetWorkflowError())
	d := drillResult(t, env)
	require.Equal(t, domain.DrillPassed, d.State, "the old rules consumed the buffered signal")
	require.Equal(t, "early", d.Approvals[1].Approver)

	env, _ = newDrillEnv(t)
	env.OnGetVersion(drillApprovalUpdates, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	res := update(env, ApproveUpdate, domain.ApprovalStart, time.Minute)
	refused := update(env, ApproveUpdate, domain.ApprovalStart, 2*time.Minute)
	update(env, RejectUpdate, domain.ApprovalComplete, time.Hour)
	env.ExecuteWorkflow(DrillWorkflowName, DrillInput{Target: "demo"})
	require.True(t, res.completed)
	require.NoError(t, res.err)
	requireRefused(t, refused, "already decided")
	require.Equal(t, domain.DrillRejected, drillResult(t, env).State)
}
