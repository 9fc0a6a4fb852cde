package postgres

import (
	"context"
	osuser "os/user"
	"sync"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
)

// The DR drill on PostgreSQL (driver.Driller).
//
// The canary table public.themis_drill_canary on the target (which must be
// the primary) is the drill's only write to production. Once the canary
// writer has stopped (the simulated failure instant), DrillRestore restores
// by one of two strategies (drill_strategy.go). backup_restore copies the
// newest verified base backup and replays the WAL archive up to the failure
// instant (drill_backup_restore.go). replica_clone takes a
// fresh pg_basebackup -X stream of a standby listed in Target.ReplicaDSNs
// (the first one reachable that is in recovery and serves WAL senders), or
// of the primary when none is, into <scratch>/drill-<id>/data. The copy is
// started with a configuration of its own (archiving off, no upstream, no
// WAL senders, no TCP listener: only a Unix socket in a directory private
// to the server's OS account, see drillPaths.socketDir) in archive
// recovery that stops as soon as the copy is consistent (recovery_target =
// 'immediate') and promotes: a copy of a standby holds exactly what the
// standby had replayed when the backup was taken, so a lagging standby
// shows as a real, positive RPO. Every step is
// keyed by the drill id (a marker file in the drill's directory records
// its state, port and source), so a retried activity resumes and a
// clean-up after a crash finds what an earlier attempt made; orphan_cleanup
// removes drill directories whose marker is older than drillStaleAfter.
//
// The steps, one file each: drill_preflight.go (DrillPreflight),
// drill_canary.go (CanaryWrite, CanaryCleanup), drill_strategy.go (the
// strategy and base backup), drill_source.go (choosing the standby or
// primary to copy), drill_restore.go (DrillRestore, replica_clone),
// drill_backup_restore.go (backup_restore), drill_replayed.go (what the
// restored instance replayed, from its log),
// drill_scratch.go (reaching and restarting the restored instance),
// drill_verify.go (DrillVerify) and drill_cleanup.go (DrillCleanup); the
// drill's directories are in drill_paths.go and its marker file in
// drill_marker.go.

var _ driver.Driller = (*Driver)(nil)

const (
	drillDirPrefix = driver.DrillDirPrefix
	drillKind      = "drill"
	drillRestoring = "restoring"
	drillReady     = "ready"
	// drillStaleAfter is how old a drill directory's marker must be before
	// orphan_cleanup removes it: longer than a restore (6 h), a verify
	// (2 h) and the default wait for the "complete" approval (4 h) together.
	// DrillVerify touches the marker.
	drillStaleAfter = 24 * time.Hour
	// scratchSpaceFactor is the room preflight wants in the scratch
	// directory, relative to the size of the cluster's databases (the copy,
	// plus its WAL and some growth while it recovers and is checked).
	scratchSpaceFactor = 1.5
	// maxSocketDir is the longest socket directory path used: a socket path
	// ("<dir>/.s.PGSQL.<port>.lock" included) must fit in 107 bytes.
	maxSocketDir = 107 - len("/.s.PGSQL.65535.lock")
	// drillSocketPrefix names the socket directory of a drill whose own
	// directory is too long for a socket path: <tmp>/thm-drill-<hash>.
	drillSocketPrefix = "thm-drill-"
	// canaryLockTimeout and canaryStatementTimeout bound the canary
	// statements, so a blocked canary write fails instead of silently
	// stretching the interval.
	canaryLockTimeout      = 5 * time.Second
	canaryStatementTimeout = 30 * time.Second
	// promoteTimeout bounds the wait for the scratch copy to leave recovery.
	promoteTimeout = 2 * time.Minute
)

// osUserName is the name of account u (nil: this process's account).
func osUserName(u *pgbin.User) string {
	if u != nil {
		return u.Name
	}
	if cur, err := osuser.Current(); err == nil {
		return cur.Username
	}
	return ""
}

// drillLocks serialises the steps of one drill within this process (a
// clean-up that arrives while an abandoned restore attempt still runs waits
// for it), keyed by the drill's directory.
var drillLocks = struct {
	sync.Mutex
	m map[string]chan struct{}
}{m: map[string]chan struct{}{}}

func lockDrill(ctx context.Context, key string) (unlock func(), err error) {
	for {
		drillLocks.Lock()
		ch, busy := drillLocks.m[key]
		if !busy {
			ch = make(chan struct{})
			drillLocks.m[key] = ch
			drillLocks.Unlock()
			return func() {
				drillLocks.Lock()
				delete(drillLocks.m, key)
				drillLocks.Unlock()
				close(ch)
			}, nil
		}
		drillLocks.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// drillRun is a run of the drill against t with its server facts read.
func (d *Driver) drillRun(ctx context.Context, t driver.Target, progress driver.ProgressFunc) (*run, error) {
	pool, err := d.pool(ctx, t)
	if err != nil {
		return nil, err
	}
	r := &run{d: d, req: driver.Request{Target: t, Task: domain.TaskDisasterRecoveryDrill, Progress: progress}, pool: pool, progressFn: progress}
	if err := r.loadServer(ctx); err != nil {
		return nil, classify(ctx, err, "target %s: read server facts", t.Name)
	}
	return r, nil
}

// drillNeedsPrimary fails with Misconfigured when the target is a standby.
func (r *run) drillNeedsPrimary() error {
	if r.srv.InRecovery {
		return driver.Permanentf(driver.KindMisconfigured,
			"target %s is a standby (in recovery): a drill writes its canary on the primary; point the target's dsn at the primary and list standbys in replica_dsns",
			r.target().Name)
	}
	return nil
}
