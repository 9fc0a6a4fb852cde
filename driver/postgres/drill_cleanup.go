package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
)

// drillRunner is a runner for the drill's binaries, or nil when none can
// be found. The binaries come from the target's configured bin dir (else
// the one found for the data directory's major version), never from a
// path recorded in a file: the marker and postmaster.pid are only read for
// what they say about the instance, not for what to run.
func drillRunner(t driver.Target, p drillPaths) *pgbin.Runner {
	binDir, err := configuredBinDir(t, p.data)
	if err != nil {
		return nil
	}
	u, err := pgbin.ResolveUser(t.OSUser)
	if err != nil {
		return nil
	}
	return &pgbin.Runner{BinDir: binDir, User: u}
}

// configuredBinDir returns the target's bin_dir, or the directory found for
// the major version in dataDir's PG_VERSION (a number only: it picks a
// version under the standard install root, never a path).
func configuredBinDir(t driver.Target, dataDir string) (string, error) {
	major := 0
	if b, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 && n < 1000 {
			major = n
		}
	}
	return pgbin.FindBinDir(t.BinDir, major)
}

// removeDrillDir stops whatever runs on the drill's data directory and
// removes the drill's directory. It never touches anything outside it: a
// symlink in its place is removed, not followed.
func removeDrillDir(ctx context.Context, runner *pgbin.Runner, p drillPaths) ([]string, error) {
	var removed []string
	fi, err := os.Lstat(p.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	where := p.dir
	if m, err := readDrillMeta(p); err == nil && m.Port > 0 {
		where = fmt.Sprintf("postgres on port %d (%s)", m.Port, p.dir)
	}
	if fi.IsDir() {
		did, err := stopScratchServer(ctx, runner, p.data)
		for _, s := range did {
			removed = append(removed, "scratch instance "+where+": "+s)
		}
		if err != nil {
			return removed, fmt.Errorf("stop the scratch instance %s: %w", where, err)
		}
	}
	if err := os.RemoveAll(p.dir); err != nil {
		return removed, fmt.Errorf("remove %s: %w", p.dir, err)
	}
	if _, err := os.Lstat(p.dir); !errors.Is(err, os.ErrNotExist) {
		return removed, fmt.Errorf("%s still exists after removal", p.dir)
	}
	removed = append(removed, "scratch directory "+p.dir)
	if err := removeDrillSocketDir(p.dir); err != nil {
		return removed, err
	}
	return removed, nil
}

// DrillCleanup implements driver.Driller: it stops the drill's scratch
// instance (pg_ctl stop -m immediate; a postmaster that pg_ctl cannot stop
// is signalled only when /proc shows it is a PostgreSQL process working on
// the drill's data directory; leftover children and pg_basebackup processes
// likewise) and removes the drill's directory. Nothing outside the
// target's scratch directory is touched. It succeeds when nothing is left
// and lists what it removed.
func (d *Driver) DrillCleanup(ctx context.Context, t driver.Target, drillID string) (driver.DrillCleanupReport, error) {
	rep := driver.DrillCleanupReport{Removed: []string{}}
	p, err := drillPathsOf(t, drillID)
	if err != nil {
		return rep, err
	}
	if p.dir == "" {
		return rep, nil // no scratch directory: nothing can be there
	}
	unlock, err := lockDrill(ctx, p.dir)
	if err != nil {
		return rep, err
	}
	defer unlock()
	removed, err := removeDrillDir(ctx, drillRunner(t, p), p)
	rep.Removed = append(rep.Removed, removed...)
	return rep, err
}
