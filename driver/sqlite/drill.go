package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/themis-maintenance/themis/driver"
)

// The DR drill on SQLite. SQLite keeps no WAL archive, so the only
// strategy is backup_restore: the restore copies the latest verified backup
// on record in the history store (backup_verification writes them, VACUUM
// INTO then verified, into the backup directory) taken at or before the
// failure instant into <scratch_dir>/drill-<id>/restored.db. It never
// takes a copy of its own: a disaster would leave only the backups made
// before it, so the drill's RPO is the age of that backup at the failure
// instant (docs/DR_DRILL.md). The restored copy is a plain file nothing
// else uses: the "scratch instance". The only write the drill makes to
// production is the canary table.

var _ driver.Driller = (*Driver)(nil)

// canaryTable is the drill's canary table in the live database.
const canaryTable = "themis_drill_canary"

const canaryDDL = `CREATE TABLE IF NOT EXISTS ` + canaryTable + ` (
	drill_id TEXT NOT NULL,
	seq INTEGER NOT NULL,
	written_at_ns INTEGER NOT NULL,
	PRIMARY KEY (drill_id, seq))`

const (
	restoredName     = "restored.db"
	restoreRecord    = "restore.json"
	drillDirPrefix   = driver.DrillDirPrefix
	copyChunk        = 1 << 20
	copyReportPeriod = time.Second
)

// drillName is driver.DrillName: the same names on every engine.
func drillName(drillID string) (string, error) { return driver.DrillName(drillID) }

// drillPaths are the files and directories of one drill on one target.
// Empty strings mean the target has no such directory configured.
type drillPaths struct {
	scratchRoot string // the target's scratch directory
	dir         string // <scratchRoot>/drill-<id>
	restored    string // <dir>/restored.db
	record      string // <dir>/restore.json: what the restore restored
	backupDir   string // the target's backup directory
	// backup is <backupDir>/<target>-drill-<id>.db, the backup drills
	// took of their own before they restored backup_verification's: the
	// clean-up still removes one left by such a drill.
	backup string
}

func pathsOf(t driver.Target, drillID string) (drillPaths, error) {
	name, err := drillName(drillID)
	if err != nil {
		return drillPaths{}, err
	}
	var p drillPaths
	if p.scratchRoot, err = scratchDir(t); err != nil {
		return drillPaths{}, err
	}
	if p.scratchRoot != "" {
		p.dir = filepath.Join(p.scratchRoot, name)
		p.restored = filepath.Join(p.dir, restoredName)
		p.record = filepath.Join(p.dir, restoreRecord)
	}
	if t.BackupDir != "" {
		if p.backupDir, err = filepath.Abs(t.BackupDir); err != nil {
			return drillPaths{}, driver.Permanentf(driver.KindMisconfigured, "target %s: backup_dir: %v", t.Name, err)
		}
		p.backup = filepath.Join(p.backupDir, backupPrefix(t.Name)+name+".db")
	}
	// Belt and braces: nothing the drill creates or deletes lies outside
	// the scratch and backup directories.
	for _, c := range []struct{ root, path string }{{p.scratchRoot, p.dir}, {p.backupDir, p.backup}} {
		if c.path != "" && !strictlyInside(c.root, c.path) {
			return drillPaths{}, driver.Permanentf(driver.KindInvalidInput, "drill %q: path %s escapes %s", drillID, c.path, c.root)
		}
	}
	return p, nil
}

// needScratch fails with Misconfigured unless the target has a scratch
// directory (its own, or one under backup_dir), which a restore needs.
func (p drillPaths) needScratch(t driver.Target) error {
	if p.scratchRoot == "" {
		return driver.Permanentf(driver.KindMisconfigured, "target %s has neither scratch_dir nor backup_dir: the drill restores into a scratch directory", t.Name)
	}
	return nil
}

// drillStrategy is the strategy of a SQLite drill: backup_restore, the
// only one (SQLite has no replica to clone).
func drillStrategy(req driver.DrillRestoreRequest, t driver.Target) (string, error) {
	s := driver.DrillStrategyFor(req, t, driver.StrategyBackupRestore)
	switch s {
	case driver.StrategyBackupRestore:
		return s, nil
	case driver.StrategyReplicaClone:
		return "", driver.Permanentf(driver.KindNotSupported,
			"drill strategy %q is not supported by driver sqlite (target %s): SQLite has no replica to clone; use %q, which restores the latest verified backup",
			s, t.Name, driver.StrategyBackupRestore)
	}
	return "", driver.Permanentf(driver.KindInvalidInput, "target %s: unknown drill strategy %q (driver sqlite supports %q)", t.Name, s, driver.StrategyBackupRestore)
}

// restoreSource returns the backup a drill of t restores: the newest
// verified backup on record taken at or before failureAt (zero: the
// newest), whose file is still there. None is a Misconfigured error that
// says to run backup_verification.
func restoreSource(ctx context.Context, t driver.Target, h driver.History, failureAt time.Time) (driver.BackupRecord, os.FileInfo, error) {
	if h == nil {
		return driver.BackupRecord{}, nil, driver.Permanentf(driver.KindMisconfigured,
			"target %s: no history store: the drill restores the latest verified backup recorded there by backup_verification", t.Name)
	}
	rec, ok, err := driver.LatestBackupBefore(ctx, h, t.Name, failureAt)
	if err != nil {
		return rec, nil, fmt.Errorf("latest verified backup of %s: %w", t.Name, err)
	}
	if !ok {
		when := ""
		if !failureAt.IsZero() {
			when = " taken before the failure instant " + failureAt.UTC().Format(time.RFC3339Nano)
		}
		return rec, nil, driver.Permanentf(driver.KindMisconfigured,
			"target %s has no verified backup on record%s: run backup_verification first (the drill restores the latest verified backup, never a copy made for the drill)",
			t.Name, when)
	}
	fi, err := os.Stat(rec.Path)
	if err != nil || !fi.Mode().IsRegular() {
		return rec, nil, driver.Permanentf(driver.KindMisconfigured,
			"target %s: the latest verified backup %s (taken %s) is not a readable file (%v): run backup_verification again",
			t.Name, rec.Path, rec.TakenAt.UTC().Format(time.RFC3339), err)
	}
	return rec, fi, nil
}

// strictlyInside reports whether path lies below root (root itself excluded).
func strictlyInside(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != "." && filepath.IsLocal(rel)
}

// DrillPreflight implements driver.Driller: the strategy is backup_restore
// (t.DrillStrategy, the drill's or the target's), the database file exists
// and passes PRAGMA quick_check, a verified backup is on record and its file
// is there, the scratch directory exists (it is created) and has room for a
// copy of that backup.
func (d *Driver) DrillPreflight(ctx context.Context, t driver.Target, h driver.History) (driver.DrillPreflight, error) {
	var out driver.DrillPreflight
	strategy, err := drillStrategy(driver.DrillRestoreRequest{}, t)
	if err != nil {
		return out, err
	}
	db, err := d.open(ctx, t, "rw", d.opts.BusyTimeout)
	if err != nil {
		return out, d.classify(ctx, err)
	}
	defer db.Close()
	problems, err := checkPragma(ctx, db, "quick_check", "")
	if err != nil {
		return out, d.classify(ctx, err)
	}
	if len(problems) > 0 {
		roots, _ := rootPages(ctx, db)
		return out, integrityFailure("drill preflight quick_check", problems, nil, relationsIn(problems, roots))
	}
	out.Healthy = true
	p, err := pathsOf(t, "preflight") // any id: only the directories count
	if err != nil {
		return out, err
	}
	if err := p.needScratch(t); err != nil {
		return out, err
	}
	rec, fi, err := restoreSource(ctx, t, h, time.Time{})
	if err != nil {
		return out, err
	}
	if err := os.MkdirAll(p.scratchRoot, 0o750); err != nil {
		return out, fmt.Errorf("create %s: %w", p.scratchRoot, err)
	}
	out.ScratchDir = p.scratchRoot
	out.NeededBytes = fi.Size()
	scratchFree, _, err := freeSpace(p.scratchRoot)
	if err != nil {
		return out, err
	}
	out.ScratchFreeBytes = scratchFree
	if scratchFree < out.NeededBytes {
		return out, driver.Permanentf(driver.KindMisconfigured,
			"target %s: not enough space for the drill in %s: %s free, %s needed (a copy of the backup %s)",
			t.Name, p.scratchRoot, humanBytes(scratchFree), humanBytes(out.NeededBytes), filepath.Base(rec.Path))
	}
	out.Source = fmt.Sprintf("%s: the latest verified backup %s (%s, taken %s by %s); the restore takes the newest verified backup taken before the failure instant",
		strategy, rec.Path, humanBytes(fi.Size()), rec.TakenAt.UTC().Format(time.RFC3339), rec.Method)
	out.Notes = fmt.Sprintf("quick_check ok; needs %s in the scratch directory, %s free", humanBytes(out.NeededBytes), humanBytes(scratchFree))
	return out, nil
}

// freeSpace returns the bytes available to this process on the file system
// of dir, and that file system's device number.
func freeSpace(dir string) (int64, uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("free space of %s: %w", dir, err)
	}
	var dev uint64
	if fi, err := os.Stat(dir); err == nil {
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
			dev = uint64(sys.Dev)
		}
	}
	return int64(st.Bavail) * int64(st.Bsize), dev, nil
}

// immediate runs fn in a BEGIN IMMEDIATE transaction on one connection of db.
func immediate(ctx context.Context, db *sql.DB, fn func(conn *sql.Conn) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return err
	}
	rollback := func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`) }
	if err := fn(conn); err != nil {
		rollback()
		return err
	}
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		rollback()
		return err
	}
	return nil
}

// CanaryWrite implements driver.Driller: canary row (drillID, seq) stamped
// at, in the live database, table created on first use. Writing the same
// seq again replaces the row.
func (d *Driver) CanaryWrite(ctx context.Context, t driver.Target, drillID string, seq int64, at time.Time) error {
	if drillID == "" {
		return driver.Permanentf(driver.KindInvalidInput, "drill id is empty")
	}
	db, err := d.open(ctx, t, "rw", d.opts.BusyTimeout)
	if err != nil {
		return d.classify(ctx, err)
	}
	defer db.Close()
	err = immediate(ctx, db, func(conn *sql.Conn) error {
		if _, err := conn.ExecContext(ctx, canaryDDL); err != nil {
			return fmt.Errorf("create canary table: %w", err)
		}
		if _, err := conn.ExecContext(ctx, `INSERT OR REPLACE INTO `+canaryTable+` (drill_id, seq, written_at_ns) VALUES (?, ?, ?)`,
			drillID, seq, at.UnixNano()); err != nil {
			return fmt.Errorf("insert canary row %d: %w", seq, err)
		}
		return nil
	})
	return d.classify(ctx, err)
}

// tableExists reports whether the database q reads has table name.
func tableExists(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, name string) (bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, name).Scan(&n); err != nil {
		return false, fmt.Errorf("look for table %s: %w", name, err)
	}
	return n > 0, nil
}

// CanaryCleanup implements driver.Driller: it deletes the drill's canary
// rows and drops the canary table once no drill has rows in it. A missing
// table is fine.
func (d *Driver) CanaryCleanup(ctx context.Context, t driver.Target, drillID string) error {
	if drillID == "" {
		return driver.Permanentf(driver.KindInvalidInput, "drill id is empty")
	}
	db, err := d.open(ctx, t, "rw", d.opts.BusyTimeout)
	if err != nil {
		return d.classify(ctx, err)
	}
	defer db.Close()
	err = immediate(ctx, db, func(conn *sql.Conn) error {
		ok, err := tableExists(ctx, conn, canaryTable)
		if err != nil || !ok {
			return err
		}
		if _, err := conn.ExecContext(ctx, `DELETE FROM `+canaryTable+` WHERE drill_id = ?`, drillID); err != nil {
			return fmt.Errorf("delete canary rows: %w", err)
		}
		var left int64
		if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM `+canaryTable).Scan(&left); err != nil {
			return fmt.Errorf("count canary rows: %w", err)
		}
		if left > 0 {
			return nil // another drill's canary is still running
		}
		if _, err := conn.ExecContext(ctx, `DROP TABLE `+canaryTable); err != nil {
			return fmt.Errorf("drop canary table: %w", err)
		}
		return nil
	})
	return d.classify(ctx, err)
}

// DrillRestore implements driver.Driller: it copies the latest verified
// backup taken at or before req.FailureAt into the drill's scratch
// directory and records what it restored next to it (restore.json), so a
// retry finds a finished restore and returns it as it was.
func (d *Driver) DrillRestore(ctx context.Context, t driver.Target, h driver.History, req driver.DrillRestoreRequest, progress driver.ProgressFunc) (driver.Scratch, error) {
	report := func(pct float64, note string) {
		if progress != nil {
			progress(driver.Progress{Pct: pct, Note: note})
		}
	}
	strategy, err := drillStrategy(req, t)
	if err != nil {
		return driver.Scratch{}, err
	}
	p, err := pathsOf(t, req.DrillID)
	if err != nil {
		return driver.Scratch{}, err
	}
	if err := p.needScratch(t); err != nil {
		return driver.Scratch{}, err
	}
	if s, ok := d.restoredBefore(ctx, p, req.DrillID); ok {
		report(100, "restored copy already in place (from "+s.BackupID+")")
		return s, nil
	}
	if err := ctx.Err(); err != nil {
		return driver.Scratch{}, err
	}
	rec, _, err := restoreSource(ctx, t, h, req.FailureAt)
	if err != nil {
		return driver.Scratch{}, err
	}
	if err := os.MkdirAll(p.dir, 0o750); err != nil {
		return driver.Scratch{}, fmt.Errorf("create drill scratch dir: %w", err)
	}
	backupID := filepath.Base(rec.Path)
	report(0, "copy the verified backup "+backupID+" into "+p.dir)
	began := time.Now()
	var copied int64
	err = copyFile(ctx, rec.Path, p.restored, func(done, total int64) {
		copied = done
		pct := 0.0
		if total > 0 {
			pct = 99 * float64(done) / float64(total)
		}
		report(pct, fmt.Sprintf("copy the backup %s into the scratch directory: %s of %s", backupID, humanBytes(done), humanBytes(total)))
	})
	copyMs := time.Since(began).Milliseconds()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return driver.Scratch{}, ctxErr
		}
		return driver.Scratch{}, fmt.Errorf("restore %s into scratch: %w", rec.Path, err)
	}
	if !d.opensReadOnly(ctx, p.restored) {
		if err := ctx.Err(); err != nil {
			return driver.Scratch{}, err
		}
		return driver.Scratch{}, driver.Permanentf(driver.KindVerificationFailed, "restored copy %s of backup %s does not open", p.restored, rec.Path)
	}
	s := driver.Scratch{
		DrillID: req.DrillID, Dir: p.dir, Location: "sqlite file " + p.restored, RestoredFrom: rec.Path,
		Strategy: strategy, BackupID: backupID, BackupAt: rec.TakenAt.UTC(),
		RestoredBytes: copied, CopyMs: max(copyMs, 1),
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return driver.Scratch{}, fmt.Errorf("encode restore record: %w", err)
	}
	if err := os.WriteFile(p.record, raw, 0o600); err != nil {
		return driver.Scratch{}, fmt.Errorf("write restore record: %w", err)
	}
	report(100, fmt.Sprintf("restored %s (%s, taken %s) into %s", backupID, humanBytes(copied), s.BackupAt.Format(time.RFC3339), p.restored))
	return s, nil
}

// restoredBefore returns what an earlier attempt of this drill restored
// when its restored copy and record are both in place and the copy opens.
func (d *Driver) restoredBefore(ctx context.Context, p drillPaths, drillID string) (driver.Scratch, bool) {
	raw, err := os.ReadFile(p.record)
	if err != nil {
		return driver.Scratch{}, false
	}
	var s driver.Scratch
	if json.Unmarshal(raw, &s) != nil || s.DrillID != drillID || !d.opensReadOnly(ctx, p.restored) {
		return driver.Scratch{}, false
	}
	s.Dir = p.dir
	return s, true
}

// opensReadOnly reports whether path is a database file that opens and
// whose schema reads.
func (d *Driver) opensReadOnly(ctx context.Context, path string) bool {
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	db, err := sql.Open("sqlite", fileURI(path, "ro", d.opts.BusyTimeout))
	if err != nil {
		return false
	}
	defer db.Close()
	var n int
	return db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&n) == nil
}

// copyFile copies src to dst through dst.partial (synced, then renamed), so
// dst exists only complete. It checks ctx between chunks and reports
// progress at most once a second.
func copyFile(ctx context.Context, src, dst string, report func(done, total int64)) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	tmp := dst + partialSuffix
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if out != nil {
			out.Close()
			_ = os.Remove(tmp)
		}
	}()
	buf := make([]byte, copyChunk)
	var done int64
	last := time.Now()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				return err
			}
			done += int64(n)
			if time.Since(last) >= copyReportPeriod {
				report(done, fi.Size())
				last = time.Now()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if err := out.Sync(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	out = nil
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(dst))
	report(done, fi.Size())
	return nil
}

// DrillVerify implements driver.Driller. It opens the drill's restored copy
// read-only and runs PRAGMA integrity_check, counts the tables and their
// rows (the canary table apart), reads the drill's canary rows and then
// times a SELECT 1. Damage found is reported with IntegrityOK false and the
// problems listed, not as an error.
func (d *Driver) DrillVerify(ctx context.Context, t driver.Target, s driver.Scratch) (driver.DrillVerification, error) {
	v := driver.DrillVerification{RowCounts: map[string]int64{}}
	p, err := pathsOf(t, s.DrillID)
	if err != nil {
		return v, err
	}
	if p.dir == "" || (s.Dir != "" && filepath.Clean(s.Dir) != p.dir) {
		return v, driver.Permanentf(driver.KindInvalidInput, "scratch %q is not the scratch directory of drill %s on %s", s.Dir, s.DrillID, t.Name)
	}
	if fi, err := os.Stat(p.restored); err != nil || !fi.Mode().IsRegular() {
		return v, driver.Permanentf(driver.KindVerificationFailed, "drill %s: no restored copy at %s (never restored, or cleaned up)", s.DrillID, p.restored)
	}
	db, err := sql.Open("sqlite", fileURI(p.restored, "ro", d.opts.BusyTimeout))
	if err != nil {
		return v, fmt.Errorf("open restored copy: %w", err)
	}
	defer db.Close()

	var problems []string
	// damaged turns corruption errors into problems; other errors (I/O,
	// cancellation) are returned.
	damaged := func(what string, err error) error {
		err = d.classify(ctx, err)
		var perm *driver.PermanentError
		if errors.As(err, &perm) && perm.Kind == driver.KindIntegrityViolation {
			problems = append(problems, fmt.Sprintf("%s: %v", what, err))
			return nil
		}
		return err
	}

	found, err := checkPragma(ctx, db, "integrity_check", "")
	if err != nil {
		if err := damaged("integrity_check", err); err != nil {
			return v, err
		}
	}
	problems = append(problems, found...)

	rels, err := listRelations(ctx, db)
	if err != nil {
		if err := damaged("read schema", err); err != nil {
			return v, err
		}
	}
	hasCanary := false
	for _, table := range userTables(rels) {
		if table == canaryTable {
			hasCanary = true
			continue
		}
		n, err := countRows(ctx, db, table)
		if err != nil {
			if err := damaged("count rows of "+table, err); err != nil {
				return v, err
			}
			continue
		}
		v.Tables++
		v.RowCounts[table] = n
	}
	if hasCanary {
		var newest sql.NullInt64
		err := db.QueryRowContext(ctx, `SELECT count(*), max(written_at_ns) FROM `+canaryTable+` WHERE drill_id = ?`, s.DrillID).
			Scan(&v.CanaryRows, &newest)
		if err != nil {
			if err := damaged("read canary rows", err); err != nil {
				return v, err
			}
		} else if newest.Valid {
			v.NewestCanaryAt = time.Unix(0, newest.Int64).UTC()
		}
	}

	var one int
	if err := db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		if err := damaged("SELECT 1", err); err != nil {
			return v, err
		}
	} else {
		v.ServingAt = time.Now()
	}
	v.Problems = problems
	v.IntegrityOK = len(problems) == 0
	return v, nil
}

// DrillCleanup implements driver.Driller: it removes the drill's scratch
// directory and its backup (and a partial one); what it removed is
// reported, the backup also in RemovedBackups so that its history record,
// which stays, stops counting as the latest verified backup. Nothing left
// is success.
func (d *Driver) DrillCleanup(ctx context.Context, t driver.Target, drillID string) (driver.DrillCleanupReport, error) {
	rep := driver.DrillCleanupReport{Removed: []string{}}
	p, err := pathsOf(t, drillID)
	if err != nil {
		return rep, err
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	if p.dir != "" {
		if _, err := os.Lstat(p.dir); err == nil {
			if !strictlyInside(p.scratchRoot, p.dir) {
				return rep, driver.Permanentf(driver.KindInvalidInput, "refusing to remove %s: outside %s", p.dir, p.scratchRoot)
			}
			if err := os.RemoveAll(p.dir); err != nil {
				return rep, fmt.Errorf("remove drill scratch dir: %w", err)
			}
			rep.Removed = append(rep.Removed, "scratch directory "+p.dir)
		} else if !errors.Is(err, os.ErrNotExist) {
			return rep, fmt.Errorf("drill scratch dir: %w", err)
		}
	}
	if p.backup != "" {
		for _, f := range []string{p.backup, p.backup + partialSuffix} {
			if !strictlyInside(p.backupDir, f) {
				return rep, driver.Permanentf(driver.KindInvalidInput, "refusing to remove %s: outside %s", f, p.backupDir)
			}
			err := os.Remove(f)
			switch {
			case err == nil:
				rep.Removed = append(rep.Removed, "backup file "+f)
				if f == p.backup {
					rep.RemovedBackups = append(rep.RemovedBackups, f)
				}
			case !errors.Is(err, os.ErrNotExist):
				return rep, fmt.Errorf("remove drill backup: %w", err)
			}
		}
		syncDir(p.backupDir)
	}
	return rep, nil
}
