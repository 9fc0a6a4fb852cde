package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/internal/history"
)

// template is a demo database seeded once per test binary; seeded copies it
// (seeding is slow under the race detector).
var template struct {
	once sync.Once
	path string
	err  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "themis-sqlite-test-")
	if err != nil {
		panic(err)
	}
	template.path = filepath.Join(dir, "template.db")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// seeded returns the path of a fresh copy of the demo database in a
// temporary directory.
func seeded(t *testing.T) string {
	t.Helper()
	template.once.Do(func() { template.err = SeedDemo(context.Background(), template.path) })
	if template.err != nil {
		t.Fatal(template.err)
	}
	b, err := os.ReadFile(template.path)
	if err != nil {
		t.Fatal(err)
	}
	if fileExists(template.path + "-wal") {
		t.Fatal("template database left a WAL behind")
	}
	path := filepath.Join(t.TempDir(), "demo.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// openHistory opens a history store in a temporary directory.
func openHistory(t *testing.T) *history.Store {
	t.Helper()
	h, err := history.Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// rawDB opens path directly for assertions and set-up.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// heartbeats records progress reports.
type heartbeats struct {
	mu   sync.Mutex
	list []driver.Progress
}

func (h *heartbeats) record(p driver.Progress) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.list = append(h.list, p)
}

func (h *heartbeats) all() []driver.Progress {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]driver.Progress(nil), h.list...)
}

// notes returns the notes of all heartbeats.
func (h *heartbeats) notes() []string {
	var out []string
	for _, p := range h.all() {
		out = append(out, p.Note)
	}
	return out
}

// lastCheckpoint returns the JSON of the last non-nil checkpoint.
func (h *heartbeats) lastCheckpoint(t *testing.T) json.RawMessage {
	t.Helper()
	all := h.all()
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Checkpoint != nil {
			b, err := json.Marshal(all[i].Checkpoint)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	return nil
}

// harness runs tasks against one database file.
type harness struct {
	t      *testing.T
	d      *Driver
	target driver.Target
	hist   driver.History
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	path := seeded(t)
	return &harness{
		t: t,
		d: NewWithOptions(Options{}),
		target: driver.Target{
			Name: "demo", Driver: Name, DSN: path,
			BackupDir: filepath.Join(filepath.Dir(path), "backups"),
		},
		hist: openHistory(t),
	}
}

func (h *harness) req(task domain.TaskType, opts domain.TaskOptions, hb *heartbeats) driver.Request {
	if hb == nil {
		hb = &heartbeats{}
	}
	return driver.Request{Target: h.target, Task: task, Options: opts, Progress: hb.record, History: h.hist, JobID: "job-test"}
}

// run runs task and fails the test on error.
func (h *harness) run(task domain.TaskType, opts domain.TaskOptions) driver.Result {
	h.t.Helper()
	res, err := h.d.Run(context.Background(), h.req(task, opts, nil))
	if err != nil {
		h.t.Fatalf("%s: %v", task, err)
	}
	checkResult(h.t, task, res)
	return res
}

// checkResult asserts what every successful result must have: a summary,
// details, and JSON encodability (it crosses Temporal as JSON).
func checkResult(t *testing.T, task domain.TaskType, res driver.Result) {
	t.Helper()
	if strings.TrimSpace(res.Summary) == "" {
		t.Errorf("%s: empty summary", task)
	}
	if res.Details == nil {
		t.Errorf("%s: nil details", task)
	}
	if _, err := json.Marshal(res); err != nil {
		t.Errorf("%s: result does not encode as JSON: %v", task, err)
	}
}

// permanentKind returns the kind of a *driver.PermanentError, or "".
func permanentKind(err error) string {
	var p *driver.PermanentError
	if errors.As(err, &p) {
		return p.Kind
	}
	return ""
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
