package sqlite

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/internal/history"
)

func mustParseTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// unitHistory is the real history store with the per-unit answers of
// driver.UnitHistory set by the test (the store computes them from its
// command log; here they are what a test needs them to be).
type unitHistory struct {
	*history.Store
	durations map[string]time.Duration
	lastGood  map[string]time.Time
}

func (u *unitHistory) UnitDurations(context.Context, string, domain.TaskType) (map[string]time.Duration, error) {
	return u.durations, nil
}

func (u *unitHistory) LastGoodChecks(context.Context, string, []domain.TaskType) (map[string]time.Time, error) {
	return u.lastGood, nil
}

var _ driver.UnitHistory = (*unitHistory)(nil)

// analyzed returns the tables ANALYZE ran on, in order, from the command log.
func analyzed(t *testing.T, h *harness, req driver.Request) (driver.Result, []string) {
	t.Helper()
	res, cmds, err := h.runLogged(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, req.Task, res)
	var out []string
	for _, c := range cmds {
		if c.Operation == "ANALYZE" {
			out = append(out, c.Object)
		}
	}
	return res, out
}

// TestBudgetStopsStartingUnitsAndTheNextRunFinishesTheRest: a window that
// closes after two tables leaves the other two (the task succeeds, saying
// how many); the next run, given them as carried units, starts with them.
func TestBudgetStopsStartingUnitsAndTheNextRunFinishesTheRest(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	req := h.req(domain.TaskStatisticsUpdate, nil, nil)
	req.JobID = "night-1"
	// The window closes once the second table is done: the heartbeat
	// after it waits for that.
	closes := time.Now().Add(4 * time.Second)
	req.Progress = func(p driver.Progress) {
		if strings.HasSuffix(p.Note, "(2/4)") {
			time.Sleep(time.Until(closes))
		}
	}
	req.Budget = driver.Budget{StopStartingAt: closes, StoppedBy: driver.StoppedWindowClosed}
	res, done := analyzed(t, h, req)
	all := []string{"customers", "events", "order_items", "orders"}
	if len(done) != 2 || !slices.Equal(done, all[:2]) {
		t.Fatalf("first window analyzed %v, want %v", done, all[:2])
	}
	if !slices.Equal(res.UnitsLeft, all[2:]) || res.StoppedBy != driver.StoppedWindowClosed {
		t.Fatalf("units left %v (%q), want %v", res.UnitsLeft, res.StoppedBy, all[2:])
	}
	if !strings.Contains(res.Summary, "2 tables left for the next run (skipped: window_closed)") || res.Details["optimized"] != false {
		t.Errorf("summary %q, details %v", res.Summary, res.Details)
	}

	// The next night starts with what was left, then the rest.
	req.Progress = nil
	req.JobID = "night-2"
	req.Budget = driver.Budget{StopStartingAt: time.Now().Add(time.Hour), Carried: res.UnitsLeft}
	res, done = analyzed(t, h, req)
	if want := []string{"order_items", "orders", "customers", "events"}; !slices.Equal(done, want) {
		t.Errorf("second window analyzed %v, want the carried tables first: %v", done, want)
	}
	if len(res.UnitsLeft) != 0 || res.StoppedBy != "" || res.Details["optimized"] != true {
		t.Errorf("second window: %q %v", res.Summary, res.UnitsLeft)
	}

	// A window already closed starts nothing.
	req.JobID = "night-3"
	req.Budget = driver.Budget{StopStartingAt: time.Now().Add(-time.Second), StoppedBy: driver.StoppedTimeLimit}
	res, done = analyzed(t, h, req)
	if len(done) != 0 || len(res.UnitsLeft) != 4 || res.StoppedBy != driver.StoppedTimeLimit {
		t.Errorf("closed window: analyzed %v, left %v (%q)", done, res.UnitsLeft, res.StoppedBy)
	}
}

// TestBudgetSkipsUnitsPredictedNotToFit: with the command log predicting
// an hour for one index, that index is left while the others, which fit,
// are rebuilt; a dry run plans the same, with the predictions.
func TestBudgetSkipsUnitsPredictedNotToFit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.hist = &unitHistory{Store: h.hist.(*history.Store), durations: map[string]time.Duration{
		"idx_events_subject": time.Hour, "idx_orders_customer": 20 * time.Millisecond,
	}}
	budget := driver.Budget{StopStartingAt: time.Now().Add(10 * time.Minute), StoppedBy: driver.StoppedWindowClosed}

	req := h.req(domain.TaskIndexRebuild, nil, nil)
	req.DryRun, req.Budget = true, budget
	dry, err := h.d.Run(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	req.DryRun = false
	res, err := h.d.Run(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []driver.Result{dry, res} {
		if !slices.Equal(r.UnitsLeft, []string{"idx_events_subject"}) || r.StoppedBy != driver.StoppedWindowClosed ||
			!strings.Contains(r.Summary, "1 indexes left for the next run (skipped: window_closed, 1 of them predicted not to fit)") {
			t.Errorf("%q: left %v", r.Summary, r.UnitsLeft)
		}
		if got := r.Details["predicted_too_long_ms"].(map[string]int64); got["idx_events_subject"] != time.Hour.Milliseconds() {
			t.Errorf("predicted_too_long_ms %v", got)
		}
	}
	if got := res.Details["reindexed"].([]string); len(got) != 7 || contains(got, "idx_events_subject") {
		t.Errorf("reindexed %v", got)
	}
	if len(dry.Plan) != 7 {
		t.Fatalf("dry run planned %d statements, want 7", len(dry.Plan))
	}
	for _, p := range dry.Plan {
		want := int64(0)
		if p.Object == "idx_orders_customer" {
			want = 20
		}
		if p.PredictedMs != want {
			t.Errorf("%s predicted %d ms, want %d", p.Object, p.PredictedMs, want)
		}
	}
}

// TestBudgetHardStopInterruptsTheUnit: a unit still running at HardStopAt
// (here a REINDEX waiting for the write lock another connection holds) is
// interrupted and left with the rest; the task succeeds.
func TestBudgetHardStopInterruptsTheUnit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	conn, err := rawDB(t, h.target.DSN).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	req := h.req(domain.TaskIndexRebuild, nil, nil)
	req.Budget = driver.Budget{StopStartingAt: time.Now().Add(time.Hour), HardStopAt: time.Now().Add(2 * time.Second)}
	start := time.Now()
	res, err := h.d.Run(context.Background(), req)
	if err != nil {
		t.Fatalf("the hard stop failed the task: %v", err)
	}
	took := time.Since(start)
	if len(res.UnitsLeft) != 8 || res.UnitsLeft[0] != "idx_customers_country" || res.Details["interrupted"] != "idx_customers_country" {
		t.Fatalf("after %v: %q left %v", took, res.Summary, res.UnitsLeft)
	}
	if took > 15*time.Second || !strings.Contains(res.Summary, "8 indexes left for the next run (skipped: window_closed, idx_customers_country interrupted at the hard stop)") {
		t.Errorf("after %v: summary %q", took, res.Summary)
	}
	if _, err := conn.ExecContext(context.Background(), `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	// A hard stop already past starts nothing.
	req.Budget = driver.Budget{HardStopAt: time.Now().Add(-time.Second)}
	res, err = h.d.Run(context.Background(), req)
	if err != nil || len(res.UnitsLeft) != 8 || res.Details["interrupted"] != nil {
		t.Errorf("past hard stop: %v %q %v", err, res.Summary, res.UnitsLeft)
	}
}

// TestBudgetOfWholeDatabaseTasks: VACUUM is one unit; it does not start
// once the window has closed.
func TestBudgetOfWholeDatabaseTasks(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	fragment(t, h)
	before := readState(t, h)
	req := h.req(domain.TaskStorageCompaction, domain.TaskOptions{"full": true}, nil)
	req.Budget = driver.Budget{StopStartingAt: time.Now().Add(-time.Minute), StoppedBy: driver.StoppedWindowClosed}
	res, err := h.d.Run(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.UnitsLeft, []string{wholeDatabase}) || !strings.HasPrefix(res.Summary, "VACUUM not started") {
		t.Errorf("%q left %v", res.Summary, res.UnitsLeft)
	}
	if after := readState(t, h); after != before {
		t.Errorf("VACUUM ran after the window closed")
	}

	// A VACUUM still waiting for its lock at the hard stop is interrupted.
	conn, err := rawDB(t, h.target.DSN).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	req.Budget = driver.Budget{StopStartingAt: time.Now().Add(time.Hour), HardStopAt: time.Now().Add(time.Second)}
	res, err = h.d.Run(context.Background(), req)
	if err != nil {
		t.Fatalf("the hard stop failed the task: %v", err)
	}
	if !slices.Equal(res.UnitsLeft, []string{wholeDatabase}) || !strings.HasPrefix(res.Summary, "VACUUM interrupted at the hard stop") ||
		res.Details["interrupted"] != wholeDatabase {
		t.Errorf("%q left %v", res.Summary, res.UnitsLeft)
	}
	if _, err := conn.ExecContext(context.Background(), `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	if after := readState(t, h); after != before {
		t.Errorf("the interrupted VACUUM changed the database")
	}
}

// TestConsistencyCheckRotatesByOldestGoodCheck: tables never checked come
// first, then the longest unchecked; carried tables before all.
func TestConsistencyCheckRotatesByOldestGoodCheck(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	now := time.Now()
	h.hist = &unitHistory{Store: h.hist.(*history.Store), lastGood: map[string]time.Time{
		"customers": now.Add(-time.Hour), "events": now.Add(-72 * time.Hour), "order_items": now.Add(-24 * time.Hour),
		"orders": now.Add(-2 * time.Hour),
	}}
	req := h.req(domain.TaskConsistencyCheck, nil, nil)
	req.JobID = "rotate"
	req.Budget = driver.Budget{Carried: []string{"orders"}}
	res, cmds, err := h.runLogged(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, c := range cmds {
		if c.Operation == "PRAGMA quick_check" && c.Object != "sqlite_schema" {
			order = append(order, c.Object)
		}
	}
	// sqlite_sequence and sqlite_stat1 have no good check on record: first.
	var want []string
	for _, n := range []string{"orders", "sqlite_sequence", "sqlite_stat1", "events", "order_items", "customers"} {
		if contains(res.Details["order"].([]string), n) {
			want = append(want, n)
		}
	}
	if !slices.Equal(order, want) || res.Details["rotated"] != true {
		t.Errorf("checked %v, want %v", order, want)
	}
}
