package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/historytest"
	"github.com/themis-maintenance/themis/driver/postgres"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// shared is one cluster for the tests that neither restart nor replicate
// it; each test works in a database of its own.
var shared *pgcluster.Cluster

func TestMain(m *testing.M) {
	if os.Getenv(deadWorkerEnv) != "" {
		os.Exit(deadWorkerMain())
	}
	flag.Parse()
	if testing.Short() {
		// make unit: no PostgreSQL; newDB and pgcluster.Start skip the
		// tests that need it.
		os.Exit(m.Run())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	c, err := pgcluster.StartCluster(ctx, pgcluster.Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start shared cluster:", err)
		os.Exit(1)
	}
	shared = c
	code := m.Run()
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop shared cluster:", err)
	}
	os.Exit(code)
}

var dbSeq atomic.Int64

// newDB creates a fresh database in c for one test.
func newDB(t *testing.T, c *pgcluster.Cluster) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs PostgreSQL")
	}
	name := fmt.Sprintf("t%d", dbSeq.Add(1))
	c.CreateDatabase(t, name)
	return name
}

// recorder collects heartbeats.
type recorder struct {
	mu    sync.Mutex
	beats []driver.Progress
}

func (r *recorder) report(p driver.Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.beats = append(r.beats, p)
}

// lastCheckpoint returns the newest heartbeat checkpoint as JSON.
func (r *recorder) lastCheckpoint() json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.beats) - 1; i >= 0; i-- {
		if r.beats[i].Checkpoint != nil {
			b, _ := json.Marshal(r.beats[i].Checkpoint)
			return b
		}
	}
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.beats)
}

// env is one test's driver, target and history.
type env struct {
	t       *testing.T
	c       *pgcluster.Cluster
	db      string
	d       *postgres.Driver
	target  driver.Target
	history *historytest.Memory
}

func newEnv(t *testing.T, c *pgcluster.Cluster, db string) *env {
	t.Helper()
	d := postgres.NewWithOptions(postgres.Options{HeartbeatInterval: 200 * time.Millisecond, ProbeRuns: 3})
	t.Cleanup(d.Close)
	// Not t.TempDir: its parent is private to root, and the server binaries
	// run as the postgres account must reach the backup directory.
	dir, err := os.MkdirTemp("", "themis-drv-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return &env{t: t, c: c, db: db, d: d, history: historytest.New(), target: driver.Target{
		Name: "tgt-" + db, Driver: postgres.Name, DSN: c.DSN(db),
		BackupDir: dir + "/backups", ScratchDir: dir + "/scratch", BinDir: c.BinDir,
		AllowCreateExtension: true,
	}}
}

// run runs task with options and an optional checkpoint.
func (e *env) run(ctx context.Context, task domain.TaskType, opts domain.TaskOptions, cp json.RawMessage) (driver.Result, *recorder, error) {
	rec := &recorder{}
	if opts == nil {
		opts = domain.TaskOptions{}
	}
	res, err := e.d.Run(ctx, driver.Request{
		Target: e.target, Task: task, Options: opts, Checkpoint: cp,
		Progress: rec.report, History: e.history, JobID: "job-" + e.db,
	})
	return res, rec, err
}

// appName is the application_name of the sessions of env.run for db's
// task at attempt.
func appName(db string, task domain.TaskType, attempt int) string {
	return fmt.Sprintf("themis:job-%s:%s:a%d", db, task, attempt)
}

// mustRun runs task and fails the test on error.
func (e *env) mustRun(task domain.TaskType, opts domain.TaskOptions) driver.Result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, _, err := e.run(ctx, task, opts, nil)
	if err != nil {
		e.t.Fatalf("%s: %v", task, err)
	}
	return res
}

// permanentKind returns the kind of a *driver.PermanentError, or "".
func permanentKind(err error) string {
	var pe *driver.PermanentError
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return ""
}

// detailsJSON re-decodes details through JSON, as they travel.
func detailsJSON(t *testing.T, res driver.Result) map[string]any {
	t.Helper()
	b, err := json.Marshal(res.Details)
	if err != nil {
		t.Fatalf("details do not encode: %v", err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

func hasAlert(res driver.Result, level, subject string) bool {
	for _, a := range res.Alerts {
		if a.Level == level && (subject == "" || a.Subject == subject) {
			return true
		}
	}
	return false
}
