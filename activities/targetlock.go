package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// LockRequest asks a target's lock workflow for one heavy-task slot. The
// requester is a workflow execution; the lock workflow answers it by signal.
type LockRequest struct {
	// RequestID is unique per acquisition (run id + what for); a retried
	// request with the same id is not queued twice.
	RequestID  string `json:"request_id"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	// Owner names the holder for people: the job or drill id.
	Owner string `json:"owner"`
	// Task is what the slot is for (a task type, "drill restore").
	Task string `json:"task"`
	// MaxSlots is the target's max_heavy_tasks as the requesting worker
	// knows it; the newest request's value applies.
	MaxSlots int `json:"max_slots"`
	// AtMs is when the request was made (workflow time).
	AtMs int64 `json:"at_ms"`
}

// TargetSlotInput is the input of the activity that signals-with-start a
// target's lock workflow.
type TargetSlotInput struct {
	LockWorkflowID   string      `json:"lock_workflow_id"`
	LockWorkflowType string      `json:"lock_workflow_type"`
	LockSignal       string      `json:"lock_signal"`
	TaskQueue        string      `json:"task_queue"`
	Target           string      `json:"target"`
	Request          LockRequest `json:"request"`
}

// TargetLockStart is the input a lock workflow is started with (the lock
// workflow's own input type decodes from it).
type TargetLockStart struct {
	Target   string `json:"target"`
	MaxSlots int    `json:"max_slots"`
}

// RequestTargetSlot asks for a heavy-task slot on a target: it reads the
// target's max_heavy_tasks from this worker's configuration and delivers
// the request to the target's lock workflow with signal-with-start, which
// starts the lock workflow when none runs. The answer (granted, or queued
// behind the holders) comes back to the requester as a signal.
func (a *Activities) RequestTargetSlot(ctx context.Context, in TargetSlotInput) error {
	t, _, err := a.Registry.Lookup(in.Target)
	if err != nil {
		return classify(err, int(activity.GetInfo(ctx).Attempt), 0)
	}
	req := in.Request
	req.MaxSlots = max(1, t.MaxHeavyTasks)
	_, err = activity.GetClient(ctx).SignalWithStartWorkflow(ctx, in.LockWorkflowID, in.LockSignal, req,
		client.StartWorkflowOptions{
			ID:            in.LockWorkflowID,
			TaskQueue:     in.TaskQueue,
			StaticSummary: fmt.Sprintf("Heavy-task slots of target %s (max %d at a time)", in.Target, req.MaxSlots),
		}, in.LockWorkflowType, TargetLockStart{Target: in.Target, MaxSlots: req.MaxSlots})
	if err != nil {
		return fmt.Errorf("request a heavy-task slot on %s from %s: %w", in.Target, in.LockWorkflowID, err)
	}
	return nil
}

// LockHolder names a holder of a slot.
type LockHolder struct {
	RequestID  string `json:"request_id"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

// GoneHolders returns the request ids of holders whose workflow execution
// is no longer running (terminated, timed out, reset or deleted without
// releasing its slot). A holder whose state cannot be read now is kept.
func (a *Activities) GoneHolders(ctx context.Context, holders []LockHolder) ([]string, error) {
	c := activity.GetClient(ctx)
	var gone []string
	var errs []error
	for _, h := range holders {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		desc, err := c.DescribeWorkflowExecution(dctx, h.WorkflowID, h.RunID)
		cancel()
		var notFound *serviceerror.NotFound
		switch {
		case errors.As(err, &notFound):
			gone = append(gone, h.RequestID)
		case err != nil:
			errs = append(errs, fmt.Errorf("describe holder %s: %w", h.WorkflowID, err))
		case desc.GetWorkflowExecutionInfo().GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
			gone = append(gone, h.RequestID)
		}
	}
	if len(gone) == 0 && len(errs) > 0 {
		// Nothing learned: let the lock workflow retry this check later.
		return nil, temporal.NewApplicationError(errors.Join(errs...).Error(), "HolderCheckFailed")
	}
	return gone, nil
}
