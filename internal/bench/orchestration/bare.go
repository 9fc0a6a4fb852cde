package orchestration

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Names of the reference workflow and its activity.
const (
	bareWorkflowName = "BenchBareThreeActivities"
	bareActivityName = "BenchNoop"
)

// bareWorkflow is the floor a job of n tasks is compared with: n no-op
// activities in sequence, nothing else.
func bareWorkflow(ctx workflow.Context, n int) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	for range n {
		if err := workflow.ExecuteActivity(ctx, bareActivityName).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

func bareActivity(context.Context) error { return nil }

// startBareWorker runs the reference workflow's worker in the bench process,
// on its own task queue of the same dev server.
func startBareWorker(c client.Client) (sdkworker.Worker, error) {
	w := sdkworker.New(c, bareQueue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(bareWorkflow, workflow.RegisterOptions{Name: bareWorkflowName})
	w.RegisterActivityWithOptions(bareActivity, activity.RegisterOptions{Name: bareActivityName})
	if err := w.Start(); err != nil {
		return nil, err
	}
	return w, nil
}

// runBare starts the reference workflow with n activities and waits for
// its result; it returns the client wall time.
func runBare(ctx context.Context, c client.Client, id string, n int) (time.Duration, error) {
	start := time.Now()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: bareQueue}, bareWorkflowName, n)
	if err != nil {
		return 0, err
	}
	err = run.Get(ctx, nil)
	return time.Since(start), err
}
