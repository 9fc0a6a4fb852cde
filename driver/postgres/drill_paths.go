package postgres

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
)

// drillName is driver.DrillName: the same names on every engine.
func drillName(drillID string) (string, error) { return driver.DrillName(drillID) }

// drillPaths are the directories of one drill on one target.
type drillPaths struct {
	name string // drill-<sanitised id>
	root string // the target's scratch directory (absolute); "" when none is configured
	dir  string // <root>/<name>
	data string // <dir>/data
}

func (p drillPaths) marker() string { return filepath.Join(p.dir, scratchMarker) }

func drillPathsOf(t driver.Target, drillID string) (drillPaths, error) {
	name, err := drillName(drillID)
	if err != nil {
		return drillPaths{}, err
	}
	p := drillPaths{name: name}
	if t.ScratchDir == "" && t.BackupDir == "" {
		return p, nil
	}
	if p.root, err = filepath.Abs(scratchRoot(t)); err != nil {
		return drillPaths{}, driver.Permanentf(driver.KindMisconfigured, "target %s: scratch_dir: %v", t.Name, err)
	}
	p.dir = filepath.Join(p.root, name)
	p.data = filepath.Join(p.dir, basebackupSubdir)
	// Belt and braces: nothing the drill creates or removes lies outside
	// the scratch directory.
	if rel, err := filepath.Rel(p.root, p.dir); err != nil || rel == "." || !filepath.IsLocal(rel) {
		return drillPaths{}, driver.Permanentf(driver.KindInvalidInput, "drill %q: path %s escapes %s", drillID, p.dir, p.root)
	}
	return p, nil
}

func (p drillPaths) need(t driver.Target) error {
	if p.root == "" {
		return driver.Permanentf(driver.KindMisconfigured, "target %s has neither scratch_dir nor backup_dir: the drill restores into a scratch directory", t.Name)
	}
	return nil
}

// socketDir is the directory of the scratch server's socket, its only
// listener: the drill's directory when a socket path in it fits, else
// <tmp>/thm-drill-<hash of the drill's directory>. Either is private to the
// server's account (see privateSocketDir).
func (p drillPaths) socketDir() string {
	return drillSocketDir(p.dir)
}

// drillSocketDir is socketDir of the drill directory dir (absolute).
func drillSocketDir(dir string) string {
	if len(dir) <= maxSocketDir {
		return dir
	}
	sum := sha256.Sum256([]byte(dir))
	return filepath.Join(os.TempDir(), drillSocketPrefix+hex.EncodeToString(sum[:8]))
}

// removeDrillSocketDir removes the socket directory of the drill directory
// dir when it lies outside dir (a directory of its own in <tmp>).
func removeDrillSocketDir(dir string) error {
	sock := drillSocketDir(dir)
	if sock == dir {
		return nil
	}
	if err := os.RemoveAll(sock); err != nil {
		return fmt.Errorf("remove socket directory %s: %w", sock, err)
	}
	return nil
}

// privateSocketDir makes dir (creating it when missing) a directory that
// only owner (nil: this process's account) and root may enter, for a
// server socket that pg_hba.conf trusts. A directory someone else made or
// can enter is refused, not used.
func privateSocketDir(dir string, owner *pgbin.User) error {
	if len(dir) > maxSocketDir {
		return driver.Permanentf(driver.KindMisconfigured, "socket directory %s is too long for a Unix socket path", dir)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	uid := uint32(os.Geteuid())
	if owner != nil {
		uid = owner.UID
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || (st.Uid != uid && st.Uid != 0) {
		return fmt.Errorf("socket directory %s exists and is not this drill's (not a directory, or owned by someone else): refusing to use it", dir)
	}
	return owner.MkdirOwned(dir, 0o700) // mode 0700, owned by the server's account
}
