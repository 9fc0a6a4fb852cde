package postgres

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
)

// The backup_restore strategy (docs/DR_DRILL.md, "PostgreSQL strategies"):
// the newest verified base backup (drill_strategy.go) is copied into the
// drill's directory and started in archive recovery that reads the
// target's WAL archive (restore_command copies from Target.WALArchiveDir;
// the instance never writes there: archive_mode is off) up to the failure
// instant (recovery_target_time, inclusive), then promotes. Before
// anything is copied, the WAL chain from the backup's start segment to the
// server's current one is checked (walchain.go): a gap fails the restore
// for good, naming the missing range. Without a WAL archive the copy is
// recovered to its consistent point only, so the RPO is the backup's age.

// failureTimeFormat is recovery_target_time's format (UTC, microseconds).
const failureTimeFormat = "2006-01-02 15:04:05.999999+00"

// restoreFromBackup does DrillRestore's work by backup_restore in the
// (absent) drill directory.
func (r *run) restoreFromBackup(ctx context.Context, p drillPaths, drillID string, env backupEnv, plan drillPlan, failureAt time.Time) (driver.Scratch, error) {
	t := r.target()
	bb := plan.Backup
	m, err := r.newDrillMeta(ctx, p, drillID, env, plan)
	if err != nil {
		return driver.Scratch{}, err
	}
	m.Source, m.BackupID, m.BackupAt = "base backup "+bb.ID, bb.ID, bb.TakenAt.UTC()
	m.MaxPrepared = max(m.MaxPrepared, bb.Meta.MaxPrepared)

	var notes []string
	archived := 0 // segments the WAL-chain check found in the archive
	if t.WALArchiveDir != "" {
		r.progress(2, "checking the WAL chain from base backup "+bb.ID+" in "+t.WALArchiveDir, nil)
		wc, err := r.checkWALChain(ctx, t.WALArchiveDir, bb.Data)
		if err != nil {
			return driver.Scratch{}, err
		}
		if wc.Status == walChainFailure {
			return driver.Scratch{}, driver.Permanentf(driver.KindVerificationFailed,
				"backup_restore of %s from base backup %s cannot replay to the failure instant: %s", t.Name, bb.ID, wc.summary())
		}
		notes = append(notes, wc.summary())
		archived = wc.Present
	}

	stopTouch, err := makeDrillDir(p, m, env)
	if err != nil {
		return driver.Scratch{}, err
	}
	defer stopTouch()

	note := "copying base backup " + bb.String()
	r.progress(5, note, nil)
	copyStart := time.Now()
	err = r.during(5, note, nil, func() error {
		if err := copyTree(ctx, bb.Data, p.data, env.user); err != nil {
			return err
		}
		return relinkTablespaces(ctx, p.data, p.dir, env.user)
	})
	if err != nil {
		if ctx.Err() != nil {
			return driver.Scratch{}, ctx.Err()
		}
		return driver.Scratch{}, fmt.Errorf("copy base backup %s into the scratch directory: %w", bb.ID, err)
	}
	m.CopyMs = time.Since(copyStart).Milliseconds()
	m.RestoredBytes = DirSize(p.data)
	removeRecoveryFiles(p.data)

	conf := scratchConf{SocketDir: m.SocketDir, MaxPrepared: m.MaxPrepared, ClusterName: clusterName(p.name), Recover: true}
	target := "its consistent point (no wal_archive_dir: the RPO is the backup's age)"
	if t.WALArchiveDir != "" {
		conf.RestoreCommand = restoreCommand(t.WALArchiveDir)
		conf.RecoveryTargetTime = failureAt.UTC().Format(failureTimeFormat)
		target = "the failure instant " + conf.RecoveryTargetTime
	} else {
		conf.StopAtConsistency = true
	}
	m.RestoredFrom = "base backup " + bb.String()
	if t.WALArchiveDir != "" {
		m.RestoredFrom += " + archived WAL from " + t.WALArchiveDir
	}
	m.RestoredFrom += ", recovered to " + target

	r.progress(60, "starting the scratch instance (replaying to "+target+", then promoting)", nil)
	inst := &pgbin.Instance{Runner: pgbin.Runner{BinDir: env.binDir, User: env.user}, DataDir: p.data,
		LogFile: filepath.Join(p.dir, "server.log"), Host: m.SocketDir, StartTimeout: 6 * time.Hour}
	replayStart := time.Now()
	start := func(c scratchConf) error {
		return r.during(60, "scratch instance replaying WAL", nil, func() error {
			var err error
			m.Port, err = startScratch(ctx, inst, c, env.user)
			return err
		})
	}
	err = start(conf)
	if err != nil && ctx.Err() == nil && logSays(inst.LogFile, recoveryTargetMissed) {
		// No transaction in the archive committed after the failure
		// instant: everything archived is before it, so replaying all of
		// it is the same point.
		r.progress(75, "no transaction after the failure instant is archived yet; replaying the whole archive instead", nil)
		conf.StopAtConsistency, conf.RecoveryTargetTime = false, ""
		notes = append(notes, "no transaction committed after the failure instant was archived: every archived segment was replayed")
		err = start(conf)
	}
	if err != nil {
		if ctx.Err() != nil {
			return driver.Scratch{}, ctx.Err()
		}
		return driver.Scratch{}, fmt.Errorf("the restored base backup %s does not start: %w", bb.ID, err)
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
	if b, err := os.ReadFile(inst.LogFile); err == nil {
		rl := parseRecoveryLog(string(b))
		if archived > 0 && len(rl.Restored) == 0 {
			// The archive holds the backup's own segments, yet none was
			// restored: restore_command cannot read it.
			why := "no restore_command error logged"
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, "cp: ") {
					why = strings.TrimSpace(line)
					break
				}
			}
			return driver.Scratch{}, driver.Permanentf(driver.KindMisconfigured,
				"backup_restore of %s: the scratch instance restored no segment from wal_archive_dir %s, which holds %d it needs (can OS user %s read it?): %s",
				t.Name, t.WALArchiveDir, archived, osUserName(env.user), why)
		}
		if rl.Stopped != "" {
			notes = append(notes, rl.Stopped)
		}
	}
	if len(notes) > 0 {
		m.RestoredFrom += " (" + strings.Join(notes, "; ") + ")"
	}
	return r.finishDrill(ctx, p, m, plan, inst.LogFile, replayStart)
}

// restoreCommand copies a segment from the archive directory dir (a path
// quoted for sh, its % doubled for the server's placeholders).
func restoreCommand(dir string) string {
	q := "'" + strings.ReplaceAll(strings.ReplaceAll(dir, "%", "%%"), "'", `'\''`) + "'"
	return "cp " + q + "/%f %p"
}
