package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
)

// Superuser is the bootstrap superuser of every cluster.
const Superuser = "postgres"

// dirPrefix names every cluster directory under os.TempDir.
const dirPrefix = "themis-pg-"

// Options configure a cluster.
type Options struct {
	// BinDir holds the PostgreSQL binaries. Optional: found by
	// pgbin.FindBinDir ($THEMIS_PG_BINDIR, newest /usr/lib/postgresql/*/bin,
	// PATH).
	BinDir string
	// DataChecksums turns page checksums on. Optional: off, so that a page
	// corrupted on purpose is found by amcheck rather than by a checksum
	// failure on first read.
	DataChecksums bool
	// Settings are extra postgresql.conf settings; they override the
	// defaults: listen on 127.0.0.1 and a socket in the cluster directory,
	// shared_preload_libraries=pg_stat_statements, wal_level=replica,
	// max_wal_senders=10, wal_keep_size=128MB, hot_standby=on,
	// archive_mode=on with archive_command copying into ArchiveDir,
	// fsync=off, synchronous_commit=off, shared_buffers=32MB,
	// max_connections=50, track_io_timing=on,
	// wal_receiver_status_interval=1s.
	Settings map[string]string
}

// Cluster is one running throwaway server.
type Cluster struct {
	// BinDir holds the binaries the cluster was made with.
	BinDir string
	// Root is the cluster's own directory; everything below it is removed by Stop.
	Root string
	// DataDir is the data directory (Root/data).
	DataDir string
	// ArchiveDir receives archived WAL segments (archive_command).
	ArchiveDir string
	// Host and Port are the loopback TCP address.
	Host string
	Port int
	// SocketDir holds the Unix-domain socket.
	SocketDir string
	// OSUser is the OS account the server runs as ("" = this process's).
	OSUser string
	// Major is the server's major version.
	Major int

	runner  pgbin.Runner
	user    *pgbin.User
	inst    *pgbin.Instance
	primary *Cluster

	mu       sync.Mutex
	replicas []*Cluster
	stopped  bool
}

// Start starts a cluster for t and registers its removal with t.Cleanup.
// It fails t when the cluster cannot start, and skips t under -short (make
// unit runs without PostgreSQL).
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs PostgreSQL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := StartCluster(ctx, opts)
	if err != nil {
		t.Fatalf("pgcluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Logf("pgcluster: stop: %v", err)
		}
	})
	return c
}

// StartCluster starts a cluster; the caller must call Stop.
func StartCluster(ctx context.Context, opts Options) (*Cluster, error) {
	reapStale()
	binDir, err := pgbin.FindBinDir(opts.BinDir, 0)
	if err != nil {
		return nil, err
	}
	major, err := pgbin.MajorVersion(ctx, binDir)
	if err != nil {
		return nil, err
	}
	c, err := newCluster(binDir, major)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = c.Stop()
		}
	}()
	if err := pgbin.Initdb(ctx, c.runner, c.DataDir, pgbin.InitdbOptions{
		Superuser: Superuser, DataChecksums: opts.DataChecksums,
	}); err != nil {
		return nil, err
	}
	settings := c.defaultSettings()
	for k, v := range opts.Settings {
		settings[k] = v
	}
	if err := c.startOnFreePort(ctx, settings); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// newCluster makes the cluster's directories; the data directory itself is
// left for initdb or pg_basebackup to create.
func newCluster(binDir string, major int) (*Cluster, error) {
	u, err := pgbin.ResolveUser("")
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		BinDir: binDir, Root: root, DataDir: filepath.Join(root, "data"),
		ArchiveDir: filepath.Join(root, "archive"), SocketDir: root,
		Host: "127.0.0.1", Major: major, user: u,
		runner: pgbin.Runner{BinDir: binDir, User: u},
	}
	if u != nil {
		c.OSUser = u.Name
	}
	c.inst = &pgbin.Instance{Runner: c.runner, DataDir: c.DataDir, LogFile: filepath.Join(root, "server.log")}
	if err := os.WriteFile(filepath.Join(root, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		_ = os.RemoveAll(root)
		return nil, err
	}
	// The server's account must be able to traverse the temp dir to reach root.
	if err := u.MkdirOwned(root, 0o700); err != nil {
		_ = os.RemoveAll(root)
		return nil, err
	}
	if err := u.MkdirOwned(c.ArchiveDir, 0o700); err != nil {
		_ = os.RemoveAll(root)
		return nil, err
	}
	return c, nil
}

func (c *Cluster) defaultSettings() map[string]string {
	archive := fmt.Sprintf(`test ! -f "%s/%%f" && cp "%%p" "%s/%%f"`, c.ArchiveDir, c.ArchiveDir)
	return map[string]string{
		"listen_addresses":             c.Host,
		"unix_socket_directories":      c.SocketDir,
		"shared_preload_libraries":     "pg_stat_statements",
		"pg_stat_statements.track":     "all",
		"wal_level":                    "replica",
		"max_wal_senders":              "10",
		"max_replication_slots":        "10",
		"wal_keep_size":                "128MB",
		"hot_standby":                  "on",
		"archive_mode":                 "on",
		"archive_command":              archive,
		"fsync":                        "off",
		"synchronous_commit":           "off",
		"shared_buffers":               "32MB",
		"max_connections":              "50",
		"logging_collector":            "off",
		"log_line_prefix":              "%m [%p] %q%u@%d ",
		"track_io_timing":              "on",
		"wal_receiver_status_interval": "1s",
	}
}

// startOnFreePort writes the settings with a free port and starts; a port
// taken between picking and binding is retried with another.
func (c *Cluster) startOnFreePort(ctx context.Context, settings map[string]string) error {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := pgbin.FreePort()
		if err != nil {
			return err
		}
		settings["port"] = strconv.Itoa(port)
		c.inst.Host, c.inst.Port = c.SocketDir, port
		if err := pgbin.WriteSettings(filepath.Join(c.DataDir, "postgresql.conf"), settings, c.user); err != nil {
			return err
		}
		if err := c.inst.Start(ctx); err != nil {
			lastErr = err
			if strings.Contains(err.Error(), "could not bind") || strings.Contains(err.Error(), "already in use") {
				continue
			}
			return err
		}
		c.Port = port
		return nil
	}
	return lastErr
}

// Stop stops the cluster and its replicas immediately and removes their
// directories. It is idempotent.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	replicas := c.replicas
	c.mu.Unlock()
	var errs []error
	for _, r := range replicas {
		errs = append(errs, r.Stop())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs = append(errs, c.inst.Stop(ctx, "immediate"))
	if err := os.RemoveAll(c.Root); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Restart stops the server cleanly (a shutdown checkpoint writes every page)
// and starts it again on the same port.
func (c *Cluster) Restart(ctx context.Context) error {
	if err := c.inst.Stop(ctx, "fast"); err != nil {
		return err
	}
	return c.inst.Start(ctx)
}

// DSN returns a connection URL for database db as the superuser over TCP.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", Superuser, c.Host, c.Port, url.PathEscape(db))
}

// Connect opens a connection to database db.
func (c *Cluster) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, c.DSN(db))
}

// Conn opens a connection to db that is closed when the test ends.
func (c *Cluster) Conn(t testing.TB, db string) *pgx.Conn {
	t.Helper()
	conn, err := c.Connect(context.Background(), db)
	if err != nil {
		t.Fatalf("pgcluster: connect %s: %v", db, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// Exec runs one statement in db on a fresh connection and fails t on error.
func (c *Cluster) Exec(t testing.TB, db, sql string, args ...any) {
	t.Helper()
	if err := c.ExecContext(context.Background(), db, sql, args...); err != nil {
		t.Fatalf("pgcluster: %s: %v", sql, err)
	}
}

// ExecContext runs one statement in db on a fresh connection.
func (c *Cluster) ExecContext(ctx context.Context, db, sql string, args ...any) error {
	conn, err := c.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// Scalar runs a query returning one value in db and fails t on error.
func Scalar[T any](t testing.TB, c *Cluster, db, sql string, args ...any) T {
	t.Helper()
	var v T
	conn, err := c.Connect(context.Background(), db)
	if err != nil {
		t.Fatalf("pgcluster: connect %s: %v", db, err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("pgcluster: %s: %v", sql, err)
	}
	return v
}

// CreateDatabase creates database name (fails t on error).
func (c *Cluster) CreateDatabase(t testing.TB, name string) {
	t.Helper()
	c.Exec(t, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
}

// reapStale stops and removes clusters whose owning process is gone (a test
// binary killed before its clean-ups ran).
func reapStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		// SIGQUIT is PostgreSQL's immediate shutdown.
		if b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			if pm, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && pm > 0 {
				_ = syscall.Kill(pm, syscall.SIGQUIT)
				for i := 0; i < 50 && syscall.Kill(pm, 0) == nil; i++ {
					time.Sleep(100 * time.Millisecond)
				}
			}
		}
		_ = os.RemoveAll(dir)
	}
}
