// Package worker wires the maintenance workflow and task activities onto a
// Temporal worker: registrations under stable names, the task queue, and a
// graceful stop. The themisctl binary and the integration tests share it.
package worker

import (
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/themis-maintenance/themis/activities"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/workflows"
)

// Register registers the workflows and, when acts is not nil, every task
// activity under its task type's wire name.
func Register(r sdkworker.Registry, acts *activities.Activities) {
	r.RegisterWorkflowWithOptions(workflows.MaintenanceWorkflow, workflow.RegisterOptions{Name: workflows.MaintenanceWorkflowName})
	r.RegisterWorkflowWithOptions(workflows.DrillWorkflow, workflow.RegisterOptions{Name: workflows.DrillWorkflowName})
	r.RegisterWorkflowWithOptions(workflows.ClaimWorkflow, workflow.RegisterOptions{Name: workflows.ClaimWorkflowName})
	if acts == nil {
		return
	}
	for _, t := range domain.AllTaskTypes() {
		r.RegisterActivityWithOptions(acts.Task(t), activity.RegisterOptions{Name: string(t)})
	}
	r.RegisterActivityWithOptions(acts.RecordJob, activity.RegisterOptions{Name: workflows.RecordJobActivity})
	for name, fn := range map[string]any{
		workflows.DrillPreflightActivity:  acts.DrillPreflight,
		workflows.DrillCanaryActivity:     acts.DrillCanary,
		workflows.DrillRestoreActivity:    acts.DrillRestore,
		workflows.DrillVerifyActivity:     acts.DrillVerify,
		workflows.DrillCleanupActivity:    acts.DrillCleanup,
		workflows.SaveDrillReportActivity: acts.SaveDrillReport,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}

// Options tune a worker.
type Options struct {
	// StopTimeout is how long Stop lets running tasks finish before their
	// contexts are cancelled; they are then retried on another worker and
	// resume from their last checkpoint. Optional: defaulted to 10s;
	// negative means cancel at once.
	StopTimeout time.Duration
}

// New creates a worker on taskQueue with everything registered.
func New(c client.Client, taskQueue string, acts *activities.Activities, opts Options) sdkworker.Worker {
	stop := opts.StopTimeout
	switch {
	case stop == 0:
		stop = 10 * time.Second
	case stop < 0:
		stop = 0
	}
	w := sdkworker.New(c, taskQueue, sdkworker.Options{
		WorkerStopTimeout: stop,
		// Send heartbeats (progress, checkpoints) to the server at least
		// every second, so the API shows live progress and a retried task
		// resumes from a recent checkpoint.
		MaxHeartbeatThrottleInterval:     time.Second,
		DefaultHeartbeatThrottleInterval: time.Second,
	})
	Register(w, acts)
	return w
}
