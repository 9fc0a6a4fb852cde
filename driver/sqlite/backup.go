package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/themis-maintenance/themis/driver"
)

// Backup file naming: <target>-<UTC timestamp>.db in the backup directory;
// the copy is written as <name>.partial and renamed only once verified, so
// every file with the final name is a verified backup.
const (
	backupTimeLayout = "20060102T150405.000Z"
	partialSuffix    = ".partial"
)

// backupCheckpoint is the resume point of backup_verification: once the
// copy is written (Phase "copied"), a retried attempt verifies that copy
// instead of taking a new one.
type backupCheckpoint struct {
	Phase       string                `json:"phase"`
	Partial     string                `json:"partial"`
	Final       string                `json:"final"`
	TakenAtMs   int64                 `json:"taken_at_ms"`
	SourceRows  map[string]int64      `json:"source_rows"`
	IntegrityOK bool                  `json:"integrity_ok"`
	Verify      loopCheckpoint[int64] `json:"verify"`
}

func (cp *backupCheckpoint) snapshot() backupCheckpoint {
	out := *cp
	out.Verify = cp.Verify.snapshot()
	out.SourceRows = make(map[string]int64, len(cp.SourceRows))
	for k, v := range cp.SourceRows {
		out.SourceRows[k] = v
	}
	return out
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// backupPrefix is the file-name prefix of target's backups.
func backupPrefix(target string) string {
	return unsafeFileChars.ReplaceAllString(target, "_") + "-"
}

// backupVerification takes a backup with VACUUM INTO while writers are held
// off (so the source's row counts match the copy), verifies the copy with
// integrity_check and per-table row counts, records it in the history
// store, and keeps the keep_backups newest verified backups.
func backupVerification(ctx context.Context, r *run) (driver.Result, error) {
	if m := r.opts().String("method"); m != "native" {
		return driver.Result{}, driver.Permanentf(driver.KindInvalidInput,
			"backup method %q is not available for sqlite targets; use native (VACUUM INTO)", m)
	}
	keep := int(r.opts().Int("keep_backups"))
	hist, err := r.requireHistory()
	if err != nil {
		return driver.Result{}, err
	}
	t := r.target()
	if t.BackupDir == "" {
		return driver.Result{}, driver.Permanentf(driver.KindMisconfigured, "target %s has no backup_dir", t.Name)
	}
	dir, err := filepath.Abs(t.BackupDir)
	if err != nil {
		return driver.Result{}, driver.Permanentf(driver.KindMisconfigured, "target %s: backup_dir: %v", t.Name, err)
	}
	if !r.req.DryRun {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return driver.Result{}, fmt.Errorf("create backup dir: %w", err)
		}
	}
	// The backup is one unit of the budget: it does not start once the
	// window has closed.
	if !r.budget.admitWhole() {
		return r.budget.notStarted("backup"), nil
	}

	var cp backupCheckpoint
	resumed := driver.DecodeCheckpoint(r.req.Checkpoint, &cp) && cp.Phase == "copied" &&
		filepath.Dir(cp.Partial) == dir && strings.HasSuffix(cp.Partial, partialSuffix) &&
		strings.HasPrefix(filepath.Base(cp.Partial), backupPrefix(t.Name))
	alreadyVerified := false
	if resumed {
		if _, err := os.Stat(cp.Partial); err != nil {
			// Renamed before the previous attempt died: the copy verified.
			_, ferr := os.Stat(cp.Final)
			alreadyVerified = ferr == nil
			resumed = alreadyVerified
		}
	}
	if !resumed {
		cp, err = takeBackup(ctx, r, dir)
		if err != nil {
			return driver.Result{}, err
		}
	}
	if r.req.DryRun {
		return planBackup(r, dir, keep, cp)
	}
	details := map[string]any{
		"path":        cp.Final,
		"mechanism":   "VACUUM INTO",
		"taken_at_ms": cp.TakenAtMs,
		"tables":      len(cp.SourceRows),
		"source_rows": cp.SourceRows,
		"resumed":     resumed,
	}
	fi, err := commitBackup(ctx, r, hist, &cp, "native", !alreadyVerified, details)
	if err != nil {
		return driver.Result{}, err
	}
	removed, err := pruneBackups(dir, t.Name, keep)
	if err != nil {
		return driver.Result{}, err
	}
	var total int64
	for _, n := range cp.SourceRows {
		total += n
	}
	details["bytes"] = fi.Size()
	details["verified"] = true
	details["keep_backups"] = keep
	details["pruned"] = removed
	return driver.Result{
		Summary: fmt.Sprintf("backup %s (%s) taken with VACUUM INTO and verified: integrity_check ok, %d rows in %d tables match the source; %d older backups pruned (keeping %d)",
			filepath.Base(cp.Final), humanBytes(fi.Size()), total, len(cp.SourceRows), len(removed), keep),
		Details: details,
	}, nil
}

// commitBackup verifies the copy cp wrote (unless verify is false: a
// previous attempt verified and renamed it already), renames it to its final
// name and records it in hist (skipped when hist is nil) with method and
// details. A copy that does not verify is removed, recorded as unverified,
// and reported as a permanent VerificationFailed error.
func commitBackup(ctx context.Context, r *run, hist driver.History, cp *backupCheckpoint, method string, verify bool, details map[string]any) (os.FileInfo, error) {
	t := r.target()
	takenAt := time.UnixMilli(cp.TakenAtMs).UTC()
	if verify {
		problems, err := verifyBackup(ctx, r, cp)
		if err != nil {
			return nil, err
		}
		if len(problems) > 0 {
			_ = os.Remove(cp.Partial)
			details["problems"] = problems
			if hist != nil {
				rec := driver.BackupRecord{Target: t.Name, Path: cp.Final, Method: method, TakenAt: takenAt, Verified: false, Details: details}
				if err := hist.RecordBackup(ctx, rec); err != nil {
					return nil, fmt.Errorf("record failed backup: %w", err)
				}
			}
			return nil, driver.Permanentf(driver.KindVerificationFailed,
				"backup taken at %s did not verify and was removed: %s", takenAt.Format(time.RFC3339), strings.Join(problems, "; "))
		}
		if err := os.Rename(cp.Partial, cp.Final); err != nil {
			return nil, fmt.Errorf("rename verified backup: %w", err)
		}
		syncDir(filepath.Dir(cp.Final))
	}
	fi, err := os.Stat(cp.Final)
	if err != nil {
		return nil, fmt.Errorf("stat backup: %w", err)
	}
	if hist != nil {
		r.progress(95, "record backup", nil)
		if err := hist.RecordBackup(ctx, driver.BackupRecord{
			Target: t.Name, Path: cp.Final, Method: method, TakenAt: takenAt, Verified: true, Bytes: fi.Size(), Details: details,
		}); err != nil {
			return nil, fmt.Errorf("record backup: %w", err)
		}
	}
	return fi, nil
}

// takeBackup copies the database into dir with VACUUM INTO. One connection
// holds a write lock (BEGIN IMMEDIATE) and counts the rows of every table
// while another copies: readers go on, writers wait, so the counts are
// exactly those of the copy.
func takeBackup(ctx context.Context, r *run, dir string) (backupCheckpoint, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	final := ""
	for {
		final = filepath.Join(dir, backupPrefix(r.target().Name)+now.Format(backupTimeLayout)+".db")
		if _, err := os.Lstat(final); errors.Is(err, os.ErrNotExist) {
			break // never overwrite a backup taken in the same millisecond
		}
		now = now.Add(time.Millisecond)
	}
	return takeBackupAs(ctx, r, final, now)
}

// takeBackupAs is takeBackup into final (written as final.partial), stamped
// takenAt. The drill names its backup after the drill instead of the time.
func takeBackupAs(ctx context.Context, r *run, final string, takenAt time.Time) (backupCheckpoint, error) {
	cp := backupCheckpoint{Partial: final + partialSuffix, Final: final, TakenAtMs: takenAt.UnixMilli(), SourceRows: map[string]int64{}}
	if !r.req.DryRun {
		_ = os.Remove(cp.Partial) // VACUUM INTO refuses an existing file
	}

	lock, err := r.db.Conn(ctx)
	if err != nil {
		return cp, fmt.Errorf("backup: connection: %w", err)
	}
	defer lock.Close()
	onLock := func(ctx context.Context, stmt string) error {
		_, err := lock.ExecContext(ctx, stmt)
		return err
	}
	r.progress(2, "hold off writers (BEGIN IMMEDIATE)", nil)
	err = r.maintain(ctx, driver.PlannedStatement{
		Statement: `BEGIN IMMEDIATE`,
		Reason:    "holds off writers (readers go on) while the rows are counted and the copy is written, so the counts are the copy's",
	}, onLock)
	if err != nil {
		return cp, fmt.Errorf("backup: begin immediate: %w", err)
	}
	defer func() {
		_ = r.maintain(context.WithoutCancel(ctx), driver.PlannedStatement{
			Statement: `ROLLBACK`, Reason: "releases the write lock once the copy is written",
		}, onLock)
	}()

	rels, err := listRelations(ctx, r.db)
	if err != nil {
		return cp, err
	}
	tables := userTables(rels)
	for i, table := range tables {
		if err := ctx.Err(); err != nil {
			return cp, err
		}
		var n int64
		err := r.maintain(ctx, driver.PlannedStatement{
			Object:    table,
			Statement: `SELECT count(*) FROM ` + quoteIdent(table),
			Reason:    "the source's row count at backup time, compared with the copy's",
		}, func(ctx context.Context, stmt string) error {
			return lock.QueryRowContext(ctx, stmt).Scan(&n)
		})
		if err != nil {
			return cp, fmt.Errorf("backup: count rows of %s: %w", table, err)
		}
		cp.SourceRows[table] = n
		r.progress(2+8*float64(i+1)/float64(len(tables)), "count rows of "+table, nil)
	}
	r.progress(10, "VACUUM INTO "+filepath.Base(cp.Partial), nil)
	err = r.during(10, "VACUUM INTO "+filepath.Base(cp.Partial), nil, func() error {
		return r.maintain(ctx, driver.PlannedStatement{
			Statement: `VACUUM INTO ?`,
			Reason: fmt.Sprintf("writes the copy to %s, renamed %s once integrity_check and the row counts verify it",
				cp.Partial, filepath.Base(cp.Final)),
			Figures: map[string]any{"path": cp.Partial},
		}, func(ctx context.Context, stmt string) error {
			_, err := r.db.ExecContext(ctx, stmt, cp.Partial)
			return err
		})
	})
	if err != nil {
		_ = os.Remove(cp.Partial)
		return cp, fmt.Errorf("backup: vacuum into: %w", err)
	}
	if r.req.DryRun {
		return cp, nil
	}
	if err := syncFile(cp.Partial); err != nil {
		return cp, fmt.Errorf("backup: sync copy: %w", err)
	}
	cp.Phase = "copied"
	r.progress(50, "copy written", cp.snapshot())
	return cp, nil
}

// planBackup is the result of a dry run of backup_verification: the
// statements takeBackup planned, and the verified backups the prune would
// remove once the new one is kept.
func planBackup(r *run, dir string, keep int, cp backupCheckpoint) (driver.Result, error) {
	existing, err := listBackups(dir, r.target().Name)
	if err != nil {
		return driver.Result{}, err
	}
	// The new backup is the newest: keep-1 existing ones stay.
	prune := []string{}
	if keep-1 < len(existing) {
		prune = existing[max(keep-1, 0):]
	}
	return driver.Result{
		Summary: dryRunSummary("back up %d tables with VACUUM INTO %s, verify the copy (integrity_check, row counts), then prune %d older backups (keeping %d)",
			len(cp.SourceRows), filepath.Base(cp.Final), len(prune), keep),
		Details: map[string]any{
			"path":         cp.Final,
			"mechanism":    "VACUUM INTO",
			"tables":       len(cp.SourceRows),
			"keep_backups": keep,
			"would_prune":  prune,
			"backups_now":  len(existing),
		},
	}, nil
}

// verifyBackup opens the copy read-only and checks it: integrity_check, the
// same tables as the source and, table by table (resumable), the same row
// counts. It returns the problems found; err is for failures to check.
func verifyBackup(ctx context.Context, r *run, cp *backupCheckpoint) ([]string, error) {
	copyDB, err := sql.Open("sqlite", fileURI(cp.Partial, "ro", r.d.opts.BusyTimeout)+"&immutable=1")
	if err != nil {
		return nil, fmt.Errorf("open backup copy: %w", err)
	}
	defer copyDB.Close()
	var problems []string
	if !cp.IntegrityOK {
		var found []string
		err := r.during(50, "integrity_check of the copy", cp.snapshot(), func() error {
			var err error
			found, err = checkPragma(ctx, copyDB, "integrity_check", "")
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			// The copy cannot even be read: that is a verification failure.
			return []string{fmt.Sprintf("integrity_check of the copy failed: %v", err)}, nil
		}
		if len(found) > 0 {
			return append(problems, prefixAll("copy: ", found)...), nil
		}
		cp.IntegrityOK = true
		r.progress(60, "integrity_check of the copy ok", cp.snapshot())
	}
	copyRels, err := listRelations(ctx, copyDB)
	if err != nil {
		return []string{fmt.Sprintf("read schema of the copy: %v", err)}, nil
	}
	inCopy := map[string]bool{}
	for _, tbl := range userTables(copyRels) {
		inCopy[tbl] = true
	}
	tables := make([]string, 0, len(cp.SourceRows))
	for tbl := range cp.SourceRows {
		tables = append(tables, tbl)
		if !inCopy[tbl] {
			problems = append(problems, fmt.Sprintf("table %s missing from the copy", tbl))
		}
	}
	for tbl := range inCopy {
		if _, ok := cp.SourceRows[tbl]; !ok {
			problems = append(problems, fmt.Sprintf("table %s in the copy but not in the source", tbl))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return problems, nil
	}
	sort.Strings(tables)
	wrap := func(v loopCheckpoint[int64]) any {
		s := cp.snapshot()
		s.Verify = v
		return s
	}
	err = loop(ctx, r, tables, &cp.Verify, 60, 90, "verify rows of", wrap, func(ctx context.Context, table string) (int64, error) {
		return countRows(ctx, copyDB, table)
	})
	if err != nil {
		return nil, err
	}
	for _, tbl := range tables {
		if got, want := cp.Verify.Results[tbl], cp.SourceRows[tbl]; got != want {
			problems = append(problems, fmt.Sprintf("table %s has %d rows in the copy, %d in the source at backup time", tbl, got, want))
		}
	}
	return problems, nil
}

// listBackups returns the names of target's verified backups in dir,
// newest first (names sort by their UTC timestamp); none when dir does not
// exist.
func listBackups(dir, target string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	prefix := backupPrefix(target)
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(n, prefix) && strings.HasSuffix(n, ".db") {
			if _, err := time.Parse(backupTimeLayout, strings.TrimSuffix(strings.TrimPrefix(n, prefix), ".db")); err == nil {
				names = append(names, n)
			}
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	return names, nil
}

// pruneBackups removes all but the keep newest verified backups of target in
// dir and returns the names removed.
func pruneBackups(dir, target string, keep int) ([]string, error) {
	names, err := listBackups(dir, target)
	if err != nil {
		return nil, err
	}
	removed := []string{}
	for i, n := range names {
		if i < keep {
			continue
		}
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, fmt.Errorf("prune backup %s: %w", n, err)
		}
		removed = append(removed, n)
	}
	return removed, nil
}

func prefixAll(prefix string, msgs []string) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = prefix + m
	}
	return out
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// syncDir makes a rename durable; errors are ignored (not every file system
// supports syncing a directory).
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		f.Close()
	}
}
