package api

import (
	"context"

	"github.com/themis-maintenance/themis/domain"
)

// Service is what the gateway needs from the client-side service (package
// starter implements it against Temporal). Errors: *domain.ValidationError
// (400), domain.ErrNotFound (404), domain.ErrConflict (409),
// domain.ErrForbidden (403), domain.ErrUnavailable (503); anything else is
// an internal error.
type Service interface {
	// CreateSchedule creates a schedule from a normalised spec.
	CreateSchedule(ctx context.Context, spec domain.ScheduleSpec, principal string) (domain.Schedule, error)
	GetSchedule(ctx context.Context, id string) (domain.Schedule, error)
	ListSchedules(ctx context.Context) ([]domain.Schedule, error)
	// UpdateSchedule applies mutate to the current spec under a per-schedule
	// lock, normalises the result and writes it. mutate may return a
	// *domain.ValidationError.
	UpdateSchedule(ctx context.Context, id string, principal string, mutate func(*domain.ScheduleSpec) error) (domain.Schedule, error)
	DeleteSchedule(ctx context.Context, id string, principal string) error
	// RunSchedule starts a job now; force bypasses the maintenance window.
	RunSchedule(ctx context.Context, id string, force bool, principal string) (domain.Job, error)

	ListJobs(ctx context.Context, filter JobFilter) (JobPage, error)
	GetJob(ctx context.Context, id string) (domain.Job, error)
	// CancelJob requests cancellation; domain.ErrConflict when not active.
	CancelJob(ctx context.Context, id string, principal string) (domain.Job, error)

	// Ready reports whether Temporal answers.
	Ready(ctx context.Context) error
	// Status summarises the orchestrator for GET /status.
	Status(ctx context.Context) (Status, error)
	// TargetKnown reports whether a target name is configured; DefaultTarget
	// is used when a spec names none.
	TargetKnown(name string) bool
	DefaultTarget() string
}

// JobFilter selects jobs for GET /jobs.
type JobFilter struct {
	ActiveOnly    bool
	ScheduleID    string
	State         domain.JobState
	Limit         int
	NextPageToken string
}

// JobPage is one page of jobs.
type JobPage struct {
	Jobs          []domain.Job `json:"jobs"`
	Count         int          `json:"count"`
	NextPageToken string       `json:"next_page_token"`
}

// Status is the body of GET /status.
type Status struct {
	Service          string `json:"service"`
	Version          string `json:"version"`
	TemporalAddress  string `json:"temporal_address"`
	Namespace        string `json:"namespace"`
	TaskQueue        string `json:"task_queue"`
	TemporalUIURL    string `json:"temporal_ui_url"`
	Schedules        int    `json:"schedules"`
	EnabledSchedules int    `json:"enabled_schedules"`
	ActiveJobs       int    `json:"active_jobs"`
	DefaultTarget    string `json:"default_target"`
}
