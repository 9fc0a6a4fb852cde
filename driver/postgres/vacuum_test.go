package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

func TestMVCCCleanupRemovesDeadTuples(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	seed := shared.Seed(t, db, pgcluster.SeedOptions{Tables: 3, Rows: 20000})
	e := newEnv(t, shared, db)
	before := map[string]int64{}
	for _, tbl := range seed.Tables {
		before[tbl] = shared.DeadTuples(t, db, tbl)
		if before[tbl] < 10000 {
			t.Fatalf("%s has only %d dead tuples before the task", tbl, before[tbl])
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, rec, err := e.run(ctx, domain.TaskMVCCCleanup, domain.TaskOptions{"parallelism": int64(2)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tbl := range seed.Tables {
		after := shared.DeadTuples(t, db, tbl)
		t.Logf("%s: n_dead_tup %d → %d", tbl, before[tbl], after)
		if after != 0 {
			t.Errorf("%s still has %d dead tuples", tbl, after)
		}
	}
	d := detailsJSON(t, res)
	if d["tables_vacuumed"].(float64) != 3 {
		t.Errorf("tables_vacuumed = %v, want 3 (%s)", d["tables_vacuumed"], res.Summary)
	}
	var cp struct{ Done []string }
	if err := json.Unmarshal(rec.lastCheckpoint(), &cp); err != nil || len(cp.Done) != 3 {
		t.Errorf("last checkpoint %s: want 3 tables done (%v)", rec.lastCheckpoint(), err)
	}
	if !strings.Contains(res.Summary, "vacuumed 3 of 3 tables") {
		t.Errorf("summary %q", res.Summary)
	}
	// A second run finds nothing over the threshold.
	res = e.mustRun(domain.TaskMVCCCleanup, nil)
	if !strings.HasPrefix(res.Summary, "no table over the thresholds") {
		t.Errorf("second run: %q", res.Summary)
	}
}

func TestMVCCCleanupResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Seed(t, db, pgcluster.SeedOptions{Tables: 2, Rows: 5000})
	e := newEnv(t, shared, db)
	deadBefore := shared.DeadTuples(t, db, "public.seed_1")
	// A previous attempt heartbeated seed_1 as done.
	cp := json.RawMessage(`{"done":["public.seed_1"],"results":[{"table":"public.seed_1","statement":"VACUUM (ANALYZE)","dead_tuples_before":3000,"dead_tuples_after":0}]}`)
	res, _, err := e.run(context.Background(), domain.TaskMVCCCleanup, nil, cp)
	if err != nil {
		t.Fatal(err)
	}
	if got := shared.DeadTuples(t, db, "public.seed_1"); got != deadBefore {
		t.Errorf("seed_1 was vacuumed again: dead tuples %d → %d", deadBefore, got)
	}
	if got := shared.DeadTuples(t, db, "public.seed_2"); got != 0 {
		t.Errorf("seed_2 not vacuumed: %d dead tuples", got)
	}
	d := detailsJSON(t, res)
	if d["resumed"].(float64) != 1 || len(d["tables"].([]any)) != 2 {
		t.Errorf("resumed = %v, tables = %v; want 1 resumed and both reported", d["resumed"], d["tables"])
	}
}

func TestMVCCCleanupLockTimeoutIsRetryableAndCheckpointed(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Seed(t, db, pgcluster.SeedOptions{Tables: 2, Rows: 5000})
	e := newEnv(t, shared, db)
	blocker := shared.Conn(t, db)
	ctx := context.Background()
	tx, err := blocker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE public.seed_1 IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	_, rec, err := e.run(ctx, domain.TaskMVCCCleanup, domain.TaskOptions{"lock_timeout_ms": int64(300)}, nil)
	if err == nil {
		t.Fatal("mvcc_cleanup succeeded although seed_1 was locked")
	}
	if permanentKind(err) != "" || !strings.Contains(err.Error(), "public.seed_1") || !strings.Contains(err.Error(), "lock not available") {
		t.Fatalf("want a retryable lock error naming public.seed_1, got %v (kind %q)", err, permanentKind(err))
	}
	var cp struct{ Done []string }
	_ = json.Unmarshal(rec.lastCheckpoint(), &cp)
	if len(cp.Done) != 1 || cp.Done[0] != "public.seed_2" {
		t.Fatalf("checkpoint done = %v, want [public.seed_2]", cp.Done)
	}
	// The retry, after the lock is gone, does only seed_1.
	tx.Rollback(ctx)
	res, _, err := e.run(ctx, domain.TaskMVCCCleanup, nil, rec.lastCheckpoint())
	if err != nil {
		t.Fatal(err)
	}
	if shared.DeadTuples(t, db, "public.seed_1") != 0 {
		t.Error("seed_1 not vacuumed by the retry")
	}
	if d := detailsJSON(t, res); d["resumed"].(float64) != 1 {
		t.Errorf("resumed = %v", d["resumed"])
	}
}

// TestCancellationStopsTheServerStatement cancels a VACUUM that waits for a
// lock and checks that the server stopped running it (pgx sent a cancel
// request), not only that Run returned.
func TestCancellationStopsTheServerStatement(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Seed(t, db, pgcluster.SeedOptions{Tables: 1, Rows: 2000})
	e := newEnv(t, shared, db)
	blocker := shared.Conn(t, db)
	bg := context.Background()
	tx, err := blocker.Begin(bg)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(bg)
	if _, err := tx.Exec(bg, `LOCK TABLE public.seed_1 IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() {
		_, _, err := e.run(ctx, domain.TaskMVCCCleanup, domain.TaskOptions{"lock_timeout_ms": int64(600_000)}, nil)
		done <- err
	}()
	vacuumWaiting := func(state string) int64 {
		return pgcluster.Scalar[int64](t, shared, db, `
			SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND query LIKE 'VACUUM%' AND state = $2`, appName(db, domain.TaskMVCCCleanup, 1), state)
	}
	waitFor(t, 20*time.Second, "the VACUUM to wait for its lock", func() bool { return vacuumWaiting("active") == 1 })
	cancelledAt := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v, want context.Canceled", err)
		}
		if d := time.Since(cancelledAt); d > 5*time.Second {
			t.Errorf("Run took %s to return after cancellation", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	// The lock is still held, so a VACUUM that kept running would still be
	// active: the server must show none.
	waitFor(t, 5*time.Second, "the server to stop the VACUUM", func() bool { return vacuumWaiting("active") == 0 })
	if n := shared.DeadTuples(t, db, "public.seed_1"); n == 0 {
		t.Error("table was vacuumed although the task was cancelled")
	}
}

func TestStatisticsUpdateAnalyzesStaleTables(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Seed(t, db, pgcluster.SeedOptions{Tables: 2, Rows: 3000})
	shared.Exec(t, db, `CREATE TABLE public.never_analyzed (id int PRIMARY KEY)`)
	shared.Exec(t, db, `INSERT INTO public.never_analyzed SELECT generate_series(1, 100)`)
	// Seed's own statistics reach shared memory after its ANALYZE; analyse
	// seed_2 again now so that it is fresh.
	shared.Exec(t, db, `ANALYZE public.seed_2`)
	shared.Exec(t, db, `UPDATE public.seed_1 SET note = 'x' WHERE id % 10 = 0`)
	e := newEnv(t, shared, db)
	waitFor(t, 10*time.Second, "modification counters", func() bool {
		return pgcluster.Scalar[int64](t, shared, db, `SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = 'seed_1'`) > 0
	})
	res := e.mustRun(domain.TaskStatisticsUpdate, domain.TaskOptions{"parallelism": int64(2)})
	d := detailsJSON(t, res)
	if d["tables_analyzed"].(float64) != 2 || d["tables_fresh"].(float64) != 1 {
		t.Errorf("analysed %v, fresh %v; want 2 and 1 (%s)", d["tables_analyzed"], d["tables_fresh"], res.Summary)
	}
	if !pgcluster.Scalar[bool](t, shared, db, `SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'never_analyzed'`) {
		t.Error("never_analyzed has no last_analyze after the task")
	}
}

func TestStorageCompaction(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	// 80 % of the rows deleted: a plain VACUUM frees the space for reuse but
	// cannot give it back; VACUUM FULL (full=true) rewrites the table.
	shared.Seed(t, db, pgcluster.SeedOptions{Tables: 1, Rows: 60000, DeletePct: 80, UpdatePct: -1})
	e := newEnv(t, shared, db)
	sizeBefore := shared.RelationSize(t, db, "public.seed_1")
	res := e.mustRun(domain.TaskStorageCompaction, nil)
	if !strings.Contains(res.Summary, "full=false") || detailsJSON(t, res)["tables_rewritten"].(float64) != 0 {
		t.Errorf("without full: %s", res.Summary)
	}
	if shared.DeadTuples(t, db, "public.seed_1") != 0 {
		t.Error("plain VACUUM left dead tuples")
	}
	sizePlain := shared.RelationSize(t, db, "public.seed_1")
	res = e.mustRun(domain.TaskStorageCompaction, domain.TaskOptions{"full": true})
	sizeFull := shared.RelationSize(t, db, "public.seed_1")
	t.Logf("seed_1: %d bytes → plain VACUUM %d → VACUUM FULL %d (%s)", sizeBefore, sizePlain, sizeFull, res.Summary)
	if d := detailsJSON(t, res); d["tables_rewritten"].(float64) != 1 {
		t.Errorf("tables_rewritten = %v, want 1", d["tables_rewritten"])
	}
	if sizeFull > sizePlain/3 {
		t.Errorf("VACUUM FULL left %d bytes of %d", sizeFull, sizePlain)
	}
}

// TestVacuumCostDelayPacesTheSessions: cost_delay_ms and cost_limit are set
// on the sessions that VACUUM (as autovacuum's pacing), and parallel_workers
// as their max_parallel_maintenance_workers; all are reset before the
// connections go back to the pool; without them nothing is set.
func TestVacuumCostDelayPacesTheSessions(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Seed(t, db, pgcluster.SeedOptions{Tables: 2, Rows: 5000})
	shared.Exec(t, db, `CREATE EXTENSION pg_stat_statements`)
	e := newEnv(t, shared, db)
	resetStatements(t, db)
	costSettings := func() (n int) {
		for _, q := range statementsSeen(t, db) {
			if strings.Contains(q, "vacuum_cost_") || strings.Contains(q, "max_parallel_maintenance_workers") {
				n++
			}
		}
		return n
	}
	res, cmds, err := e.runLogged(t, driver.Request{Task: domain.TaskMVCCCleanup, Options: domain.TaskOptions{
		"dead_tuple_threshold": int64(1), "cost_delay_ms": 2.5, "cost_limit": int64(500), "parallelism": int64(1), "parallel_workers": int64(0)}})
	if err != nil {
		t.Fatal(err)
	}
	var logged []string
	for _, c := range cmds {
		if strings.Contains(c.Statement, "vacuum_cost_") || strings.Contains(c.Statement, "max_parallel_maintenance_workers") {
			logged = append(logged, c.Statement)
		}
	}
	if strings.Join(logged, "; ") != "SET vacuum_cost_delay = 2.5; SET vacuum_cost_limit = 500; SET max_parallel_maintenance_workers = 0" {
		t.Fatalf("%s: session settings in the command log: %q", res.Summary, logged)
	}
	for _, q := range []string{"RESET vacuum_cost_delay", "RESET vacuum_cost_limit", "RESET max_parallel_maintenance_workers"} {
		if !slices.Contains(statementsSeen(t, db), q) {
			t.Errorf("%q not sent before the session went back to the pool", q)
		}
	}
	resetStatements(t, db)
	if _, _, err = e.runLogged(t, driver.Request{Task: domain.TaskMVCCCleanup, Options: domain.TaskOptions{"dead_tuple_threshold": int64(0)}}); err != nil {
		t.Fatal(err)
	}
	if n := costSettings(); n != 0 {
		t.Fatalf("without cost_delay_ms and parallel_workers: %d statements on those settings", n)
	}
}
