package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/themis-maintenance/themis/driver"
)

// Ages past which leftovers are stale: a partial backup is being written or
// verified by a running backup_verification for minutes, not an hour; a
// scratch restore of a drill lives for the drill, at most a day.
const (
	partialStaleAfter = time.Hour
	scratchStaleAfter = 24 * time.Hour
)

// orphanCleanup removes what failed operations of this driver left behind:
// partial backups (<target>-<ts>.db.partial) older than an hour in the
// backup directory, and entries of the scratch directory untouched for a
// day. It never touches the database, its -wal, -shm or -journal files (a
// hot journal is needed for recovery), or verified backups. Running it
// twice removes nothing the second time. It removes files, not rows: it
// has no units of work for a budget, and a dry run lists the files in
// Details["would_remove"] (its plan of statements is empty).
func orphanCleanup(ctx context.Context, r *run) (driver.Result, error) {
	t := r.target()
	now := time.Now()
	var removed []string
	var freed int64

	backupDir := ""
	if t.BackupDir != "" {
		d, err := filepath.Abs(t.BackupDir)
		if err != nil {
			return driver.Result{}, driver.Permanentf(driver.KindMisconfigured, "target %s: backup_dir: %v", t.Name, err)
		}
		backupDir = d
	}
	scratch, err := scratchDir(t)
	if err != nil {
		return driver.Result{}, err
	}

	if backupDir != "" {
		r.progress(5, "look for partial backups", nil)
		entries, err := readDirIfExists(backupDir)
		if err != nil {
			return driver.Result{}, err
		}
		prefix := backupPrefix(t.Name)
		for _, e := range entries {
			n := e.Name()
			if !e.Type().IsRegular() || !strings.HasPrefix(n, prefix) || !strings.HasSuffix(n, partialSuffix) {
				continue
			}
			info, err := e.Info()
			if err != nil || now.Sub(info.ModTime()) < partialStaleAfter {
				continue
			}
			if err := r.pause(ctx); err != nil {
				return driver.Result{}, err
			}
			if !r.req.DryRun {
				if err := os.Remove(filepath.Join(backupDir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
					return driver.Result{}, fmt.Errorf("remove partial backup %s: %w", n, err)
				}
			}
			removed = append(removed, filepath.Join(backupDir, n))
			freed += info.Size()
			r.progress(40, "removed partial backup "+n, nil)
		}
	}

	if scratch != "" {
		r.progress(50, "look for stale scratch entries", nil)
		entries, err := readDirIfExists(scratch)
		if err != nil {
			return driver.Result{}, err
		}
		for _, e := range entries {
			p := filepath.Join(scratch, e.Name())
			newest, size, err := newestModTime(p)
			if err != nil || now.Sub(newest) < scratchStaleAfter {
				continue
			}
			if err := r.pause(ctx); err != nil {
				return driver.Result{}, err
			}
			if !r.req.DryRun {
				if err := os.RemoveAll(p); err != nil {
					return driver.Result{}, fmt.Errorf("remove scratch entry %s: %w", e.Name(), err)
				}
			}
			removed = append(removed, p)
			freed += size
			r.progress(90, "removed scratch entry "+e.Name(), nil)
		}
	}

	summary := fmt.Sprintf("removed %d stale leftovers (%s): partial backups older than an hour, scratch entries untouched for a day",
		len(removed), humanBytes(freed))
	if len(removed) == 0 {
		summary = "nothing to remove: no partial backup older than an hour and no scratch entry untouched for a day"
	}
	if backupDir == "" && scratch == "" {
		summary = "nothing to clean: the target has neither a backup_dir nor a scratch_dir"
	}
	if removed == nil {
		removed = []string{}
	}
	removedKey := "removed"
	if r.req.DryRun {
		// Files, not statements: the plan stays empty and the details
		// name what a real run would remove.
		removedKey = "would_remove"
		summary = dryRunSummary("remove %d stale leftovers (%s): partial backups older than an hour, scratch entries untouched for a day", len(removed), humanBytes(freed))
	}
	return driver.Result{
		Summary: summary,
		Details: map[string]any{
			removedKey:      removed,
			"freed_bytes":   freed,
			"backup_dir":    backupDir,
			"scratch_dir":   scratch,
			"partial_stale": partialStaleAfter.String(),
			"scratch_stale": scratchStaleAfter.String(),
		},
	}, nil
}

// scratchDir returns the target's scratch directory (default
// <backup_dir>/scratch), refusing one that would contain the database or the
// backups: everything stale in it is deleted.
func scratchDir(t driver.Target) (string, error) {
	dir := t.ScratchDir
	if dir == "" {
		if t.BackupDir == "" {
			return "", nil
		}
		dir = filepath.Join(t.BackupDir, "scratch")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", driver.Permanentf(driver.KindMisconfigured, "target %s: scratch_dir: %v", t.Name, err)
	}
	dbPath := ""
	if f, err := parseDSN(t.DSN); err == nil {
		dbPath = f.Path
	}
	for _, keep := range []string{dbPath, t.BackupDir} {
		if keep == "" {
			continue
		}
		k, err := filepath.Abs(keep)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(abs, k); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "", driver.Permanentf(driver.KindMisconfigured,
				"target %s: scratch_dir contains the database or the backup directory; refusing to clean it", t.Name)
		}
	}
	return abs, nil
}

func readDirIfExists(dir string) ([]os.DirEntry, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", filepath.Base(dir), err)
	}
	return entries, nil
}

// newestModTime returns the latest modification time under p (p itself
// included) and the total size of its files.
func newestModTime(p string) (time.Time, int64, error) {
	var newest time.Time
	var size int64
	err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.ModTime().After(newest) {
			newest = info.ModTime()
		}
		if info.Mode().IsRegular() {
			size += info.Size()
		}
		return nil
	})
	return newest, size, err
}
