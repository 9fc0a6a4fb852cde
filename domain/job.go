package domain

import "time"

// JobState is the state of a job or of one task in it (docs/MAINTENANCE_SCHEDULE.md).
type JobState string

// Job and task states.
const (
	StatePending JobState = "pending"
	StateRunning JobState = "running"
	// StateWaiting: the job waits for its target (another job holds the
	// target's heavy-task slots); the wait counts against the window.
	StateWaiting   JobState = "waiting"
	StateSucceeded JobState = "succeeded"
	StateFailed    JobState = "failed"
	StateCancelled JobState = "cancelled"
	StateSkipped   JobState = "skipped"
)

// Terminal reports whether the state is final.
func (s JobState) Terminal() bool {
	switch s {
	case StateSucceeded, StateFailed, StateCancelled, StateSkipped:
		return true
	}
	return false
}

// Valid reports whether s is one of the job states.
func (s JobState) Valid() bool {
	switch s {
	case StatePending, StateRunning, StateWaiting, StateSucceeded, StateFailed, StateCancelled, StateSkipped:
		return true
	}
	return false
}

// Job is one run of a schedule: one workflow execution (docs/MAINTENANCE_SCHEDULE.md).
type Job struct {
	ID           string   `json:"id"`
	RunID        string   `json:"run_id"`
	ScheduleID   string   `json:"schedule_id"`
	ScheduleName string   `json:"schedule_name"`
	Target       string   `json:"target"`
	State        JobState `json:"state"`
	Forced       bool     `json:"forced"`
	// DryRun jobs decide what their tasks would do and execute nothing
	// (docs/MAINTENANCE_SCHEDULE.md, dry run): each task's details hold
	// the plan.
	DryRun        bool    `json:"dry_run"`
	TriggeredBy   string  `json:"triggered_by"`
	ProgressPct   float64 `json:"progress_pct"`
	StartedAtMs   int64   `json:"started_at_ms"`
	FinishedAtMs  int64   `json:"finished_at_ms"`
	DurationMs    int64   `json:"duration_ms"`
	ErrorMessage  string  `json:"error_message"`
	ResultSummary string  `json:"result_summary"`
	UIURL         string  `json:"ui_url"`
	// CommandsURL lists the statements the job's tasks ran (the command
	// log, GET /commands?job_id=).
	CommandsURL string    `json:"commands_url"`
	Tasks       []TaskRun `json:"tasks"`
}

// RunOptions say how a job is run on demand.
type RunOptions struct {
	// Force runs outside the maintenance window and through blackouts.
	Force bool `json:"force"`
	// DryRun decides what each task would do and executes nothing.
	DryRun bool `json:"dry_run"`
}

// TaskRun is one task of a job.
type TaskRun struct {
	TaskType      TaskType       `json:"task_type"`
	State         JobState       `json:"state"`
	Attempt       int            `json:"attempt"`
	ProgressPct   float64        `json:"progress_pct"`
	StartedAtMs   int64          `json:"started_at_ms"`
	FinishedAtMs  int64          `json:"finished_at_ms"`
	ResultSummary string         `json:"result_summary"`
	ErrorMessage  string         `json:"error_message"`
	Details       map[string]any `json:"details"`
	// PredictedMs is what the task is expected to take: the median of its
	// recent successful runs on the target (0: no run to go by).
	PredictedMs int64 `json:"predicted_ms"`
}

// Alert levels raised by tasks.
const (
	AlertWarning  = "WARNING"
	AlertHigh     = "HIGH"
	AlertCritical = "CRITICAL"
)

// Alert is a threshold a task found crossed.
type Alert struct {
	Level   string `json:"level"`
	Subject string `json:"subject"`
	Message string `json:"message"`
}

// Remaining estimates how much longer an active job runs from its tasks'
// predicted durations: each pending task's prediction plus what a running
// task has left of its own (at least nothing). Tasks run in order, so this
// is an upper bound for a job whose tasks run in parallel. ok is false when
// the job has ended or a task still to run has no prediction.
func (j Job) Remaining(now time.Time) (d time.Duration, ok bool) {
	if j.State.Terminal() {
		return 0, false
	}
	for _, t := range j.Tasks {
		switch t.State {
		case StatePending, StateWaiting:
			if t.PredictedMs <= 0 {
				return 0, false
			}
			d += time.Duration(t.PredictedMs) * time.Millisecond
		case StateRunning:
			if t.PredictedMs <= 0 {
				return 0, false
			}
			ran := now.Sub(time.UnixMilli(t.StartedAtMs))
			d += max(0, time.Duration(t.PredictedMs)*time.Millisecond-ran)
		}
	}
	return d, true
}
