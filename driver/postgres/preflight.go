package postgres

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
)

// scratchCheck is what scratchPreflight found.
type scratchCheck struct {
	Root        string // absolute scratch directory
	FreeBytes   int64
	NeededBytes int64 // scratchSpaceFactor × DBBytes
	DBBytes     int64 // size of the databases this role can connect to
	Unreadable  int   // databases without CONNECT privilege, not counted
}

// space describes the check for a report.
func (c scratchCheck) space() string {
	s := fmt.Sprintf("needs %s (%.1f × %s of databases), %s free in %s",
		bytesHuman(c.NeededBytes), scratchSpaceFactor, bytesHuman(c.DBBytes), bytesHuman(c.FreeBytes), c.Root)
	if c.Unreadable > 0 {
		s += fmt.Sprintf(" (%d database(s) without CONNECT privilege not counted)", c.Unreadable)
	}
	return s
}

// scratchPreflight is the check that the drill's restore and
// backup_verification's restore (what names it) both run before they
// start: the scratch directory exists (it is created), this worker can
// create directories in it, the OS user that runs the server binaries can
// reach it (search permission on it and every parent), and its file system
// has scratchSpaceFactor × the size of the cluster's databases free. Every
// failure is a permanent Misconfigured error naming the directory (and the
// OS user): a retry cannot fix it.
func (r *run) scratchPreflight(ctx context.Context, user *pgbin.User, what string) (scratchCheck, error) {
	t := r.target()
	var c scratchCheck
	if t.ScratchDir == "" && t.BackupDir == "" {
		return c, driver.Permanentf(driver.KindMisconfigured, "target %s has neither scratch_dir nor backup_dir: %s restores into a scratch directory", t.Name, what)
	}
	root, err := filepath.Abs(scratchRoot(t))
	if err != nil {
		return c, driver.Permanentf(driver.KindMisconfigured, "target %s: scratch_dir: %v", t.Name, err)
	}
	c.Root = root
	if err := os.MkdirAll(root, 0o755); err != nil {
		return c, driver.Permanentf(driver.KindMisconfigured, "target %s: cannot create the scratch directory %s for %s: %v", t.Name, root, what, err)
	}
	probe, err := os.MkdirTemp(root, ".preflight-")
	if err != nil {
		return c, driver.Permanentf(driver.KindMisconfigured, "target %s: the scratch directory %s is not writable by this worker (%s needs it): %v", t.Name, root, what, err)
	}
	_ = os.Remove(probe)
	if err := traversable(user, root); err != nil {
		return c, driver.Permanentf(driver.KindMisconfigured,
			"target %s: the scratch directory %s is not reachable by OS user %s, which runs the PostgreSQL binaries for %s: %v; "+
				"give that user search permission on every directory of the path, or set scratch_dir elsewhere",
			t.Name, root, osUserName(user), what, err)
	}
	free := freeSpace
	if r.d.freeSpace != nil {
		free = r.d.freeSpace
	}
	if c.FreeBytes, err = free(root); err != nil {
		return c, driver.Permanentf(driver.KindMisconfigured, "target %s: %v", t.Name, err)
	}
	err = r.pool.QueryRow(ctx, `
		SELECT coalesce(sum(pg_database_size(oid)) FILTER (WHERE has_database_privilege(oid, 'CONNECT')), 0)::int8,
		       count(*) FILTER (WHERE NOT has_database_privilege(oid, 'CONNECT'))
		FROM pg_database`).Scan(&c.DBBytes, &c.Unreadable)
	if err != nil {
		return c, classify(ctx, err, "read database sizes")
	}
	c.NeededBytes = int64(float64(c.DBBytes) * scratchSpaceFactor)
	if c.FreeBytes < c.NeededBytes {
		return c, driver.Permanentf(driver.KindMisconfigured, "target %s: not enough space for %s in %s: %s free, %s needed (%.1f × %s of databases)",
			t.Name, what, root, bytesHuman(c.FreeBytes), bytesHuman(c.NeededBytes), scratchSpaceFactor, bytesHuman(c.DBBytes))
	}
	return c, nil
}

// freeSpace returns the bytes available to unprivileged users on the file
// system of dir.
func freeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// traversable reports whether account u may reach dir (execute permission
// on dir and every parent); nil u (this process's own account) is assumed
// able to.
func traversable(u *pgbin.User, dir string) error {
	if u == nil {
		return nil
	}
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok {
			mode := fi.Mode().Perm()
			okX := mode&0o001 != 0 ||
				(st.Uid == u.UID && mode&0o100 != 0) ||
				(inGroup(u, st.Gid) && mode&0o010 != 0)
			if !okX {
				return fmt.Errorf("%s is not searchable by OS user %s", p, u.Name)
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func inGroup(u *pgbin.User, gid uint32) bool {
	if u.GID == gid {
		return true
	}
	for _, g := range u.Groups {
		if g == gid {
			return true
		}
	}
	return false
}
