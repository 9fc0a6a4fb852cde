package pgbin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// EnvBinDir is the environment variable that overrides bin-dir discovery.
const EnvBinDir = "THEMIS_PG_BINDIR"

// debianRoot is where Debian and Ubuntu install one directory per major version.
const debianRoot = "/usr/lib/postgresql"

// FindBinDir returns the directory holding the PostgreSQL server binaries.
// In order: explicit when non-empty; $THEMIS_PG_BINDIR; for preferMajor > 0,
// /usr/lib/postgresql/<preferMajor>/bin; the newest /usr/lib/postgresql/*/bin;
// the directory of pg_ctl on PATH. The directory must contain pg_ctl.
func FindBinDir(explicit string, preferMajor int) (string, error) {
	check := func(dir, from string) (string, error) {
		if st, err := os.Stat(filepath.Join(dir, "pg_ctl")); err != nil || st.IsDir() {
			return "", fmt.Errorf("postgres bin dir %s (%s) has no pg_ctl", dir, from)
		}
		return dir, nil
	}
	if explicit != "" {
		return check(explicit, "configured")
	}
	if env := os.Getenv(EnvBinDir); env != "" {
		return check(env, EnvBinDir)
	}
	if preferMajor > 0 {
		if dir, err := check(filepath.Join(debianRoot, strconv.Itoa(preferMajor), "bin"), "server version"); err == nil {
			return dir, nil
		}
	}
	if entries, err := os.ReadDir(debianRoot); err == nil {
		var majors []int
		for _, e := range entries {
			if n, err := strconv.Atoi(e.Name()); err == nil {
				majors = append(majors, n)
			}
		}
		sort.Sort(sort.Reverse(sort.IntSlice(majors)))
		for _, m := range majors {
			if dir, err := check(filepath.Join(debianRoot, strconv.Itoa(m), "bin"), "newest installed"); err == nil {
				return dir, nil
			}
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("no PostgreSQL binaries found: set %s, or install them under %s/<version>/bin or on PATH", EnvBinDir, debianRoot)
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// MajorVersion returns the major version of the server binaries in binDir
// (15 for "postgres (PostgreSQL) 15.8").
func MajorVersion(ctx context.Context, binDir string) (int, error) {
	// Through Runner: the environment passed on is the same filtered one.
	out, err := Runner{BinDir: binDir}.Run(ctx, "postgres", "--version")
	if err != nil {
		return 0, fmt.Errorf("postgres --version in %s: %w", binDir, err)
	}
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("unrecognised postgres --version output %q", strings.TrimSpace(out))
	}
	return strconv.Atoi(m[1])
}

// User is an operating-system account the binaries run as.
type User struct {
	Name     string
	UID, GID uint32
	Groups   []uint32
	Home     string
}

// ResolveUser returns the account server binaries must run as. An empty name
// means "postgres" when this process is root and this process's own account
// otherwise (nil, meaning no switch). A non-empty name is looked up; switching
// to it needs root unless it is this process's own account (nil again).
func ResolveUser(name string) (*User, error) {
	root := os.Geteuid() == 0
	if name == "" {
		if !root {
			return nil, nil
		}
		name = "postgres"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("OS user %q for PostgreSQL binaries: %w", name, err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	if !root {
		if int(uid) == os.Geteuid() {
			return nil, nil
		}
		return nil, fmt.Errorf("cannot run PostgreSQL binaries as %q: this process is not root", name)
	}
	if uid == 0 {
		return nil, errors.New("PostgreSQL binaries cannot run as root: configure a different OS user")
	}
	out := &User{Name: name, UID: uint32(uid), GID: uint32(gid), Home: u.HomeDir}
	if gids, err := u.GroupIds(); err == nil {
		for _, g := range gids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				out.Groups = append(out.Groups, uint32(n))
			}
		}
	}
	return out, nil
}

// Chown gives path and everything below it to u; a nil u does nothing.
func (u *User) Chown(path string) error {
	if u == nil {
		return nil
	}
	return filepath.WalkDir(path, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(u.UID), int(u.GID))
	})
}

// MkdirOwned creates dir (and missing parents) with mode perm and gives the
// directory itself to u.
func (u *User) MkdirOwned(dir string, perm os.FileMode) error {
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	if err := os.Chmod(dir, perm); err != nil {
		return err
	}
	if u == nil {
		return nil
	}
	return os.Chown(dir, int(u.UID), int(u.GID))
}

// Runner runs binaries of one bin dir as one OS user.
type Runner struct {
	BinDir string
	// User is the account to run as; nil runs as this process's account.
	User *User
	// Env holds extra KEY=VALUE pairs (libpq variables from LibpqEnv).
	// A PGPASSWORD entry is dropped: passwords reach a child only through
	// Password.
	Env []string
	// Password, when set, is handed to the child through a passfile: a
	// 0600 file in a private 0700 directory owned by User, named by
	// PGPASSFILE and removed when the child has exited. It never appears
	// in a child's argument list or environment.
	Password string
}

// Command builds the command for binary name with args, and returns the
// function that removes its passfile (call it once the command has
// exited). Of this process's environment only PATH, TZ, TMPDIR and the
// locale are passed on, so that only Env decides where libpq connects and
// no secret held in an environment variable reaches the child. When ctx is cancelled the process gets SIGTERM,
// then SIGKILL 15 s later.
func (r Runner) Command(ctx context.Context, name string, args ...string) (*exec.Cmd, func(), error) {
	cmd := exec.CommandContext(ctx, filepath.Join(r.BinDir, name), args...)
	// Only the locale, time zone, temp dir and search path are inherited:
	// this process's environment may hold secrets (a dsn_env or
	// replica_dsn_envs variable, TEMPORAL_API_KEY) a child must not see.
	env := make([]string, 0, len(r.Env)+8)
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); inheritedEnv(k) {
			env = append(env, kv)
		}
	}
	if r.User != nil {
		env = append(env, "HOME="+r.User.Home, "USER="+r.User.Name, "LOGNAME="+r.User.Name)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
			Uid: r.User.UID, Gid: r.User.GID, Groups: r.User.Groups,
		}}
	} else if home, err := os.UserHomeDir(); err == nil {
		env = append(env, "HOME="+home)
	}
	for _, kv := range r.Env {
		k, _, _ := strings.Cut(kv, "=")
		if k == "PGPASSWORD" || (r.Password != "" && k == "PGPASSFILE") {
			continue
		}
		env = append(env, kv)
	}
	cleanup := func() {}
	if r.Password != "" {
		path, remove, err := WritePassfile(r.Password, r.User)
		if err != nil {
			return nil, cleanup, fmt.Errorf("%s: %w", name, err)
		}
		env = append(env, "PGPASSFILE="+path)
		cleanup = remove
	}
	cmd.Env = env
	cmd.Dir = "/"
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	return cmd, cleanup, nil
}

// inheritedEnv reports whether a child inherits variable k.
func inheritedEnv(k string) bool {
	switch k {
	case "PATH", "TZ", "TMPDIR", "LANG", "LANGUAGE":
		return true
	}
	return strings.HasPrefix(k, "LC_")
}

// Run runs binary name and returns its combined output. A failure's error
// carries the last lines of that output.
func (r Runner) Run(ctx context.Context, name string, args ...string) (string, error) {
	cmd, cleanup, err := r.Command(ctx, name, args...)
	if err != nil {
		return "", err
	}
	defer cleanup()
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return string(out), ctx.Err()
		}
		return string(out), fmt.Errorf("%s: %w: %s", name, err, Tail(string(out), 6))
	}
	return string(out), nil
}

// RunGroup is Run with the program in a process group of its own, which
// is what cancellation signals (SIGTERM, then SIGKILL): pg_basebackup forks
// a WAL streamer that would otherwise outlive it, keep writing into the
// target directory and hold the output pipe open.
func (r Runner) RunGroup(ctx context.Context, name string, args ...string) (string, error) {
	cmd, cleanup, err := r.Command(ctx, name, args...)
	if err != nil {
		return "", err
	}
	defer cleanup()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	out, err := cmd.CombinedOutput()
	if cmd.Process != nil && ctx.Err() != nil {
		// Whatever of the group is left (the streamer) goes too.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		if ctx.Err() != nil {
			return string(out), ctx.Err()
		}
		return string(out), fmt.Errorf("%s: %w: %s", name, err, Tail(string(out), 6))
	}
	return string(out), nil
}

// Tail returns the last n non-empty lines of s joined by " | ".
func Tail(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ConfQuote quotes s as a postgresql.conf string value.
func ConfQuote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
}
