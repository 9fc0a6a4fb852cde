package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
)

// Marker files identify directories this driver made, so clean-up never
// touches anything else.
const (
	backupMarker  = "themis-backup.json"
	scratchMarker = "themis-scratch.json"
	scratchPrefix = "themis-restore-"
	// staleAfter: a scratch directory or unfinished backup whose marker has
	// not been touched for this long belongs to a run that died.
	staleAfter = time.Hour
	// markerTouch is how often a running backup or restore touches its marker.
	markerTouch = time.Minute
)

// Backup states in the marker.
const (
	backupInProgress = "in_progress"
	backupTaken      = "taken"
	backupVerified   = "verified"
	backupFailed     = "failed"
)

// backupMeta is the backup marker's content.
type backupMeta struct {
	Target           string           `json:"target"`
	Method           string           `json:"method"`
	State            string           `json:"state"`
	StartedAt        time.Time        `json:"started_at"`
	TakenAt          time.Time        `json:"taken_at,omitempty"`
	Database         string           `json:"database"`
	Superuser        string           `json:"superuser"`
	ServerVersionNum int              `json:"server_version_num"`
	Encoding         string           `json:"encoding,omitempty"`
	MaxPrepared      int              `json:"max_prepared_transactions,omitempty"`
	SourceCounts     map[string]int64 `json:"source_counts,omitempty"`
	Tolerance        map[string]int64 `json:"tolerance,omitempty"`
	ExactCounts      bool             `json:"exact_counts"`
	Error            string           `json:"error,omitempty"`
}

func readMeta(dir string) (backupMeta, error) {
	var m backupMeta
	b, err := os.ReadFile(filepath.Join(dir, backupMarker))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(b, &m)
}

func writeMeta(dir string, m backupMeta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, backupMarker+".tmp")
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, backupMarker))
}

// touchEvery updates the modification time of paths every interval until
// the returned stop is called, so stale-file clean-up leaves them alone.
func touchEvery(interval time.Duration, paths ...string) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				now := time.Now()
				for _, p := range paths {
					_ = os.Chtimes(p, now, now)
				}
			}
		}
	}()
	return func() { close(done) }
}

// copyTree copies src to dst: directories, regular files and symlinks (as
// symlinks), keeping permission bits, then gives everything to owner.
func copyTree(ctx context.Context, src, dst string, owner *pgbin.User) error {
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			return copyFile(p, target, info.Mode().Perm())
		}
		return nil // sockets, pipes: nothing a data directory needs
	})
	if err != nil {
		return err
	}
	return owner.Chown(dst)
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// dirSize is the total size of the regular files under dir.
func DirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// safeName turns a target name into a directory name.
func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 || strings.Trim(b.String(), ".") == "" {
		return "target"
	}
	return b.String()
}

// isDrillDir reports whether dir holds a DR drill's marker.
func isDrillDir(dir string) bool {
	_, err := readDrillMeta(drillPaths{dir: dir})
	return err == nil
}

// backupRoot is where a target's backups live, as an absolute path (the
// server binaries run in another working directory).
func backupRoot(t driver.Target) string { return absPath(filepath.Join(t.BackupDir, safeName(t.Name))) }

// absPath is path made absolute from the working directory (unchanged if
// that cannot be read).
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// scratchRoot is where a target's throwaway restores live.
func scratchRoot(t driver.Target) string {
	if t.ScratchDir != "" {
		return absPath(t.ScratchDir)
	}
	return absPath(filepath.Join(t.BackupDir, "scratch"))
}

// cleanStaleFiles removes this driver's leftovers for the target: scratch
// restore directories whose marker is older than staleAfter, DR drill
// directories whose marker is older than drillStaleAfter (stopping a
// server still running in either) and backups that never finished (marker
// in_progress and stale). Verified and failed backups are left to the
// keep_backups pruning of backup_verification.
func (r *run) cleanStaleFiles(ctx context.Context) ([]string, error) {
	t := r.target()
	if t.BackupDir == "" && t.ScratchDir == "" {
		return nil, nil
	}
	var removed []string
	olderThan := func(marker string, age time.Duration) bool {
		st, err := os.Stat(marker)
		return err == nil && time.Since(st.ModTime()) > age
	}
	stale := func(marker string) bool { return olderThan(marker, staleAfter) }
	if entries, err := os.ReadDir(scratchRoot(t)); err == nil {
		for _, e := range entries {
			dir := filepath.Join(scratchRoot(t), e.Name())
			if !e.IsDir() {
				continue
			}
			drill := false
			switch {
			case strings.HasPrefix(e.Name(), scratchPrefix) && stale(filepath.Join(dir, scratchMarker)):
			case strings.HasPrefix(e.Name(), drillDirPrefix) && isDrillDir(dir) && olderThan(filepath.Join(dir, scratchMarker), drillStaleAfter):
				drill = true
			default:
				continue
			}
			if r.dry() {
				r.planStatement(withPlanNote(ctx, "stale scratch directory", nil), "remove "+dir)
				removed = append(removed, dir)
				continue
			}
			if _, err := stopScratchServer(ctx, nil, filepath.Join(dir, basebackupSubdir)); err != nil {
				return removed, fmt.Errorf("stop the server of stale scratch %s: %w", dir, err)
			}
			if err := os.RemoveAll(dir); err != nil {
				return removed, fmt.Errorf("remove stale scratch %s: %w", dir, err)
			}
			removed = append(removed, dir)
			if abs, err := filepath.Abs(dir); drill && err == nil {
				if err := removeDrillSocketDir(abs); err != nil {
					return removed, err
				}
			}
		}
	}
	if t.BackupDir != "" {
		if entries, err := os.ReadDir(backupRoot(t)); err == nil {
			for _, e := range entries {
				dir := filepath.Join(backupRoot(t), e.Name())
				m, err := readMeta(dir)
				if err != nil || m.State != backupInProgress || !stale(filepath.Join(dir, backupMarker)) {
					continue
				}
				if r.dry() {
					r.planStatement(withPlanNote(ctx, "unfinished backup", nil), "remove "+dir)
					removed = append(removed, dir)
					continue
				}
				if err := os.RemoveAll(dir); err != nil {
					return removed, fmt.Errorf("remove unfinished backup %s: %w", dir, err)
				}
				removed = append(removed, dir)
			}
		}
	}
	sort.Strings(removed)
	return removed, ctx.Err()
}

// pruneBackups keeps the newest keep verified backups of the target and
// removes every backup older than the oldest of them (failed or unfinished
// ones included). Backup directory names start with a UTC timestamp, so
// name order is age order.
func pruneBackups(root string, keep int) ([]string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(root, e.Name(), backupMarker)); err == nil {
				dirs = append(dirs, e.Name())
			}
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	verified := 0
	var removed []string
	for _, name := range dirs {
		dir := filepath.Join(root, name)
		if verified >= keep {
			if err := os.RemoveAll(dir); err != nil {
				return removed, err
			}
			removed = append(removed, dir)
			continue
		}
		if m, err := readMeta(dir); err == nil && m.State == backupVerified {
			verified++
		}
	}
	return removed, nil
}
