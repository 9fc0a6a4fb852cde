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
	// CheckBlackoutActivity asks the worker whether a blackout of the
	// target is in force (scheduled runs only).
	CheckBlackoutActivity = "check_blackout"
	// PredictDurationsActivity reads the tasks' expected durations from
	// the history store.
	PredictDurationsActivity = "predict_durations"
	// JobFailedErrorType is the application error type of a failed job.
	JobFailedErrorType = "JobFailed"
)

// Custom search attributes registered at start-up so jobs can be listed and
// filtered by schedule, target and state.
var (
	ScheduleIDKey = temporal.NewSearchAttributeKeyKeyword("ThemisScheduleId")
	TargetKey     = temporal.NewSearchAttributeKeyKeyword("ThemisTarget")
	JobStateKey   = temporal.NewSearchAttributeKeyKeyword("ThemisJobState")
	// ScheduleNameKey is set on Temporal Schedules so names can be checked
	// for uniqueness from the schedule list alone.
	ScheduleNameKey = temporal.NewSearchAttributeKeyKeyword("ThemisScheduleName")
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

// Drill activity names.
const (
	DrillPreflightActivity  = "drill_preflight"
	DrillCanaryActivity     = "drill_canary"
	DrillRestoreActivity    = "drill_restore"
	DrillVerifyActivity     = "drill_verify"
	DrillCleanupActivity    = "drill_cleanup"
	SaveDrillReportActivity = "drill_report"
)

// DrillIDForJob is the workflow id of the drill a job's
// disaster_recovery_drill task starts.
func DrillIDForJob(jobID string) string { return jobID + "-drill" }

// ManualDrillID is the workflow id of a drill started through the API.
func ManualDrillID(target string, unixMs int64) string {
	return fmt.Sprintf("drill-%s-%d", target, unixMs)
}

func drillRegisterOptions() workflow.RegisterOptions {
	return workflow.RegisterOptions{Name: DrillWorkflowName}
}
