package pgbin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// InitdbOptions configure Initdb.
type InitdbOptions struct {
	// Superuser is the bootstrap superuser. Optional: defaulted to "postgres".
	Superuser string
	// DataChecksums enables page checksums (initdb --data-checksums).
	DataChecksums bool
}

// Initdb creates a cluster in dataDir (which must not exist or be empty and
// whose parent the runner's user can write) with trust authentication,
// UTF8 encoding and the C locale, skipping the final fsync.
func Initdb(ctx context.Context, r Runner, dataDir string, o InitdbOptions) error {
	su := o.Superuser
	if su == "" {
		su = "postgres"
	}
	args := []string{"-D", dataDir, "-U", su, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"}
	if o.DataChecksums {
		args = append(args, "--data-checksums")
	}
	_, err := r.Run(ctx, "initdb", args...)
	return err
}

// WriteSettings appends settings to the configuration file at path (created
// when missing) so that they override anything earlier in it. Keys are
// written in sorted order; values are written verbatim when they are plain
// numbers or words, quoted otherwise.
func WriteSettings(path string, settings map[string]string, owner *User) error {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\n# --- written by themis pgbin ---\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, confValue(settings[k]))
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if owner != nil {
		return os.Chown(path, int(owner.UID), int(owner.GID))
	}
	return nil
}

func confValue(v string) string {
	if v == "" {
		return "''"
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return v
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return ConfQuote(v)
		}
	}
	return v
}

// Instance is a server run from a local data directory with pg_ctl.
type Instance struct {
	Runner  Runner
	DataDir string
	// LogFile receives the server log. Optional: defaulted to DataDir/../server.log.
	LogFile string
	// StartTimeout bounds pg_ctl -w start. Optional: defaulted to 120s.
	StartTimeout time.Duration
	// Host (a socket directory or an address) and Port, when set, make Start
	// also wait until pg_isready reports the server accepting connections:
	// pg_ctl -w has been seen to return while the end-of-recovery checkpoint
	// of a restored backup was still running.
	Host string
	Port int
}

func (in *Instance) logFile() string {
	if in.LogFile != "" {
		return in.LogFile
	}
	return filepath.Join(filepath.Dir(in.DataDir), "server.log")
}

// Start starts the server and waits until it accepts connections. A failure
// carries the end of the server log.
func (in *Instance) Start(ctx context.Context) error {
	t := in.StartTimeout
	if t <= 0 {
		t = 120 * time.Second
	}
	_, err := in.Runner.Run(ctx, "pg_ctl", "-D", in.DataDir, "-l", in.logFile(),
		"-w", "-t", strconv.Itoa(int(t.Seconds())), "start")
	if err != nil {
		if b, rerr := os.ReadFile(in.logFile()); rerr == nil {
			return fmt.Errorf("%w; server log: %s", err, Tail(string(b), 8))
		}
		return err
	}
	if in.Host != "" && in.Port > 0 {
		return in.WaitReady(ctx, t)
	}
	return nil
}

// WaitReady polls pg_isready until the server accepts connections. It
// fails at once when the postmaster has exited: pg_ctl -w can report a
// server started (its pid file said "standby" or "ready") whose startup
// process fails a moment later, for instance at the end of a recovery.
func (in *Instance) WaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		out, err := in.Runner.Run(ctx, "pg_isready", "-q", "-h", in.Host, "-p", strconv.Itoa(in.Port), "-t", "2")
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !in.postmasterAlive() {
			msg := "server exited during startup"
			if b, rerr := os.ReadFile(in.logFile()); rerr == nil {
				msg += "; server log: " + Tail(string(b), 8)
			}
			return errors.New(msg)
		}
		last = strings.TrimSpace(out + " " + err.Error())
		if time.Now().After(deadline) {
			return fmt.Errorf("server on %s:%d not ready after %s: %s", in.Host, in.Port, timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops the server with mode "smart", "fast" or "immediate" and waits.
// Stopping a server that is not running is not an error.
func (in *Instance) Stop(ctx context.Context, mode string) error {
	if !in.Running(ctx) {
		return nil
	}
	_, err := in.Runner.Run(ctx, "pg_ctl", "-D", in.DataDir, "-m", mode, "-w", "-t", "60", "stop")
	if err != nil && !in.Running(ctx) {
		return nil
	}
	return err
}

// postmasterAlive reports whether the pid in DataDir/postmaster.pid is a
// live process (no pid file: not alive).
func (in *Instance) postmasterAlive() bool {
	b, err := os.ReadFile(filepath.Join(in.DataDir, "postmaster.pid"))
	if err != nil {
		return false
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) != syscall.ESRCH
}

// Running reports whether a postmaster runs on DataDir.
func (in *Instance) Running(ctx context.Context) bool {
	if _, err := os.Stat(filepath.Join(in.DataDir, "postmaster.pid")); err != nil {
		return false
	}
	_, err := in.Runner.Run(ctx, "pg_ctl", "-D", in.DataDir, "status")
	return err == nil
}
