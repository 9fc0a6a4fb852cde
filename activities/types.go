package activities

import (
	"encoding/json"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// TaskInput is the input of every task activity. It names the target; the
// worker resolves its connection details from its own configuration.
type TaskInput struct {
	JobID      string             `json:"job_id"`
	ScheduleID string             `json:"schedule_id"`
	Target     string             `json:"target"`
	Task       domain.TaskType    `json:"task"`
	Options    domain.TaskOptions `json:"options"`
	// DryRun asks the driver for the plan only (driver.Request.DryRun).
	DryRun bool `json:"dry_run,omitempty"`
	// Budget bounds the units of work the task starts; the activity adds
	// the units the schedule's previous run left (Budget.Carried).
	Budget driver.Budget `json:"budget,omitzero"`
}

// TaskOutput is the result of a task activity.
type TaskOutput struct {
	Summary      string         `json:"summary"`
	Details      map[string]any `json:"details"`
	Alerts       []domain.Alert `json:"alerts,omitempty"`
	Attempt      int            `json:"attempt"`
	StartedAtMs  int64          `json:"started_at_ms"`
	FinishedAtMs int64          `json:"finished_at_ms"`
	// Skipped, when set, says why the task did nothing (a dry run of a
	// task the driver cannot plan): the job shows it skipped.
	Skipped string `json:"skipped,omitempty"`
}

// Heartbeat is the detail recorded with every heartbeat: progress for the
// API and the resume checkpoint for the next attempt.
type Heartbeat struct {
	Pct        float64         `json:"pct"`
	Note       string          `json:"note"`
	Checkpoint json.RawMessage `json:"checkpoint,omitempty"`
	Attempt    int             `json:"attempt"`
}

// FailureDetails travel with a task's ApplicationError so the job record can
// show which attempt failed.
type FailureDetails struct {
	Attempt     int   `json:"attempt"`
	StartedAtMs int64 `json:"started_at_ms"`
}

// RecordJobInput stores a finished job in the history store.
type RecordJobInput struct {
	Job domain.Job `json:"job"`
}
