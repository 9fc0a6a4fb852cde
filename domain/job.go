package domain

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
	ID            string   `json:"id"`
	RunID         string   `json:"run_id"`
	ScheduleID    string   `json:"schedule_id"`
	ScheduleName  string   `json:"schedule_name"`
	Target        string   `json:"target"`
	State         JobState `json:"state"`
	Forced        bool     `json:"forced"`
	TriggeredBy   string   `json:"triggered_by"`
	ProgressPct   float64  `json:"progress_pct"`
	StartedAtMs   int64    `json:"started_at_ms"`
	FinishedAtMs  int64    `json:"finished_at_ms"`
	DurationMs    int64    `json:"duration_ms"`
	ErrorMessage  string   `json:"error_message"`
	ResultSummary string   `json:"result_summary"`
	UIURL         string   `json:"ui_url"`
	// CommandsURL lists the statements the job's tasks ran (the command
	// log, GET /commands?job_id=).
	CommandsURL string    `json:"commands_url"`
	Tasks       []TaskRun `json:"tasks"`
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
