package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/themis-maintenance/themis/domain"
)

// A wait entered with its context already cancelled — the cancellation
// came in the same workflow task as the result before it (an activity's
// completion and a cancel request in one task, on a loaded worker) — has a
// cancelled timer among its cases. Both waits once picked that timer's
// case first, left their loop open, and spun until the SDK's deadlock
// detector failed the workflow task, on every retry: the job never ended.

// cancelledAwaitWorkflow runs a drill's approval wait on a cancelled
// context and reports how it ended.
func cancelledAwaitWorkflow(ctx workflow.Context) (domain.Drill, error) {
	r := &drillRun{in: DrillInput{Target: "demo"}, v2: true}
	if err := r.setupApprovals(ctx); err != nil {
		return r.d, err
	}
	runCtx, cancel := workflow.WithCancel(ctx)
	cancel()
	r.ctx = runCtx
	err := r.await(domain.ApprovalStart, time.Hour)
	if err != errDrillStopped {
		return r.d, temporal.NewApplicationError("await returned "+errString(err), "Unexpected")
	}
	return r.d, nil
}

// cancelledGrantWorkflow waits for a slot, with a deadline, on a cancelled
// context.
func cancelledGrantWorkflow(ctx workflow.Context) (string, error) {
	wctx, cancel := workflow.WithCancel(ctx)
	cancel()
	r := slotRequest{target: "demo", key: "task-1", deadline: workflow.Now(ctx).Add(time.Hour)}
	tctx, cancelTimer := workflow.WithCancel(wctx)
	defer cancelTimer()
	timer := workflow.NewTimer(tctx, time.Hour)
	s := &targetSlot{target: r.target, requestID: "run/task-1"}
	err := s.awaitGrant(wctx, r, timer)
	if !temporal.IsCanceledError(err) {
		return "", temporal.NewApplicationError("awaitGrant returned "+errString(err), "Unexpected")
	}
	return "canceled", nil
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// runInTestEnv runs wf to completion in the test environment and decodes
// its result into out.
func runInTestEnv(t *testing.T, wf any, out any) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(wf)
	env.ExecuteWorkflow(wf)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	require.NoError(t, env.GetWorkflowResult(out))
}

func TestApprovalWaitOnACancelledContextEndsCancelled(t *testing.T) {
	var d domain.Drill
	runInTestEnv(t, cancelledAwaitWorkflow, &d)
	require.Equal(t, domain.DrillCancelled, d.State)
	require.Len(t, d.Steps, 1)
	require.Equal(t, domain.StepCancelled, d.Steps[0].State)
	require.Empty(t, d.Approvals)
}

func TestSlotWaitOnACancelledContextEndsCancelled(t *testing.T) {
	var got string
	runInTestEnv(t, cancelledGrantWorkflow, &got)
	require.Equal(t, "canceled", got)
}

// replayFirstTask runs wf's first workflow task through the SDK's real
// event handlers (the replayer), where a cancelled timer is settled at
// once, as on a worker — the test environment settles it later, which
// hides the spin.
func replayFirstTask(t *testing.T, name string, wf any) error {
	t.Helper()
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: name})
	now := timestamppb.Now()
	h := &historypb.History{Events: []*historypb.HistoryEvent{
		{EventId: 1, EventTime: now, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
			Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
				WorkflowType: &commonpb.WorkflowType{Name: name}, TaskQueue: &taskqueuepb.TaskQueue{Name: "q"},
				WorkflowRunTimeout: durationpb.New(time.Hour), WorkflowTaskTimeout: durationpb.New(10 * time.Second),
				OriginalExecutionRunId: "run", FirstExecutionRunId: "run", Attempt: 1,
			}}},
		{EventId: 2, EventTime: now, EventType: enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
			Attributes: &historypb.HistoryEvent_WorkflowTaskScheduledEventAttributes{WorkflowTaskScheduledEventAttributes: &historypb.WorkflowTaskScheduledEventAttributes{
				TaskQueue: &taskqueuepb.TaskQueue{Name: "q"}, StartToCloseTimeout: durationpb.New(10 * time.Second), Attempt: 1,
			}}},
		{EventId: 3, EventTime: now, EventType: enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED,
			Attributes: &historypb.HistoryEvent_WorkflowTaskStartedEventAttributes{WorkflowTaskStartedEventAttributes: &historypb.WorkflowTaskStartedEventAttributes{
				ScheduledEventId: 2, Identity: "test", RequestId: "req",
			}}},
		{EventId: 4, EventTime: now, EventType: enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
			Attributes: &historypb.HistoryEvent_WorkflowTaskCompletedEventAttributes{WorkflowTaskCompletedEventAttributes: &historypb.WorkflowTaskCompletedEventAttributes{
				ScheduledEventId: 2, StartedEventId: 3, Identity: "test",
			}}},
		{EventId: 5, EventTime: now, EventType: enumspb.EVENT_TYPE_TIMER_STARTED,
			Attributes: &historypb.HistoryEvent_TimerStartedEventAttributes{TimerStartedEventAttributes: &historypb.TimerStartedEventAttributes{
				TimerId: "5", StartToFireTimeout: durationpb.New(time.Hour), WorkflowTaskCompletedEventId: 4,
			}}},
		{EventId: 6, EventTime: now, EventType: enumspb.EVENT_TYPE_TIMER_CANCELED,
			Attributes: &historypb.HistoryEvent_TimerCanceledEventAttributes{TimerCanceledEventAttributes: &historypb.TimerCanceledEventAttributes{
				TimerId: "5", StartedEventId: 5, WorkflowTaskCompletedEventId: 4, Identity: "test",
			}}},
		{EventId: 7, EventTime: now, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
			Attributes: &historypb.HistoryEvent_WorkflowExecutionCompletedEventAttributes{WorkflowExecutionCompletedEventAttributes: &historypb.WorkflowExecutionCompletedEventAttributes{
				WorkflowTaskCompletedEventId: 4,
			}}},
	}}
	return r.ReplayWorkflowHistory(nil, h)
}

func TestApprovalWaitOnACancelledContextReplays(t *testing.T) {
	require.NoError(t, replayFirstTask(t, "cancelledAwaitWorkflow", cancelledAwaitWorkflow))
}

func TestSlotWaitOnACancelledContextReplays(t *testing.T) {
	require.NoError(t, replayFirstTask(t, "cancelledGrantWorkflow", cancelledGrantWorkflow))
}
