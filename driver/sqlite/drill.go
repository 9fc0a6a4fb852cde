package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// The DR drill on SQLite. SQLite keeps no WAL archive, so "restore the
// latest backup" means: once the canary writer has stopped (the simulated
// failure instant), take a fresh backup of the live file with the code path
// of backup_verification (VACUUM INTO a .partial, verify, rename) into the
// backup directory as <target>-drill-<id>.db, record it in the history
// store, and copy it into <scratch_dir>/drill-<id>/restored.db. The restored
// copy is a plain file nothing else uses: the "scratch instance". The only
// write the drill makes to production is the canary table.

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
	backupDir   string // the target's backup directory
	backup      string // <backupDir>/<target>-drill-<id>.db
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

// needDirs fails with Misconfigured unless the target has both a backup and
// a scratch directory, which a restore needs.
func (p drillPaths) needDirs(t driver.Target) error {
	if p.backupDir == "" {
		return driver.Permanentf(driver.KindMisconfigured, "target %s has no backup_dir: the drill restores from a backup written there", t.Name)
	}
	if p.scratchRoot == "" {
		return driver.Permanentf(driver.KindMisconfigured, "target %s has no scratch_dir", t.Name)
	}
	return nil
}

// strictlyInside reports whether path lies below root (root itself excluded).
func strictlyInside(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != "." && filepath.IsLocal(rel)
}

// DrillPreflight implements driver.Driller: the database file exists and
// passes PRAGMA quick_check, the backup and scratch directories exist (they
// are created) and the scratch file system has room for the restore.
func (d *Driver) DrillPreflight(ctx context.Context, t driver.Target, h driver.History) (driver.DrillPreflight, error) {
	var out driver.DrillPreflight
	db, err := d.open(ctx, t, d.opts.BusyTimeout)
	if err != nil {
		return out, d.classify(ctx, err)
	}
	defer db.Close()
	problems, err := integrityPragma(ctx, db, "quick_check", "")
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
	if err := p.needDirs(t); err != nil {
		return out, err
	}
	for _, dir := range []string{p.backupDir, p.scratchRoot} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return out, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	out.ScratchDir = p.scratchRoot

	usage, err := readDiskUsage(t.DSN)
	if err != nil {
		return out, err
	}
	size := usage.File + usage.WAL
	// One copy in the backup directory, one in the scratch directory.
	out.NeededBytes = 2 * size
	scratchFree, scratchDev, err := freeSpace(p.scratchRoot)
	if err != nil {
		return out, err
	}
	out.ScratchFreeBytes = scratchFree
	backupFree, backupDev, err := freeSpace(p.backupDir)
	if err != nil {
		return out, err
	}
	space := fmt.Sprintf("needs %s (the backup and the restored copy of %s of database + WAL); %s free in the scratch directory",
		humanBytes(out.NeededBytes), humanBytes(size), humanBytes(scratchFree))
	if scratchDev == backupDev {
		if scratchFree < out.NeededBytes {
			return out, driver.Permanentf(driver.KindMisconfigured,
				"target %s: not enough space for the drill in %s: %s free, %s needed (backup + restored copy on the same file system)",
				t.Name, p.scratchRoot, humanBytes(scratchFree), humanBytes(out.NeededBytes))
		}
	} else {
		space += fmt.Sprintf(", %s in the backup directory (another file system)", humanBytes(backupFree))
		if scratchFree < size || backupFree < size {
			return out, driver.Permanentf(driver.KindMisconfigured,
				"target %s: not enough space for the drill: %s free for the restored copy in %s, %s for the backup in %s; %s needed in each",
				t.Name, humanBytes(scratchFree), p.scratchRoot, humanBytes(backupFree), p.backupDir, humanBytes(size))
		}
	}

	out.Source = fmt.Sprintf("latest backup file: a VACUUM INTO backup of %s taken and verified at the failure instant into %s (SQLite keeps no WAL archive)",
		t.Name, p.backupDir)
	newest := "no history store configured: the drill's backup will not be recorded"
	if h != nil {
		rec, ok, err := h.LatestBackup(ctx, t.Name)
		switch {
		case err != nil:
			newest = fmt.Sprintf("history store unavailable (%v)", err)
		case !ok:
			newest = "no verified backup on record yet"
		default:
			newest = fmt.Sprintf("newest verified backup on record: %s (%s, taken %s)",
				rec.Path, humanBytes(rec.Bytes), rec.TakenAt.UTC().Format(time.RFC3339))
			if _, err := os.Stat(rec.Path); err != nil {
				newest += ", file no longer present"
			}
		}
	}
	out.Notes = fmt.Sprintf("quick_check ok; %s; %s", newest, space)
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
	db, err := d.open(ctx, t, d.opts.BusyTimeout)
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
	db, err := d.open(ctx, t, d.opts.BusyTimeout)
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

// DrillRestore implements driver.Driller. It takes (or, on a retry, reuses)
// the drill's verified backup of the live file and copies it into the
// drill's scratch directory. A restored copy left by an earlier attempt
// that opens is returned as it is.
func (d *Driver) DrillRestore(ctx context.Context, t driver.Target, h driver.History, req driver.DrillRestoreRequest, progress driver.ProgressFunc) (driver.Scratch, error) {
	drillID := req.DrillID
	p, err := pathsOf(t, drillID)
	if err != nil {
		return driver.Scratch{}, err
	}
	if err := p.needDirs(t); err != nil {
		return driver.Scratch{}, err
	}
	scratch := driver.Scratch{
		DrillID: drillID, Dir: p.dir, Location: "sqlite file " + p.restored, RestoredFrom: p.backup,
	}
	if d.opensReadOnly(ctx, p.restored) {
		if progress != nil {
			progress(driver.Progress{Pct: 100, Note: "restored copy already in place"})
		}
		return scratch, nil
	}
	if err := ctx.Err(); err != nil {
		return driver.Scratch{}, err
	}

	db, err := d.open(ctx, t, d.opts.BusyTimeout)
	if err != nil {
		return driver.Scratch{}, d.classify(ctx, err)
	}
	defer db.Close()
	r := &run{
		d:          d,
		req:        driver.Request{Target: t, Task: domain.TaskDisasterRecoveryDrill, History: h, Progress: progress},
		db:         db,
		progressFn: progress,
	}
	if err := os.MkdirAll(p.backupDir, 0o750); err != nil {
		return driver.Scratch{}, fmt.Errorf("create backup dir: %w", err)
	}
	if err := d.drillBackup(ctx, r, h, p, drillID); err != nil {
		return driver.Scratch{}, d.classify(ctx, err)
	}
	if err := r.pause(ctx); err != nil {
		return driver.Scratch{}, err
	}
	if err := os.MkdirAll(p.dir, 0o750); err != nil {
		return driver.Scratch{}, fmt.Errorf("create drill scratch dir: %w", err)
	}
	r.progress(96, "copy the backup into "+p.dir, nil)
	if err := copyFile(ctx, p.backup, p.restored, func(done, total int64) {
		pct := 96.0
		if total > 0 {
			pct += 3 * float64(done) / float64(total)
		}
		r.progress(pct, fmt.Sprintf("copy the backup into the scratch directory: %s of %s", humanBytes(done), humanBytes(total)), nil)
	}); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return driver.Scratch{}, ctxErr
		}
		return driver.Scratch{}, fmt.Errorf("restore into scratch: %w", err)
	}
	if !d.opensReadOnly(ctx, p.restored) {
		if err := ctx.Err(); err != nil {
			return driver.Scratch{}, err
		}
		return driver.Scratch{}, fmt.Errorf("restored copy %s does not open", p.restored)
	}
	r.progress(100, "restored into "+p.restored, nil)
	return scratch, nil
}

// drillBackup makes sure p.backup is a verified backup of the live database
// recorded in the history store: a backup left by an earlier attempt is
// reused (it is the closest to the failure instant), otherwise one is taken
// and verified as backup_verification does.
func (d *Driver) drillBackup(ctx context.Context, r *run, h driver.History, p drillPaths, drillID string) error {
	t := r.target()
	if fi, err := os.Stat(p.backup); err == nil {
		r.progress(95, "reuse the drill's verified backup "+filepath.Base(p.backup), nil)
		if h == nil {
			return nil
		}
		// The attempt that renamed it may have died before recording it.
		if rec, ok, err := h.LatestBackup(ctx, t.Name); err == nil && ok && rec.Path == p.backup {
			return nil
		}
		return h.RecordBackup(ctx, driver.BackupRecord{
			Target: t.Name, Path: p.backup, Method: "drill", TakenAt: fi.ModTime().UTC(), Verified: true, Bytes: fi.Size(),
			Details: map[string]any{"path": p.backup, "mechanism": "VACUUM INTO", "drill_id": drillID, "resumed": true},
		})
	}
	takenAt := time.Now().UTC().Truncate(time.Millisecond)
	cp, err := takeBackupAs(ctx, r, p.backup, takenAt)
	if err != nil {
		return err
	}
	details := map[string]any{
		"path":        cp.Final,
		"mechanism":   "VACUUM INTO",
		"taken_at_ms": cp.TakenAtMs,
		"tables":      len(cp.SourceRows),
		"source_rows": cp.SourceRows,
		"drill_id":    drillID,
	}
	_, err = commitBackup(ctx, r, h, &cp, "drill", true, details)
	return err
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

	found, err := integrityPragma(ctx, db, "integrity_check", "")
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
