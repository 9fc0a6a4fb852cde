package driver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"time"

	"github.com/themis-maintenance/themis/domain"
)

// Driller is implemented by drivers that can take part in a disaster-recovery
// drill. Every method is idempotent and keyed by the drill id, so a retried
// activity (or a clean-up after a crash) finds what an earlier attempt made.
// Production is only ever written to through the canary table.
type Driller interface {
	// DrillPreflight checks that the target is healthy, that a source to
	// restore from exists, and that the scratch area has room.
	DrillPreflight(ctx context.Context, t Target, h History) (DrillPreflight, error)
	// CanaryWrite inserts canary row seq stamped at into the target's canary
	// table, creating the table on first use.
	CanaryWrite(ctx context.Context, t Target, drillID string, seq int64, at time.Time) error
	// CanaryCleanup removes the canary table from the target.
	CanaryCleanup(ctx context.Context, t Target, drillID string) error
	// DrillRestore restores the target into an isolated scratch instance as
	// it was at the failure instant (the canary has stopped by then) by the
	// request's strategy, and returns how to reach it and what it restored.
	// It heartbeats through progress.
	DrillRestore(ctx context.Context, t Target, h History, req DrillRestoreRequest, progress ProgressFunc) (Scratch, error)
	// DrillVerify checks the scratch instance (integrity, row counts, the
	// newest canary row) and that it accepts queries.
	DrillVerify(ctx context.Context, t Target, s Scratch) (DrillVerification, error)
	// DrillCleanup stops and removes every scratch instance, process, port
	// and directory of the drill. It succeeds when there is nothing left.
	DrillCleanup(ctx context.Context, t Target, drillID string) (DrillCleanupReport, error)
}

// DrillPreflight is what the preflight step found.
type DrillPreflight struct {
	Healthy          bool   `json:"healthy"`
	Source           string `json:"source"`
	ScratchDir       string `json:"scratch_dir"`
	ScratchFreeBytes int64  `json:"scratch_free_bytes"`
	NeededBytes      int64  `json:"needed_bytes"`
	Notes            string `json:"notes"`
}

// Drill strategies (docs/DR_DRILL.md): how a drill restores the target.
const (
	// StrategyBackupRestore restores the latest verified backup (postgres:
	// base backup plus archived WAL replayed to the failure instant).
	StrategyBackupRestore = domain.DrillStrategyBackupRestore
	// StrategyReplicaClone copies the standby (or primary) at drill time and
	// promotes the copy in isolation (postgres only).
	StrategyReplicaClone = domain.DrillStrategyReplicaClone
)

// DrillRestoreRequest is what a drill asks DrillRestore to do.
type DrillRestoreRequest struct {
	DrillID string `json:"drill_id"`
	// Strategy is StrategyBackupRestore or StrategyReplicaClone; "" means
	// the target's configured strategy (Target.DrillStrategy), and without
	// one the driver's default.
	Strategy string `json:"strategy,omitempty"`
	// FailureAt is the simulated failure instant: the restore replays no
	// further than it.
	FailureAt time.Time `json:"failure_at"`
}

// Scratch locates a restored scratch instance. It holds no secrets: scratch
// instances are reachable only through a private socket directory or file.
type Scratch struct {
	DrillID string `json:"drill_id"`
	Dir     string `json:"dir"`
	// Port is the scratch server's port (postgres); 0 for file engines.
	Port int `json:"port"`
	// Location is a human-readable way to reach the instance.
	Location string `json:"location"`
	// RestoredFrom says what was restored (backup file, base backup + WAL).
	RestoredFrom string `json:"restored_from"`
	// Strategy is the strategy the restore used.
	Strategy string `json:"strategy,omitempty"`
	// BackupID and BackupAt name the backup restored (backup_restore).
	BackupID string    `json:"backup_id,omitempty"`
	BackupAt time.Time `json:"backup_at,omitzero"`
	// WALRange is the first and last WAL segment replayed ("" when none).
	WALRange string `json:"wal_range,omitempty"`
	// RestoredBytes is the size of the data copied into the scratch
	// instance, WALBytes the archived WAL replayed; the durations time each
	// phase, so rates are bytes / duration.
	RestoredBytes int64 `json:"restored_bytes,omitempty"`
	WALBytes      int64 `json:"wal_bytes,omitempty"`
	CopyMs        int64 `json:"copy_ms,omitempty"`
	ReplayMs      int64 `json:"replay_ms,omitempty"`
}

// DrillVerification is what the verify step found in the scratch instance.
type DrillVerification struct {
	IntegrityOK    bool             `json:"integrity_ok"`
	Problems       []string         `json:"problems,omitempty"`
	Tables         int              `json:"tables"`
	RowCounts      map[string]int64 `json:"row_counts"`
	CanaryRows     int64            `json:"canary_rows"`
	NewestCanaryAt time.Time        `json:"newest_canary_at"`
	// ServingAt is when the instance answered a query after verification.
	ServingAt time.Time `json:"serving_at"`
}

// DrillCleanupReport lists what clean-up removed.
type DrillCleanupReport struct {
	Removed []string `json:"removed"`
	// RemovedBackups are the paths of recorded backups the clean-up
	// deleted, for the history store to mark as removed.
	RemovedBackups []string `json:"removed_backups,omitempty"`
}

// Prober is implemented by drivers that can report a target's health
// cheaply (seconds, read-only): the API's background health probe calls it.
type Prober interface {
	Probe(ctx context.Context, t Target, h History) (TargetHealth, error)
}

// TargetHealth is a target's health as a probe saw it.
type TargetHealth struct {
	Reachable bool   `json:"reachable"`
	Version   string `json:"version"`
	// InRecovery is true for a standby (postgres).
	InRecovery bool `json:"in_recovery"`
	// ReplicaLagMs is the worst replica lag seen, -1 when not applicable.
	ReplicaLagMs int64 `json:"replica_lag_ms"`
	SizeBytes    int64 `json:"size_bytes"`
	// QuotaUsedPct is size / quota × 100, or 0 without a quota.
	QuotaUsedPct float64 `json:"quota_used_pct"`
	// LastVerifiedBackupAgeS is the age of the newest verified backup in
	// seconds, -1 when there is none.
	LastVerifiedBackupAgeS int64 `json:"last_verified_backup_age_s"`
	// WALChain is the WAL-chain status recorded with the newest verified
	// backup (postgres with wal_archive_dir: OK, WARNING or FAILURE; ""
	// when not checked), WALChainDetail its one-line summary.
	WALChain       string `json:"wal_chain,omitempty"`
	WALChainDetail string `json:"wal_chain_detail,omitempty"`
}

// DrillDirPrefix starts the file-system name of every drill's scratch
// entries, so clean-up and orphan_cleanup can recognise them.
const DrillDirPrefix = "drill-"

const maxDrillNameLen = 80

var unsafeDrillChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// DrillName is the file-system name of a drill: DrillDirPrefix and the drill
// id reduced to [A-Za-z0-9_-]. An id that had to be changed (or shortened)
// gets a hash of the original appended, so two ids never share a name. An
// empty id is an InvalidInput error.
func DrillName(drillID string) (string, error) {
	if drillID == "" {
		return "", Permanentf(KindInvalidInput, "drill id is empty")
	}
	s := unsafeDrillChars.ReplaceAllString(drillID, "_")
	if s != drillID || len(s) > maxDrillNameLen {
		sum := sha256.Sum256([]byte(drillID))
		if len(s) > maxDrillNameLen {
			s = s[:maxDrillNameLen]
		}
		s += "-" + hex.EncodeToString(sum[:4])
	}
	return DrillDirPrefix + s, nil
}

// DrillStrategyFor is the strategy a restore runs: req.Strategy, else the
// target's (t.DrillStrategy), else def (the driver's default).
func DrillStrategyFor(req DrillRestoreRequest, t Target, def string) string {
	switch {
	case req.Strategy != "":
		return req.Strategy
	case t.DrillStrategy != "":
		return t.DrillStrategy
	}
	return def
}
