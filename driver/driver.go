// Package driver defines the interface between maintenance activities and the
// database engines they maintain. A driver runs one task type against one
// target and reports progress through a callback; activities turn that into
// Temporal heartbeats. No SQL crosses this interface: requests carry task
// types and typed options, results carry summaries and structured details.
//
// # Adding a task type
//
// A task type is one registration in package domain and one function per
// engine that runs it; nothing else (the API's /task-types, the OpenAPI
// document served at /api/v1/openapi.yaml, option validation, the worker's
// activities, the CLI's completion and the workflow's timeout all follow
// the registration):
//
//	func init() {
//		domain.MustRegisterTask(domain.TaskDef{
//			Type: "replica_consistency", Title: "Replica consistency",
//			Description: "Compare row counts between primary and replicas",
//			Timeout:     domain.TimeoutShort,
//			Options: map[string]domain.OptionSpec{
//				"max_lag_ms": {Kind: domain.OptionInt, Min: 0, Max: 86_400_000, Default: 1000, Help: "..."},
//			},
//		})
//		driver.MustImplement("postgres", "replica_consistency", func(ctx context.Context, req driver.Request) (driver.Result, error) {
//			maxLag := req.Int("max_lag_ms") // the registered default when unset
//			...
//		})
//	}
//
// Both must run before the worker starts (it registers one activity per
// task type then). Implement works for any engine without editing its
// package: Run and Supports (the functions of this package, which the
// activities and Registry.Capabilities use) consult it before the engine's
// own task table. An engine's own implementations are its task table
// (taskType -> function) in its driver.go; a driver takes part in the
// disaster_recovery_drill by implementing Driller.
package driver

import (
	"context"
	"encoding/json"
	"time"

	"github.com/themis-maintenance/themis/domain"
)

// Target is a configured database with its secrets resolved. It lives only in
// the worker's memory: workflows carry Target.Name and nothing else.
type Target struct {
	Name   string
	Driver string
	// DSN is the connection string (a file path for sqlite). Never log it.
	DSN string
	// ReplicaDSNs optionally name standbys to inspect directly (postgres).
	ReplicaDSNs []string
	// QuotaBytes is the size budget; 0 means no quota.
	QuotaBytes int64
	// BackupDir receives backups taken by backup_verification.
	BackupDir string
	// ScratchDir holds throwaway restores; defaults to a directory under BackupDir.
	ScratchDir   string
	RTOObjective time.Duration
	RPOObjective time.Duration
	// BinDir locates server binaries (pg_basebackup, initdb, ...) for postgres.
	BinDir string
	// OSUser, when set, runs server binaries as that user (initdb refuses root).
	OSUser string
	// MaxHeavyTasks bounds the heavy tasks running on this target at once,
	// cluster-wide (default 1).
	MaxHeavyTasks int
	// AllowCreateExtension lets postgres tasks CREATE EXTENSION on the
	// target, into ExtensionSchema; off, a missing extension is reported
	// with the task's fallback.
	AllowCreateExtension bool
	ExtensionSchema      string
	// WALArchiveDir is where archive_command writes WAL segments (postgres):
	// backup_verification checks the WAL chain there when set.
	WALArchiveDir string
	// DrillStrategy is the target's default drill strategy
	// (StrategyBackupRestore or StrategyReplicaClone); "" lets the driver
	// choose (backup_restore where a verified backup exists).
	DrillStrategy string
	// Blackouts are the periods when no scheduled maintenance starts on
	// the target (docs/TARGETS.md).
	Blackouts []domain.Blackout
}

// Progress is one heartbeat: how far the task is, what it is doing, and the
// checkpoint a retried attempt resumes from (JSON-encodable).
type Progress struct {
	Pct        float64
	Note       string
	Checkpoint any
	// Durable asks for Checkpoint to reach the server before the callback
	// returns (heartbeats are otherwise sent at most once a throttle
	// interval, and those recorded since the last are lost when the worker
	// dies). A driver sets it on the checkpoint a retry cannot do without,
	// such as the plan it records before work it cannot tell was done.
	Durable bool
}

// ProgressFunc receives heartbeats; it must be cheap and never blocks for
// long, except for a Durable checkpoint (one heartbeat round trip).
type ProgressFunc func(Progress)

// Request asks a driver to run one task.
type Request struct {
	Target  Target
	Task    domain.TaskType
	Options domain.TaskOptions
	// Checkpoint is the last checkpoint heartbeated by a previous attempt of
	// this task, or nil on a first attempt. Drivers skip work it records done.
	Checkpoint json.RawMessage
	Progress   ProgressFunc
	History    History
	JobID      string
	// Attempt is the activity attempt (1 on the first); sessions carry it
	// in their application_name so that a retry can find and cancel the
	// backends of the attempt it replaces.
	Attempt int
	// DryRun asks for the plan only (plan.go): nothing that changes the
	// target is executed, and Result.Plan lists what would have been.
	DryRun bool
	// Budget bounds the units of work the task starts (plan.go).
	Budget Budget
}

// Result is what a task reports back.
type Result struct {
	Summary string         `json:"summary"`
	Details map[string]any `json:"details"`
	Alerts  []domain.Alert `json:"alerts,omitempty"`
	// Plan is what a dry run would have executed (Request.DryRun).
	Plan []PlannedStatement `json:"plan,omitempty"`
	// UnitsLeft are the units not done because the budget ran out
	// (Budget.StoppedBy says which), in the order they were to run: the
	// next run of the schedule starts with them (Budget.Carried).
	UnitsLeft []string `json:"units_left,omitempty"`
	// StoppedBy is Budget.StoppedBy when units were left, else "".
	StoppedBy string `json:"stopped_by,omitempty"`
}

// Driver performs maintenance tasks on one engine.
type Driver interface {
	// Name is the driver's config name ("sqlite", "postgres").
	Name() string
	// Supports reports whether Run can do task on this engine.
	Supports(task domain.TaskType) bool
	// Run performs req.Task against req.Target. It returns an error wrapping
	// ErrNotSupported for unsupported tasks, a *PermanentError for failures a
	// retry cannot fix, and any other error for transient failures. It
	// returns promptly with ctx.Err() when ctx is cancelled.
	Run(ctx context.Context, req Request) (Result, error)
}

// OptionReader reads the task options of a request with the defaults
// registered for its task type (domain.OptionSpec.Default, or the engine's
// EngineDefaults entry): a default lives in the registration only. Values
// were validated and canonicalised by domain.ScheduleSpec.Normalize, but
// payloads that crossed JSON carry numbers as float64, so both forms are
// accepted. A key the task type does not declare reads as the zero value.
type OptionReader struct {
	engine string
	task   domain.TaskType
	values domain.TaskOptions
}

// OptionsOn reads r's options with the defaults of engine ("sqlite",
// "postgres"); engines pass their own name.
func (r Request) OptionsOn(engine string) OptionReader {
	return OptionReader{engine: engine, task: r.Task, values: r.Options}
}

// Int reads an integer option with its registered default (on the engine
// named by r.Target.Driver); for implementations added with Implement.
func (r Request) Int(key string) int64 { return r.OptionsOn(r.Target.Driver).Int(key) }

// Float reads a number option; see Int.
func (r Request) Float(key string) float64 { return r.OptionsOn(r.Target.Driver).Float(key) }

// Bool reads a boolean option; see Int.
func (r Request) Bool(key string) bool { return r.OptionsOn(r.Target.Driver).Bool(key) }

// String reads an enum option; see Int.
func (r Request) String(key string) string { return r.OptionsOn(r.Target.Driver).String(key) }

// Spec returns the registered spec of option key, with Default resolved for
// the reader's engine; ok is false when the task type has no such option.
func (o OptionReader) Spec(key string) (spec domain.OptionSpec, ok bool) {
	ti, found := domain.Info(o.task)
	if !found {
		return domain.OptionSpec{}, false
	}
	spec, ok = ti.Options[key]
	if ok {
		spec.Default = spec.DefaultFor(o.engine)
	}
	return spec, ok
}

// IsSet reports whether the request sets option key (not nil).
func (o OptionReader) IsSet(key string) bool {
	v, ok := o.values[key]
	return ok && v != nil
}

// Value returns option key as set, or its default when not set (nil for an
// undeclared key).
func (o OptionReader) Value(key string) any {
	if o.IsSet(key) {
		return o.values[key]
	}
	spec, _ := o.Spec(key)
	return spec.Default
}

// Int returns option key as an int64, or its default when absent.
func (o OptionReader) Int(key string) int64 {
	if n, ok := asInt(o.values[key]); ok {
		return n
	}
	spec, _ := o.Spec(key)
	n, _ := asInt(spec.Default)
	return n
}

// Float returns option key as a float64, or its default when absent.
func (o OptionReader) Float(key string) float64 {
	if f, ok := asFloat(o.values[key]); ok {
		return f
	}
	spec, _ := o.Spec(key)
	f, _ := asFloat(spec.Default)
	return f
}

// Bool returns option key as a bool, or its default when absent.
func (o OptionReader) Bool(key string) bool {
	if v, ok := o.values[key].(bool); ok {
		return v
	}
	spec, _ := o.Spec(key)
	b, _ := spec.Default.(bool)
	return b
}

// String returns option key as a string, or its default when absent or
// empty.
func (o OptionReader) String(key string) string {
	if v, ok := o.values[key].(string); ok && v != "" {
		return v
	}
	spec, _ := o.Spec(key)
	s, _ := spec.Default.(string)
	return s
}

func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case float64:
		return int64(n), true
	}
	return 0, false
}

func asFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	}
	return 0, false
}

// DecodeCheckpoint unmarshals a checkpoint into v; it reports false when there
// is none or it does not decode (the task then starts from the beginning).
func DecodeCheckpoint(raw json.RawMessage, v any) bool {
	if len(raw) == 0 || string(raw) == "null" {
		return false
	}
	return json.Unmarshal(raw, v) == nil
}
