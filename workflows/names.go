package workflows

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Names shared by the worker, the starter and the tests.
const (
	// MaintenanceWorkflowName is the workflow type of a job.
	MaintenanceWorkflowName = "MaintenanceWorkflow"
	// ProgressQuery returns the job (domain.Job) while it runs and after.
	ProgressQuery = "progress"
	// RecordJobActivity stores a finished job in the history store.
	RecordJobActivity = "record_job"
	// JobFailedErrorType is the application error type of a failed job.
	JobFailedErrorType = "JobFailed"
)

// Custom search attributes registered at start-up so jobs can be listed and
// filtered by schedule, target and state.
var (
	ScheduleIDKey = temporal.NewSearchAttributeKeyKeyword("ThemisScheduleId")
	TargetKey     = temporal.NewSearchAttributeKeyKeyword("ThemisTarget")
	JobStateKey   = temporal.NewSearchAttributeKeyKeyword("ThemisJobState")
)

// ManualJobID is the workflow id of a run started by hand: it embeds the
// schedule id so jobs of one schedule sort and filter together.
func ManualJobID(scheduleID string, unixMs int64) string {
	return fmt.Sprintf("%s-manual-%d", scheduleID, unixMs)
}

// ScheduledJobIDPrefix is the workflow id prefix of runs fired by the
// Temporal Schedule (Temporal appends the scheduled time).
func ScheduledJobIDPrefix(scheduleID string) string {
	return scheduleID + "-run"
}

func workflowRegisterOptions() workflow.RegisterOptions {
	return workflow.RegisterOptions{Name: MaintenanceWorkflowName}
}
