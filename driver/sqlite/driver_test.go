package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

func TestUnsupportedTasks(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// SQLite has no replicas, no statement statistics and no vector
	// indexes; the drill runs through driver.Driller, not Run.
	unsupported := map[domain.TaskType]bool{
		domain.TaskReplicaValidation:   true,
		domain.TaskPerformanceAnalysis: true,
		domain.TaskVectorReindex:       true,
	}
	for _, task := range domain.AllTaskTypes() {
		if got := driver.Supports(h.d, task); got == unsupported[task] {
			t.Errorf("driver.Supports(%s) = %v", task, got)
		}
		if !unsupported[task] && task != domain.TaskDisasterRecoveryDrill {
			continue
		}
		_, err := h.d.Run(context.Background(), h.req(task, nil, nil))
		if !errors.Is(err, driver.ErrNotSupported) {
			t.Errorf("%s: err = %v, want ErrNotSupported", task, err)
		}
	}
	if New().Name() != "sqlite" {
		t.Errorf("Name() = %q", New().Name())
	}
}

func TestMissingDatabaseIsMisconfigured(t *testing.T) {
	t.Parallel()
	d := New()
	for _, dsn := range []string{"", filepath.Join(t.TempDir(), "nope.db"), t.TempDir()} {
		_, err := d.Run(context.Background(), driver.Request{
			Target: driver.Target{Name: "x", DSN: dsn}, Task: domain.TaskQuotaCheck,
		})
		if permanentKind(err) != driver.KindMisconfigured {
			t.Errorf("DSN %q: err = %v, want Misconfigured", dsn, err)
		}
	}
	// The missing file is not created as a side effect.
	missing := filepath.Join(t.TempDir(), "still-missing.db")
	_, _ = d.Run(context.Background(), driver.Request{Target: driver.Target{Name: "x", DSN: missing}, Task: domain.TaskQuotaCheck})
	if fileExists(missing) {
		t.Error("Run created the missing database file")
	}
}

func TestNotADatabaseIsIntegrityViolation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "junk.db")
	junk := make([]byte, 8192)
	for i := range junk {
		junk[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New().Run(context.Background(), driver.Request{Target: driver.Target{Name: "x", DSN: path}, Task: domain.TaskFullCheckDB})
	if permanentKind(err) != driver.KindIntegrityViolation {
		t.Fatalf("err = %v, want IntegrityViolation", err)
	}
}

func TestCancellationMidLoop(t *testing.T) {
	t.Parallel()
	for _, task := range []domain.TaskType{domain.TaskIndexRebuild, domain.TaskMetricsCollection, domain.TaskConsistencyCheck} {
		t.Run(string(task), func(t *testing.T) {
			h := newHarness(t)
			h.d = NewWithOptions(Options{StepDelay: 150 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			hb := &heartbeats{}
			done := make(chan error, 1)
			go func() {
				_, err := h.d.Run(ctx, h.req(task, nil, hb))
				done <- err
			}()
			// Let a step or two complete, then cancel in the middle.
			deadline := time.Now().Add(5 * time.Second)
			for len(hb.all()) == 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
			cancelled := time.Now()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("err = %v, want context.Canceled", err)
				}
				if waited := time.Since(cancelled); waited > time.Second {
					t.Errorf("returned %v after cancel", waited)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
			if n := len(hb.all()); n == 0 {
				t.Error("no heartbeat before cancel")
			}
		})
	}
}

func TestCancelledBeforeStart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.d.Run(ctx, h.req(domain.TaskQuotaCheck, nil, nil)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestQuoteIdent(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"orders":         `"orders"`,
		`we"ird`:         `"we""ird"`,
		`a""b`:           `"a""""b"`,
		"with space; --": `"with space; --"`,
		"":               `""`,
	} {
		if got := quoteIdent(in); got != want {
			t.Errorf("quoteIdent(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestSeedDemo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "demo.db")
	if err := SeedDemo(ctx, path); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	counts := map[string]int64{}
	var total int64
	for _, table := range []string{"customers", "orders", "order_items", "events"} {
		n, err := countRows(ctx, db, table)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Errorf("%s is empty", table)
		}
		counts[table] = n
		total += n
	}
	if total < 15_000 || total > 25_000 {
		t.Errorf("total rows = %d (%v), want about 20,000", total, counts)
	}
	if counts["events"] != demoEvents/2 {
		t.Errorf("events = %d, want %d after deleting every other one", counts["events"], demoEvents/2)
	}
	var orphans int
	if err := db.QueryRow(`SELECT count(*) FROM order_items WHERE order_id NOT IN (SELECT id FROM orders)`).Scan(&orphans); err != nil || orphans != 0 {
		t.Errorf("order items without order = %d, %v (cascade not applied)", orphans, err)
	}
	var indexes int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name LIKE 'idx_%'`).Scan(&indexes); err != nil || indexes != 7 {
		t.Errorf("indexes = %d, %v", indexes, err)
	}
	// Seeding again leaves the database alone.
	if _, err := db.Exec(`INSERT INTO events (kind, subject, payload, created_at) VALUES ('x', 'y', 'z', 0)`); err != nil {
		t.Fatal(err)
	}
	if err := SeedDemo(ctx, path); err != nil {
		t.Fatal(err)
	}
	n, _ := countRows(ctx, db, "events")
	if n != counts["events"]+1 {
		t.Errorf("events after re-seed = %d, want %d (untouched)", n, counts["events"]+1)
	}
}

func TestEverySupportedTaskRuns(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.target.QuotaBytes = 1 << 30
	hb := &heartbeats{}
	for _, task := range domain.AllTaskTypes() {
		if !h.d.Supports(task) {
			continue
		}
		res, err := h.d.Run(context.Background(), h.req(task, nil, hb))
		if err != nil {
			t.Errorf("%s: %v", task, err)
			continue
		}
		checkResult(t, task, res)
	}
	for _, p := range hb.all() {
		if p.Pct < 0 || p.Pct > 100 {
			t.Errorf("heartbeat %q at %v %%", p.Note, p.Pct)
		}
	}
}

func TestLongStatementsHeartbeatOnATimer(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.d = NewWithOptions(Options{HeartbeatInterval: time.Millisecond})
	hb := &heartbeats{}
	if _, err := h.d.Run(context.Background(), h.req(domain.TaskFullCheckDB, nil, hb)); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range hb.notes() {
		if strings.Contains(n, "integrity_check of the whole database (running for") {
			found = true
		}
	}
	if !found {
		t.Errorf("no timer heartbeat during integrity_check: %v", hb.notes())
	}
}

func TestStatementTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// 1 ms is far too short for an integrity check of the demo under -race.
	_, err := h.d.Run(context.Background(), h.req(domain.TaskFullCheckDB, domain.TaskOptions{"statement_timeout_ms": int64(1)}, nil))
	if err == nil || !strings.Contains(err.Error(), "statement_timeout_ms 1 exceeded") {
		t.Fatalf("err = %v, want a statement timeout", err)
	}
	if errors.Is(err, context.DeadlineExceeded) && permanentKind(err) != "" {
		t.Errorf("a statement timeout is not permanent: %v", err)
	}
}
