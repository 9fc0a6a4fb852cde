package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/themis-maintenance/themis/domain"
)

// Outcome counters, counted by the workflow through the SDK's metrics
// handler: it records nothing while a workflow replays, so each job start and
// each job and task outcome is counted once, however many task attempts,
// worker restarts or replays it took. The worker exports them on /metrics.
const (
	// JobsTriggeredMetric counts job starts, manual and by the Temporal
	// Schedule (triggered_by "schedule"): labels target, triggered_by.
	JobsTriggeredMetric = "themis_jobs_triggered_total"
	// JobsMetric counts finished jobs: labels state, target, triggered_by.
	JobsMetric = "themis_jobs_total"
	// TasksMetric counts task outcomes of finished jobs: labels task,
	// target, state.
	TasksMetric = "themis_tasks_total"
)

// The counters of docs/METRICS.md, counted the same way: maintenance_jobs_<state>_total
// (triggered, succeeded, failed, cancelled, skipped) with labels schedule,
// target and triggered_by, and maintenance_tasks_{succeeded,failed}_total
// with labels schedule, task_type and target. schedule is the job's
// schedule id, "manual" for a job started by hand. Labels do not enter the
// workflow history, so adding one needs no version.
const (
	specJobsPrefix  = "maintenance_jobs_"
	specTasksPrefix = "maintenance_tasks_"
)

// ScheduleLabelManual is the schedule label of a job started by hand.
const ScheduleLabelManual = "manual"

func scheduleLabel(job domain.Job) string {
	if job.ScheduleID != "" {
		return job.ScheduleID
	}
	return ScheduleLabelManual
}

func countTriggered(ctx workflow.Context, job domain.Job) {
	h := workflow.GetMetricsHandler(ctx)
	h.WithTags(map[string]string{"target": job.Target, "triggered_by": job.TriggeredBy}).
		Counter(JobsTriggeredMetric).Inc(1)
	h.WithTags(map[string]string{"schedule": scheduleLabel(job), "target": job.Target, "triggered_by": job.TriggeredBy}).
		Counter(specJobsPrefix + "triggered_total").Inc(1)
}

func countOutcome(ctx workflow.Context, job domain.Job) {
	h := workflow.GetMetricsHandler(ctx)
	h.WithTags(map[string]string{
		"state": string(job.State), "target": job.Target, "triggered_by": job.TriggeredBy,
	}).Counter(JobsMetric).Inc(1)
	if job.State.Terminal() {
		h.WithTags(map[string]string{"schedule": scheduleLabel(job), "target": job.Target, "triggered_by": job.TriggeredBy}).
			Counter(specJobsPrefix + string(job.State) + "_total").Inc(1)
	}
	for _, t := range job.Tasks {
		h.WithTags(map[string]string{
			"task": string(t.TaskType), "target": job.Target, "state": string(t.State),
		}).Counter(TasksMetric).Inc(1)
		if t.State == domain.StateSucceeded || t.State == domain.StateFailed {
			h.WithTags(map[string]string{"schedule": scheduleLabel(job), "task_type": string(t.TaskType), "target": job.Target}).
				Counter(specTasksPrefix + string(t.State) + "_total").Inc(1)
		}
	}
}
