package driver

import (
	"context"
	"time"

	"github.com/themis-maintenance/themis/domain"
)

// A dry run (Request.DryRun) decides what the task would do on the real
// target — reading the catalog as a real run does — and executes nothing
// that changes the target or takes more than ACCESS SHARE locks: every
// statement the task would run is returned in Result.Plan instead, with the
// reason and the figures that crossed a threshold.

// PlannedStatement is one statement a dry run would have executed.
type PlannedStatement struct {
	// Object is the relation (schema.name, as the command log names it),
	// or "" for a statement on the whole database.
	Object    string `json:"object"`
	Statement string `json:"statement"`
	// Reason says why in words ("12000 dead tuples >= 1000").
	Reason string `json:"reason"`
	// Figures are the measured values behind the reason, by name
	// ("dead_tuples": 12000, "dead_tuple_threshold": 1000).
	Figures map[string]any `json:"figures,omitempty"`
	// PredictedMs is the statement's predicted duration from the command
	// log (0: unknown).
	PredictedMs int64 `json:"predicted_ms,omitempty"`
}

// DryRunner is implemented by drivers that can plan some task types
// without running them. A dry run of a heavy task the driver cannot plan is
// skipped, saying so; light tasks only read the target and are skipped in
// a dry run.
type DryRunner interface {
	PlansDryRun(task domain.TaskType) bool
}

// PlansDryRun reports whether d can plan task in a dry run.
func PlansDryRun(d Driver, task domain.TaskType) bool {
	p, ok := d.(DryRunner)
	return ok && p.PlansDryRun(task)
}

// Budget bounds the units of work (a table, an index, one relation's
// check) a task starts: the maintenance window of the job, or the
// schedule's time_limit_minutes. A zero Budget bounds nothing.
type Budget struct {
	// StopStartingAt: no unit starts at or after it, nor one whose
	// predicted duration (UnitHistory.UnitDurations) would end after it.
	StopStartingAt time.Time `json:"stop_starting_at"`
	// HardStopAt: a unit whose statement still runs then is cancelled
	// (server-side, as a cancelled task is) and left for the next run.
	HardStopAt time.Time `json:"hard_stop_at"`
	// StoppedBy names what StopStartingAt is ("window_closed" or
	// "time_limit"): units left are reported as "skipped: <StoppedBy>".
	StoppedBy string `json:"stopped_by"`
	// Carried are the units the previous run of the same schedule left
	// (Result.UnitsLeft): a driver starts with them, in that order.
	Carried []string `json:"carried,omitempty"`
}

// Bounded reports whether b bounds anything.
func (b Budget) Bounded() bool { return !b.StopStartingAt.IsZero() || !b.HardStopAt.IsZero() }

// Budget stop reasons (Budget.StoppedBy).
const (
	StoppedWindowClosed = "window_closed"
	StoppedTimeLimit    = "time_limit"
)

// UnitHistory is implemented by history stores that keep the command log
// (internal/history.Store does): drivers predict units from it and rotate
// integrity checks by it.
type UnitHistory interface {
	// UnitDurations returns, for each object of target, the median
	// duration of task's successful statements on it over its newest
	// (at most 10) runs.
	UnitDurations(ctx context.Context, target string, task domain.TaskType) (map[string]time.Duration, error)
	// LastGoodChecks returns, for each object of target, when one of
	// tasks last ran a statement on it without error.
	LastGoodChecks(ctx context.Context, target string, tasks []domain.TaskType) (map[string]time.Time, error)
}
