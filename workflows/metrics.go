package workflows

import (
	"slices"

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

// Label names of the outcome counters.
var (
	triggeredLabels  = []string{"target", "triggered_by"}
	jobsLabels       = []string{"state", "target", "triggered_by"}
	tasksLabels      = []string{"task", "target", "state"}
	specJobsLabels   = []string{"schedule", "target", "triggered_by"}
	specTasksLabels  = []string{"schedule", "task_type", "target"}
	specJobStates    = []domain.JobState{domain.StateSucceeded, domain.StateFailed, domain.StateCancelled, domain.StateSkipped}
	specTaskOutcomes = []domain.JobState{domain.StateSucceeded, domain.StateFailed}
)

// OutcomeMetrics are the counters the workflows record (Prometheus names,
// the exporter keeping their _total suffix) and the label names each
// carries besides the Temporal SDK's own tags (namespace, task_queue,
// workflow_type, ...). deploy/'s tests check the dashboard and alert rules
// against them.
func OutcomeMetrics() map[string][]string {
	out := map[string][]string{
		JobsTriggeredMetric:                triggeredLabels,
		JobsMetric:                         jobsLabels,
		TasksMetric:                        tasksLabels,
		specJobsPrefix + "triggered_total": specJobsLabels,
	}
	for _, st := range specJobStates {
		out[specJobsPrefix+string(st)+"_total"] = specJobsLabels
	}
	for _, st := range specTaskOutcomes {
		out[specTasksPrefix+string(st)+"_total"] = specTasksLabels
	}
	return out
}

// tags pairs label names with their values, in order.
func tags(names []string, values ...string) map[string]string {
	m := make(map[string]string, len(names))
	for i, n := range names {
		m[n] = values[i]
	}
	return m
}

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
	h.WithTags(tags(triggeredLabels, job.Target, job.TriggeredBy)).Counter(JobsTriggeredMetric).Inc(1)
	h.WithTags(tags(specJobsLabels, scheduleLabel(job), job.Target, job.TriggeredBy)).
		Counter(specJobsPrefix + "triggered_total").Inc(1)
}

func countOutcome(ctx workflow.Context, job domain.Job) {
	h := workflow.GetMetricsHandler(ctx)
	h.WithTags(tags(jobsLabels, string(job.State), job.Target, job.TriggeredBy)).Counter(JobsMetric).Inc(1)
	if slices.Contains(specJobStates, job.State) {
		h.WithTags(tags(specJobsLabels, scheduleLabel(job), job.Target, job.TriggeredBy)).
			Counter(specJobsPrefix + string(job.State) + "_total").Inc(1)
	}
	for _, t := range job.Tasks {
		h.WithTags(tags(tasksLabels, string(t.TaskType), job.Target, string(t.State))).Counter(TasksMetric).Inc(1)
		if slices.Contains(specTaskOutcomes, t.State) {
			h.WithTags(tags(specTasksLabels, scheduleLabel(job), string(t.TaskType), job.Target)).
				Counter(specTasksPrefix + string(t.State) + "_total").Inc(1)
		}
	}
}
