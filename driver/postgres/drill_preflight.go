package postgres

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/themis-maintenance/themis/driver"
)

// DrillPreflight implements driver.Driller: the target is reachable and a
// primary, its WAL and archiving settings are noted, the strategy is
// chosen as DrillRestore would without a requested one (planDrill) and its
// source checked: backup_restore needs a verified base backup, a readable
// wal_archive_dir when one is set and a WAL chain without a gap from that
// backup; replica_clone a standby from ReplicaDSNs that can serve
// pg_basebackup, else the primary. The binaries must match the server,
// and the scratch directory have scratchSpaceFactor × the size of the
// cluster's databases free. Read-only.
func (d *Driver) DrillPreflight(ctx context.Context, t driver.Target, h driver.History) (driver.DrillPreflight, error) {
	var out driver.DrillPreflight
	r, err := d.drillRun(ctx, t, nil)
	if err != nil {
		return out, err
	}
	if err := r.drillNeedsPrimary(); err != nil {
		return out, err
	}
	p, err := drillPathsOf(t, "preflight") // any id: only the root counts
	if err != nil {
		return out, err
	}
	if err := p.need(t); err != nil {
		return out, err
	}
	out.Healthy = true
	var notes []string
	notes = append(notes, fmt.Sprintf("primary %s (PostgreSQL %s), database %s", dsnName(t.DSN), r.srv.Version, r.srv.Database))

	var walLevel, archiveMode, archiveCommand string
	var failed int64
	var lastArchived *string
	var lastArchivedAge *float64
	err = r.pool.QueryRow(ctx, `
		SELECT current_setting('wal_level'), current_setting('archive_mode'), current_setting('archive_command'),
		       a.failed_count, a.last_archived_wal, extract(epoch FROM now() - a.last_archived_time)::float8
		FROM pg_stat_archiver a`).Scan(&walLevel, &archiveMode, &archiveCommand, &failed, &lastArchived, &lastArchivedAge)
	if err != nil {
		return out, classify(ctx, err, "read WAL and archive settings")
	}
	wal := fmt.Sprintf("wal_level %s, archive_mode %s", walLevel, archiveMode)
	switch {
	case archiveMode == "off":
		wal += " (no WAL archive: backup_restore can only recover a base backup to its consistent point)"
	case archiveCommand == "" || archiveCommand == "(disabled)":
		wal += ", archive_command not set"
	case lastArchived != nil && lastArchivedAge != nil:
		wal += fmt.Sprintf(", last archived %s %.0f s ago, %d failure(s)", *lastArchived, *lastArchivedAge, failed)
	default:
		wal += fmt.Sprintf(", nothing archived yet, %d failure(s)", failed)
	}
	notes = append(notes, wal)

	plan, err := planDrill(ctx, t, h, "", time.Time{})
	if err != nil {
		return out, err
	}
	notes = append(notes, fmt.Sprintf("strategy %s (%s)", plan.Strategy, plan.Why))
	notes = append(notes, plan.Notes...)
	var how string
	if plan.Strategy == driver.StrategyBackupRestore {
		bb := plan.Backup
		out.Source = "verified base backup " + bb.String()
		how = "a copy of that base backup"
		if t.WALArchiveDir == "" {
			out.Source += " recovered to its consistent point (no wal_archive_dir: the RPO is the backup's age)"
			how += " recovered to its consistent point"
		} else {
			if fi, err := os.Stat(t.WALArchiveDir); err != nil || !fi.IsDir() {
				return out, driver.Permanentf(driver.KindMisconfigured, "target %s: wal_archive_dir %s is not a readable directory (%v)", t.Name, t.WALArchiveDir, err)
			}
			out.Source += " + archived WAL from " + t.WALArchiveDir + " replayed to the failure instant"
			how += " with the archived WAL replayed to the failure instant (recovery_target_time)"
			wc, err := r.checkWALChain(ctx, t.WALArchiveDir, bb.Data)
			if err != nil {
				return out, err
			}
			if wc.Status == walChainFailure {
				return out, driver.Permanentf(driver.KindVerificationFailed, "target %s: backup_restore from base backup %s cannot replay to the failure instant: %s", t.Name, bb.ID, wc.summary())
			}
			notes = append(notes, wc.summary())
		}
	} else {
		src, srcNotes, err := r.chooseSource(ctx)
		if err != nil {
			return out, err
		}
		out.Source = "fresh pg_basebackup -X stream of " + src.String()
		if src.Role == "primary" && len(t.ReplicaDSNs) == 0 {
			srcNotes = append(srcNotes, "no replica_dsns configured: the primary is the restore source")
		}
		notes = append(notes, srcNotes...)
		how = out.Source + ", recovered to the backup's consistent point"
	}

	env, err := r.backupEnv(ctx, methodBasebackup)
	if err != nil {
		return out, err
	}

	sc, err := r.scratchPreflight(ctx, env.user, "the drill")
	out.ScratchDir, out.ScratchFreeBytes, out.NeededBytes = sc.Root, sc.FreeBytes, sc.NeededBytes
	if err != nil {
		return out, err
	}
	space := sc.space()
	notes = append(notes, fmt.Sprintf(
		"plan: canary rows in %s on the primary; after the simulated failure, %s into %s/<drill>/data with PostgreSQL %d binaries in %s, "+
			"promoted, started with archiving off, no upstream and no TCP listener "+
			"(reachable only through a Unix socket in a directory private to OS user %s); "+
			"verified with amcheck, row counts and the newest canary row; then stopped and removed",
		canaryTable, how, p.root, env.major, env.binDir, osUserName(env.user)), space)
	out.Notes = strings.Join(notes, "; ")
	return out, nil
}
