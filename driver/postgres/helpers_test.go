package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// shared is one cluster for the tests that neither restart nor replicate
// it; each test works in a database of its own.
var shared *pgcluster.Cluster

func TestMain(m *testing.M) {
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
	name := fmt.Sprintf("t%d", dbSeq.Add(1))
	c.CreateDatabase(t, name)
	return name
}

// memHistory is an in-memory driver.History: a test double for the storage
// only (the real store is tested in package history).
type memHistory struct {
	mu        sync.Mutex
	samples   []driver.Sample
	baselines map[string]map[string]float64
	backups   []driver.BackupRecord
}

func newHistory() *memHistory { return &memHistory{baselines: map[string]map[string]float64{}} }

func (h *memHistory) RecordSamples(_ context.Context, s ...driver.Sample) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples = append(h.samples, s...)
	return nil
}

func (h *memHistory) Samples(_ context.Context, target, metric string, since time.Time) ([]driver.Sample, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []driver.Sample
	for _, s := range h.samples {
		if s.Target == target && s.Metric == metric && !s.At.Before(since) {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

func (h *memHistory) Baseline(_ context.Context, target string) (map[string]float64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]float64{}
	for k, v := range h.baselines[target] {
		out[k] = v
	}
	return out, nil
}

func (h *memHistory) SaveBaseline(_ context.Context, target string, values map[string]float64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	cp := map[string]float64{}
	for k, v := range values {
		cp[k] = v
	}
	h.baselines[target] = cp
	return nil
}

func (h *memHistory) RecordBackup(_ context.Context, rec driver.BackupRecord) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.backups = append(h.backups, rec)
	return nil
}

func (h *memHistory) LatestBackup(_ context.Context, target string) (driver.BackupRecord, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.backups) - 1; i >= 0; i-- {
		if h.backups[i].Target == target && h.backups[i].Verified {
			return h.backups[i], true, nil
		}
	}
	return driver.BackupRecord{}, false, nil
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
	history *memHistory
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
	return &env{t: t, c: c, db: db, d: d, history: newHistory(), target: driver.Target{
		Name: "tgt-" + db, Driver: postgres.Name, DSN: c.DSN(db),
		BackupDir: dir + "/backups", ScratchDir: dir + "/scratch", BinDir: c.BinDir,
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
