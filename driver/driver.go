// Package driver defines the interface between maintenance activities and the
// database engines they maintain. A driver runs one task type against one
// target and reports progress through a callback; activities turn that into
// Temporal heartbeats. No SQL crosses this interface: requests carry task
// types and typed options, results carry summaries and structured details.
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
}

// Result is what a task reports back.
type Result struct {
	Summary string         `json:"summary"`
	Details map[string]any `json:"details"`
	Alerts  []domain.Alert `json:"alerts,omitempty"`
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

// Option helpers read task options with defaults; values were validated and
// canonicalised by domain.ScheduleSpec.Normalize, but payloads that crossed
// JSON carry numbers as float64, so both forms are accepted.

// IntOption returns option key as an int64, or def when absent.
func IntOption(o domain.TaskOptions, key string, def int64) int64 {
	switch v := o[key].(type) {
	case int64:
		return v
	case int:
		return int64(v)
	case float64:
		return int64(v)
	}
	return def
}

// FloatOption returns option key as a float64, or def when absent.
func FloatOption(o domain.TaskOptions, key string, def float64) float64 {
	switch v := o[key].(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	case int:
		return float64(v)
	}
	return def
}

// BoolOption returns option key as a bool, or def when absent.
func BoolOption(o domain.TaskOptions, key string, def bool) bool {
	if v, ok := o[key].(bool); ok {
		return v
	}
	return def
}

// StringOption returns option key as a string, or def when absent.
func StringOption(o domain.TaskOptions, key string, def string) string {
	if v, ok := o[key].(string); ok && v != "" {
		return v
	}
	return def
}

// DecodeCheckpoint unmarshals a checkpoint into v; it reports false when there
// is none or it does not decode (the task then starts from the beginning).
func DecodeCheckpoint(raw json.RawMessage, v any) bool {
	if len(raw) == 0 || string(raw) == "null" {
		return false
	}
	return json.Unmarshal(raw, v) == nil
}
