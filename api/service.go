package api

import (
	"context"
	"slices"
	"time"

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
	// ListSchedules lists schedules sorted by name, with the time the
	// answer's data was read (AsOfMs).
	ListSchedules(ctx context.Context) (ScheduleList, error)
	// UpdateSchedule applies mutate to the stored spec, normalises the
	// result and writes it conditionally on the stored state, answering
	// with what was stored. mutate may return a *domain.ValidationError; it
	// may run more than once (again on the newer entry when a concurrent
	// write came first), so it must depend on its argument only.
	// domain.ErrUnconfirmed when the write was sent but not seen stored.
	UpdateSchedule(ctx context.Context, id string, principal string, mutate func(*domain.ScheduleSpec) error) (domain.Schedule, error)
	DeleteSchedule(ctx context.Context, id string, principal string) error
	// RunSchedule starts a job now; force bypasses the maintenance window.
	// A *domain.ActiveJobError (409) when the schedule has an active job.
	RunSchedule(ctx context.Context, id string, force bool, principal string) (domain.Job, error)
	// RunScheduleWith is RunSchedule with every run option (a dry run).
	RunScheduleWith(ctx context.Context, id string, opts domain.RunOptions, principal string) (domain.Job, error)

	ListJobs(ctx context.Context, filter JobFilter) (JobPage, error)
	GetJob(ctx context.Context, id string) (domain.Job, error)
	// WaitJob holds until the job reaches a final state or wait has passed
	// (or ctx ends), then returns the job as GetJob does; a job that has
	// already ended is returned at once.
	WaitJob(ctx context.Context, id string, wait time.Duration) (domain.Job, error)
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
	// AsOfMs is when the listed data was read from Temporal (Unix ms).
	AsOfMs int64 `json:"as_of_ms"`
	// Revision identifies the data the answer was built from: two answers
	// of equal non-zero revision to equal requests are equal, so the
	// gateway may reuse the encoded body. Zero: unknown. Not sent.
	Revision uint64 `json:"-"`
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
	// AsOfMs is when the counts were read from Temporal (Unix ms).
	AsOfMs int64 `json:"as_of_ms"`
}

// DrillService is what the gateway needs for DR drills (package starter
// implements it). Errors as for Service; DecideDrill and AbortDrill return
// domain.ErrConflict when the drill is not awaiting that step / is finished.
type DrillService interface {
	// StartDrill starts a drill on target (empty: the default target).
	StartDrill(ctx context.Context, target, principal string) (domain.Drill, error)
	GetDrill(ctx context.Context, id string) (domain.Drill, error)
	// ListDrills lists the newest drills first, with the time the
	// answer's data was read (AsOfMs).
	ListDrills(ctx context.Context, limit int) (DrillList, error)
	// DrillTrend returns the newest limit finished drills of a configured
	// target, oldest first, with RTO/RPO against the objectives.
	DrillTrend(ctx context.Context, target string, limit int) (domain.DrillTrend, error)
	// WaitDrill holds until the drill meets w or w.Wait passes, then
	// answers it as GetDrill (GET /drills/{id}?wait=).
	WaitDrill(ctx context.Context, id string, w DrillWait) (domain.Drill, error)
	// DecideDrill approves (approve=true) or rejects the awaited step
	// ("start" or "complete") with the principal as approver.
	DecideDrill(ctx context.Context, id string, approve bool, step, comment, principal string) (domain.Drill, error)
	AbortDrill(ctx context.Context, id, reason, principal string) (domain.Drill, error)
}

// DrillRequestStarter is implemented by drill services that start a drill
// from the whole start request, its strategy included (package starter
// passes it on as workflows.DrillInput.Strategy). The gateway uses it when
// the service has it; a service without it cannot honour a strategy, and a
// request naming one is refused rather than run by another strategy.
type DrillRequestStarter interface {
	// StartDrillRequest starts a drill on req.Target (empty: the default
	// target) by req.Strategy (empty: the target's), validated by the
	// gateway (domain.ValidateDrillStrategy).
	StartDrillRequest(ctx context.Context, req DrillStartRequest, principal string) (domain.Drill, error)
}

// InfoService answers the read-only catalogue endpoints.
type InfoService interface {
	// Health returns the cached health report (never blocks on probes).
	Health(ctx context.Context) (HealthReport, error)
	// TaskTypes lists the task types with the drivers that support them.
	TaskTypes() []TaskTypeInfo
	// Targets lists the configured targets without secrets.
	Targets() []TargetInfo
}

// Health levels (the values of package health's Status). A module is
// unknown when its probe panicked, did not answer within its timeout or has
// not run yet; unknown counts as degraded in the overall status, which is
// unknown only when no probe is registered.
const (
	HealthOK       = "healthy"
	HealthDegraded = "degraded"
	HealthCritical = "critical"
	HealthUnknown  = "unknown"
)

// HealthReport is the body of GET /health: overall = the worst module
// status (critical, else degraded when any module is degraded or unknown).
type HealthReport struct {
	OverallStatus string         `json:"overall_status"`
	CheckedAtMs   int64          `json:"checked_at_ms"`
	Modules       []HealthSignal `json:"modules"`
}

// HealthSignal is one module's or target's health.
type HealthSignal struct {
	Name        string         `json:"name"`
	Status      string         `json:"status"`
	Message     string         `json:"message"`
	CheckedAtMs int64          `json:"checked_at_ms"`
	Details     map[string]any `json:"details,omitempty"`
}

// TaskTypeInfo describes a task type for GET /task-types.
type TaskTypeInfo struct {
	Name        string                `json:"name"`
	Title       string                `json:"title"`
	Description string                `json:"description"`
	Drivers     []string              `json:"drivers"`
	Options     map[string]OptionInfo `json:"options"`
	// Timeout is the attempt timeout class: short (2 h) or long (12 h).
	Timeout string `json:"timeout"`
	// Heavy tasks take one of the target's heavy-task slots.
	Heavy bool `json:"heavy"`
	// AdminOnly task types need the admin scope to be added to a schedule
	// or run on demand (domain.TaskDef.AdminOnly).
	AdminOnly bool `json:"admin_only,omitempty"`
}

// OptionInfo describes one task option.
type OptionInfo struct {
	Type   string   `json:"type"`
	Min    *float64 `json:"min,omitempty"`
	Max    *float64 `json:"max,omitempty"`
	Values []string `json:"values,omitempty"`
	Help   string   `json:"help"`
	// Default is the value a task uses when the option is not set.
	Default any `json:"default,omitempty"`
	// EngineDefaults lists the engines whose default differs.
	EngineDefaults map[string]any `json:"engine_defaults,omitempty"`
	// AdminOnly options need the admin scope to be set off their default.
	AdminOnly bool `json:"admin_only,omitempty"`
	// WriterMin and WriterMax bound what a caller without the admin scope
	// may set (domain.OptionSpec.WriterMin, WriterMax).
	WriterMin *float64 `json:"writer_min,omitempty"`
	WriterMax *float64 `json:"writer_max,omitempty"`
}

// DescribeOptions renders a task type's registered option specs for
// GET /task-types.
func DescribeOptions(specs map[string]domain.OptionSpec) map[string]OptionInfo {
	out := make(map[string]OptionInfo, len(specs))
	for name, o := range specs {
		oi := OptionInfo{Type: string(o.Kind), Values: o.Values, Help: o.Help, Default: o.Default,
			EngineDefaults: o.EngineDefaults, AdminOnly: o.AdminOnly, WriterMin: o.WriterMin, WriterMax: o.WriterMax}
		if o.Kind == domain.OptionInt || o.Kind == domain.OptionFloat {
			lo, hi := o.Min, o.Max
			oi.Min, oi.Max = &lo, &hi
		}
		out[name] = oi
	}
	return out
}

// DescribeTaskType renders a task type's registration with the drivers
// that support it (driver.Capabilities) for GET /task-types.
func DescribeTaskType(def domain.TaskDef, drivers []string) TaskTypeInfo {
	if drivers == nil {
		drivers = []string{}
	}
	return TaskTypeInfo{Name: string(def.Type), Title: def.Title, Description: def.Description,
		Drivers: slices.Clone(drivers), Options: DescribeOptions(def.Options),
		Timeout: string(def.Timeout), Heavy: def.Heavy, AdminOnly: def.AdminOnly}
}

// TargetInfo is a configured target without secrets.
type TargetInfo struct {
	Name           string `json:"name"`
	Driver         string `json:"driver"`
	QuotaBytes     int64  `json:"quota_bytes"`
	RTOObjectiveMs int64  `json:"rto_objective_ms"`
	RPOObjectiveMs int64  `json:"rpo_objective_ms"`
	Default        bool   `json:"default"`
	// Group is the target's group ("" for none): its jobs run on that
	// group's workers only.
	Group string `json:"group"`
	// Blackout is the blackout in force now, if any: scheduled runs are
	// skipped until it ends.
	Blackout *BlackoutNow `json:"blackout,omitempty"`
}

// BlackoutNow is a blackout in force.
type BlackoutNow struct {
	Name    string `json:"name"`
	StartMs int64  `json:"start_ms"`
	EndMs   int64  `json:"end_ms"`
}
