// Package worker wires the maintenance workflow and task activities onto a
// Temporal worker: registrations under stable names, the task queue, and a
// graceful stop. The themisctl binary and the integration tests share it.
package worker

import (
	"context"
	"fmt"
	"os"
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
	r.RegisterWorkflowWithOptions(workflows.TargetLockWorkflow, workflow.RegisterOptions{Name: workflows.TargetLockWorkflowName})
	if acts == nil {
		return
	}
	for _, t := range domain.AllTaskTypes() {
		r.RegisterActivityWithOptions(acts.Task(t), activity.RegisterOptions{Name: string(t)})
	}
	r.RegisterActivityWithOptions(acts.RecordJob, activity.RegisterOptions{Name: workflows.RecordJobActivity})
	r.RegisterActivityWithOptions(acts.RequestTargetSlot, activity.RegisterOptions{Name: workflows.RequestTargetSlotActivity})
	r.RegisterActivityWithOptions(acts.GoneHolders, activity.RegisterOptions{Name: workflows.GoneHoldersActivity})
	registerScratchActivities(r, acts)
	for name, fn := range map[string]any{
		workflows.DrillPreflightActivity:   acts.DrillPreflight,
		workflows.DrillCanaryActivity:      acts.DrillCanary,
		workflows.SaveDrillReportActivity:  acts.SaveDrillReport,
		workflows.CheckBlackoutActivity:    acts.CheckBlackout,
		workflows.PredictDurationsActivity: acts.PredictDurations,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}

// registerHostActivities registers what may run on a host queue: the
// drill steps that touch a scratch instance, and backup_verification
// (backups and restores on this host's disk).
func registerHostActivities(r sdkworker.Registry, acts *activities.Activities) {
	registerScratchActivities(r, acts)
	t := domain.TaskBackupVerification
	r.RegisterActivityWithOptions(acts.Task(t), activity.RegisterOptions{Name: string(t)})
}

// registerScratchActivities registers the drill steps that touch a scratch
// instance.
func registerScratchActivities(r sdkworker.Registry, acts *activities.Activities) {
	for name, fn := range map[string]any{
		workflows.DrillRestoreActivity: acts.DrillRestore,
		workflows.DrillVerifyActivity:  acts.DrillVerify,
		workflows.DrillCleanupActivity: acts.DrillCleanup,
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
	// HostID names this worker's host (config worker.host_id). Besides the
	// shared task queue the worker polls HostQueue(taskQueue, HostID), where
	// a drill's verify and clean-up run on the host whose restore made the
	// scratch instance. Workers of one host share the id, so a restarted
	// worker serves its host's queue again. Optional: defaulted to the OS
	// hostname; "-" polls no host queue (drill steps are then not pinned).
	HostID string
	// MaxConcurrentActivities, MaxConcurrentWorkflowTasks, ActivityPollers
	// and WorkflowPollers tune the SDK worker (config worker.*); zero
	// takes the SDK's defaults. The host queue's worker gets the same.
	MaxConcurrentActivities    int
	MaxConcurrentWorkflowTasks int
	ActivityPollers            int
	WorkflowPollers            int
	// WorkflowsOnly polls the task queue for workflow tasks only: no
	// activity runs on this worker and no host queue is polled. A grouped
	// worker (config worker.target_groups) polls the base queue so, which
	// keeps claims and the workflow code of ungrouped targets running
	// while their activities stay with the ungrouped workers
	// (docs/TARGETS.md, Target groups).
	WorkflowsOnly bool
}

// HostQueue is the task queue polled only by the workers of host hostID.
func HostQueue(taskQueue, hostID string) string { return taskQueue + "@" + hostID }

// Worker polls the shared task queue (workflows and every activity) and
// its host's queue (the activities pinned to a host). Start, Run and Stop
// act on both; the Registry methods register on the shared queue.
type Worker struct {
	sdkworker.Worker
	host sdkworker.Worker
	// Host is the host id and queue (zero when none is polled).
	Host activities.Host
}

// New creates a worker on taskQueue, and on its host queue, with
// everything registered.
func New(c client.Client, taskQueue string, acts *activities.Activities, opts Options) *Worker {
	stop := opts.StopTimeout
	switch {
	case stop == 0:
		stop = 10 * time.Second
	case stop < 0:
		stop = 0
	}
	hostID := opts.HostID
	if hostID == "" {
		hostID, _ = os.Hostname()
	}
	var host activities.Host
	if hostID != "" && hostID != "-" && !opts.WorkflowsOnly {
		host = activities.Host{ID: hostID, Queue: HostQueue(taskQueue, hostID)}
	}
	sdkOpts := func() sdkworker.Options {
		return sdkworker.Options{
			WorkerStopTimeout: stop,
			// Send heartbeats (progress, checkpoints) to the server at least
			// every second, so the API shows live progress and a retried
			// task resumes from a recent checkpoint.
			MaxHeartbeatThrottleInterval:     time.Second,
			DefaultHeartbeatThrottleInterval: time.Second,
			// Activities learn their host (the restore returns its queue).
			BackgroundActivityContext: activities.WithHost(context.Background(), host),

			MaxConcurrentActivityExecutionSize:     opts.MaxConcurrentActivities,
			MaxConcurrentWorkflowTaskExecutionSize: opts.MaxConcurrentWorkflowTasks,
			MaxConcurrentActivityTaskPollers:       opts.ActivityPollers,
			MaxConcurrentWorkflowTaskPollers:       opts.WorkflowPollers,
		}
	}
	mainOpts := sdkOpts()
	if opts.WorkflowsOnly {
		mainOpts.LocalActivityWorkerOnly = true
		acts = nil
	}
	w := &Worker{Worker: sdkworker.New(c, taskQueue, mainOpts), Host: host}
	Register(w.Worker, acts)
	if host.Queue != "" && acts != nil {
		ho := sdkOpts()
		ho.DisableWorkflowWorker = true
		w.host = sdkworker.New(c, host.Queue, ho)
		registerHostActivities(w.host, acts)
	}
	return w
}

// Start starts polling both queues.
func (w *Worker) Start() error {
	if w.host != nil {
		if err := w.host.Start(); err != nil {
			return fmt.Errorf("start worker on host queue %s: %w", w.Host.Queue, err)
		}
	}
	if err := w.Worker.Start(); err != nil {
		if w.host != nil {
			w.host.Stop()
		}
		return err
	}
	return nil
}

// Run polls both queues until interruptCh delivers, then stops.
func (w *Worker) Run(interruptCh <-chan any) error {
	if err := w.Start(); err != nil {
		return err
	}
	<-interruptCh
	w.Stop()
	return nil
}

// Stop stops polling both queues (see Options.StopTimeout).
func (w *Worker) Stop() {
	done := make(chan struct{})
	if w.host != nil {
		go func() {
			defer close(done)
			w.host.Stop()
		}()
	} else {
		close(done)
	}
	w.Worker.Stop()
	<-done
}
