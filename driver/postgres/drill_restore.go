package postgres

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
)

var lsnEndRE = regexp.MustCompile(`end point: ([0-9A-Fa-f]+/[0-9A-Fa-f]+)`)

// DrillRestore implements driver.Driller. The request's strategy (else the
// target's, else the default, see planDrill) picks how: replica_clone is a
// fresh pg_basebackup of the chosen source into the drill's directory,
// started as an isolated instance recovered to the backup's consistent
// point and promoted; backup_restore copies the newest verified base
// backup and replays the target's WAL archive up to the failure instant
// (drill_backup_restore.go). A drill whose instance is already restored is
// returned as it is (started again if it had stopped); anything an
// unfinished attempt left is removed first. A failed or cancelled restore
// removes what it made.
func (d *Driver) DrillRestore(ctx context.Context, t driver.Target, h driver.History, req driver.DrillRestoreRequest, progress driver.ProgressFunc) (driver.Scratch, error) {
	drillID := req.DrillID
	p, err := drillPathsOf(t, drillID)
	if err != nil {
		return driver.Scratch{}, err
	}
	if err := p.need(t); err != nil {
		return driver.Scratch{}, err
	}
	unlock, err := lockDrill(ctx, p.dir)
	if err != nil {
		return driver.Scratch{}, err
	}
	defer unlock()
	r, err := d.drillRun(ctx, t, progress)
	if err != nil {
		return driver.Scratch{}, err
	}
	if err := r.drillNeedsPrimary(); err != nil {
		return driver.Scratch{}, err
	}
	env, err := r.backupEnv(ctx, methodBasebackup)
	if err != nil {
		return driver.Scratch{}, err
	}

	if m, err := readDrillMeta(p); err == nil && m.State == drillReady && m.DrillID == drillID {
		r.progress(5, "the drill's scratch instance exists; checking it", nil)
		m, err := r.ensureScratchRunning(ctx, p, m, env.user)
		if err == nil {
			r.progress(100, "scratch instance already restored: "+m.scratch(p).Location, nil)
			return m.scratch(p), nil
		}
		if ctx.Err() != nil {
			return driver.Scratch{}, ctx.Err()
		}
		r.progress(5, "the existing scratch instance does not serve ("+err.Error()+"); restoring again", nil)
	}
	failureAt := req.FailureAt
	if failureAt.IsZero() {
		failureAt = time.Now()
	}
	plan, err := planDrill(ctx, t, h, req.Strategy, failureAt)
	if err != nil {
		return driver.Scratch{}, err
	}
	r.progress(1, fmt.Sprintf("strategy %s (%s)", plan.Strategy, plan.Why), nil)
	if _, err := os.Lstat(p.dir); err == nil {
		if _, err := removeDrillDir(ctx, &env.local, p); err != nil {
			return driver.Scratch{}, fmt.Errorf("remove what an earlier restore attempt left: %w", err)
		}
	}

	ok := false
	defer func() {
		if !ok {
			cctx, cancel := r.cleanupContext(ctx)
			defer cancel()
			_, _ = removeDrillDir(cctx, &env.local, p)
		}
	}()
	var s driver.Scratch
	if plan.Strategy == driver.StrategyBackupRestore {
		s, err = r.restoreFromBackup(ctx, p, drillID, env, plan, failureAt)
	} else {
		s, err = r.restoreDrill(ctx, p, drillID, env, plan)
	}
	if err != nil {
		if ctx.Err() != nil {
			return driver.Scratch{}, ctx.Err()
		}
		return driver.Scratch{}, err
	}
	ok = true
	return s, nil
}

// restoreDrill does DrillRestore's work by replica_clone in the (absent)
// drill directory.
func (r *run) restoreDrill(ctx context.Context, p drillPaths, drillID string, env backupEnv, plan drillPlan) (driver.Scratch, error) {
	t := r.target()
	m, err := r.newDrillMeta(ctx, p, drillID, env, plan)
	if err != nil {
		return driver.Scratch{}, err
	}
	r.progress(2, "choosing the restore source", nil)
	src, notes, err := r.chooseSource(ctx)
	if err != nil {
		return driver.Scratch{}, err
	}
	m.Source = src.Role + " " + src.Name

	stopTouch, err := makeDrillDir(p, m, env)
	if err != nil {
		return driver.Scratch{}, err
	}
	defer stopTouch()

	mappings, err := tablespaceMappings(ctx, r.pool.Query, filepath.Join(p.dir, "tblspc"))
	if err != nil {
		return driver.Scratch{}, classify(ctx, err, "list tablespaces")
	}
	if len(mappings) > 0 {
		if err := env.user.MkdirOwned(filepath.Join(p.dir, "tblspc"), 0o700); err != nil {
			return driver.Scratch{}, err
		}
	}
	srcEnv, password, err := pgbin.LibpqConn(src.DSN, "")
	if err != nil {
		return driver.Scratch{}, driver.Permanentf(driver.KindMisconfigured, "target %s: connection string of the %s: %v", t.Name, src.Role, err)
	}
	runner := pgbin.Runner{BinDir: env.binDir, User: env.user, Env: append(srcEnv, "PGAPPNAME="+ApplicationName), Password: password}
	args := append([]string{"-D", p.data, "-X", "stream", "--checkpoint=fast", "--no-password", "--no-sync", "--verbose",
		"--label=themis-" + p.name}, mappings...)
	note := "pg_basebackup of " + src.String()
	if len(notes) > 0 {
		note += " (" + strings.Join(notes, "; ") + ")"
	}
	r.progress(5, note+" running", nil)
	var out string
	copyStart := time.Now()
	err = r.during(5, note+" running", nil, func() error {
		var err error
		out, err = runner.RunGroup(ctx, "pg_basebackup", args...)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return driver.Scratch{}, ctx.Err()
		}
		msg := err.Error()
		if strings.Contains(msg, "pg_hba.conf") || strings.Contains(msg, "authentication failed") ||
			strings.Contains(msg, "must be superuser or replication role") || strings.Contains(msg, "permission denied") {
			return driver.Scratch{}, driver.Permanentf(driver.KindMisconfigured, "pg_basebackup of %s: %v", src.Name, err)
		}
		return driver.Scratch{}, fmt.Errorf("pg_basebackup of %s: %w", src.Name, err)
	}
	m.CopyMs = time.Since(copyStart).Milliseconds()
	m.RestoredBytes = DirSize(p.data)
	if mm := lsnEndRE.FindStringSubmatch(out); mm != nil {
		m.LSN = mm[1]
	} else {
		m.LSN = "an unreported LSN"
	}
	m.RestoredFrom = fmt.Sprintf("pg_basebackup of %s at %s", m.Source, m.LSN)

	r.progress(70, "starting the scratch instance (recovering to the backup's consistent point, then promoting)", nil)
	removeRecoveryFiles(p.data)
	inst := &pgbin.Instance{Runner: pgbin.Runner{BinDir: env.binDir, User: env.user}, DataDir: p.data,
		LogFile: filepath.Join(p.dir, "server.log"), Host: m.SocketDir, StartTimeout: time.Hour}
	conf := scratchConf{SocketDir: m.SocketDir, MaxPrepared: m.MaxPrepared, ClusterName: clusterName(p.name)}
	replayStart := time.Now()
	m.Port, err = r.startRestoredCopy(ctx, inst, conf, env.user)
	if err != nil {
		if ctx.Err() != nil {
			return driver.Scratch{}, ctx.Err()
		}
		return driver.Scratch{}, fmt.Errorf("the restored copy does not start: %w", err)
	}
	r.progress(90, fmt.Sprintf("waiting for the scratch instance on port %d to be promoted", m.Port), nil)
	if err := waitPromoted(ctx, m); err != nil {
		if ctx.Err() != nil {
			return driver.Scratch{}, ctx.Err()
		}
		if b, rerr := os.ReadFile(inst.LogFile); rerr == nil {
			err = fmt.Errorf("%w; scratch server log: %s", err, pgbin.Tail(string(b), 8))
		}
		return driver.Scratch{}, err
	}
	return r.finishDrill(ctx, p, m, plan, inst.LogFile, replayStart)
}

// newDrillMeta is the marker of a drill about to be restored by plan.
func (r *run) newDrillMeta(ctx context.Context, p drillPaths, drillID string, env backupEnv, plan drillPlan) (drillMeta, error) {
	t := r.target()
	m := drillMeta{Kind: drillKind, DrillID: drillID, Target: t.Name, State: drillRestoring, StartedAt: time.Now().UTC(),
		Database: r.srv.Database, BinDir: env.binDir, SocketDir: p.socketDir(), OSUser: osUserName(env.user),
		Strategy: plan.Strategy}
	if err := r.pool.QueryRow(ctx, `SELECT (SELECT rolname FROM pg_roles WHERE oid = 10), current_setting('max_prepared_transactions')::int`).
		Scan(&m.Superuser, &m.MaxPrepared); err != nil {
		return m, classify(ctx, err, "read source settings")
	}
	return m, nil
}

// finishDrill records what the promoted instance replayed (from its server
// log: the WAL range and bytes, the replay time since replayStart), marks
// the drill ready and returns its Scratch.
func (r *run) finishDrill(ctx context.Context, p drillPaths, m drillMeta, plan drillPlan, logFile string, replayStart time.Time) (driver.Scratch, error) {
	m.ReplayMs = time.Since(replayStart).Milliseconds()
	// The segment size names the segments; without it (the primary does
	// not answer now) only the bytes are reported.
	var segSize int64
	if err := r.pool.QueryRow(ctx, `SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'`).Scan(&segSize); err != nil {
		if ctx.Err() != nil {
			return driver.Scratch{}, ctx.Err()
		}
		segSize = 0
	}
	if b, err := os.ReadFile(logFile); err == nil {
		rl := parseRecoveryLog(string(b))
		m.WALRange, m.WALBytes = rl.walRange(p.data, uint64(segSize))
		if rl.LastXact != "" {
			m.RestoredFrom += "; last transaction replayed committed at " + rl.LastXact
		}
	}
	m.RestoredFrom += fmt.Sprintf("; strategy %s (%s)", plan.Strategy, plan.Why)
	m.State, m.ReadyAt = drillReady, time.Now().UTC()
	if err := writeDrillMeta(p, m); err != nil {
		return driver.Scratch{}, err
	}
	r.progress(100, "scratch instance ready: "+m.scratch(p).Location, nil)
	return m.scratch(p), nil
}

// startRestoredCopy starts the copied data directory of inst in archive
// recovery that stops at the copy's consistent point and promotes (see
// scratchConf.StopAtConsistency), and returns the port. PostgreSQL checks
// that target before each next record, so when the copy's WAL ends exactly
// at its consistent point (a backup of an idle standby streams nothing
// beyond it) recovery fails with recoveryTargetMissed; it is then run to
// the end of the WAL, which is the same point. A copy whose WAL ends before
// consistency still fails: PostgreSQL refuses to open it.
func (r *run) startRestoredCopy(ctx context.Context, inst *pgbin.Instance, conf scratchConf, owner *pgbin.User) (int, error) {
	conf.Recover, conf.StopAtConsistency = true, true
	var port int
	start := func() error {
		return r.during(70, "scratch instance recovering", nil, func() error {
			var err error
			port, err = startScratch(ctx, inst, conf, owner)
			return err
		})
	}
	err := start()
	if err != nil && ctx.Err() == nil && logSays(inst.LogFile, recoveryTargetMissed) {
		r.progress(75, "the copy's WAL ends exactly at its consistent point; recovering to the end of its WAL instead", nil)
		conf.StopAtConsistency = false
		err = start()
	}
	return port, err
}

// clusterName is the scratch instance's cluster_name (process titles).
func clusterName(name string) string {
	s := "themis-" + name
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// makeDrillDir creates the drill's directory, private to the server's
// account (the socket lives there and the copy holds production data),
// with its socket directory and meta file, and keeps its marker fresh
// until the returned stop is called.
func makeDrillDir(p drillPaths, m drillMeta, env backupEnv) (stop func(), err error) {
	if err := os.MkdirAll(p.root, 0o755); err != nil {
		return nil, driver.Permanent(driver.KindMisconfigured, fmt.Errorf("scratch_dir: %w", err))
	}
	if err := env.user.MkdirOwned(p.dir, 0o700); err != nil {
		return nil, driver.Permanent(driver.KindMisconfigured, fmt.Errorf("scratch_dir: %w", err))
	}
	if err := privateSocketDir(m.SocketDir, env.user); err != nil {
		return nil, err
	}
	if err := writeDrillMeta(p, m); err != nil {
		return nil, err
	}
	return touchEvery(markerTouch, p.marker()), nil
}
