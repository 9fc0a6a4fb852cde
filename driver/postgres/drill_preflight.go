package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/themis-maintenance/themis/driver"
)

// DrillPreflight implements driver.Driller: the target is reachable and a
// primary, its WAL and archiving settings are noted, a restore source is
// chosen (a standby from ReplicaDSNs when one can serve pg_basebackup,
// else the primary), the binaries match the server, and the scratch
// directory has scratchSpaceFactor × the size of the cluster's databases
// free. Read-only.
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
		wal += " (no WAL archive: the drill restores from a fresh base backup only)"
	case archiveCommand == "" || archiveCommand == "(disabled)":
		wal += ", archive_command not set"
	case lastArchived != nil && lastArchivedAge != nil:
		wal += fmt.Sprintf(", last archived %s %.0f s ago, %d failure(s)", *lastArchived, *lastArchivedAge, failed)
	default:
		wal += fmt.Sprintf(", nothing archived yet, %d failure(s)", failed)
	}
	notes = append(notes, wal)

	src, srcNotes, err := r.chooseSource(ctx)
	if err != nil {
		return out, err
	}
	out.Source = "fresh pg_basebackup -X stream of " + src.String()
	if src.Role == "primary" && len(t.ReplicaDSNs) == 0 {
		srcNotes = append(srcNotes, "no replica_dsns configured: the primary is the restore source")
	}
	notes = append(notes, srcNotes...)

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
			"recovered to the backup's consistent point and promoted, started with archiving off, no upstream and no TCP listener "+
			"(reachable only through a Unix socket in a directory private to OS user %s); "+
			"verified with amcheck, row counts and the newest canary row; then stopped and removed",
		canaryTable, out.Source, p.root, env.major, env.binDir, osUserName(env.user)), space)
	if h != nil {
		rec, ok, err := h.LatestBackup(ctx, t.Name)
		switch {
		case err != nil:
			notes = append(notes, fmt.Sprintf("history store unavailable (%v)", err))
		case ok:
			notes = append(notes, fmt.Sprintf("newest verified backup on record: %s (%s, taken %s); the drill takes a fresh one instead",
				rec.Path, rec.Method, rec.TakenAt.UTC().Format(time.RFC3339)))
		}
	}
	out.Notes = strings.Join(notes, "; ")
	return out, nil
}
