package postgres_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/commandlog"
	"github.com/themis-maintenance/themis/internal/history"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// memSink keeps recorded commands.
type memSink struct {
	mu   sync.Mutex
	cmds []commandlog.Command
}

func (m *memSink) RecordCommands(_ context.Context, cmds []commandlog.Command) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cmds = append(m.cmds, cmds...)
	return nil
}

// statements counts the recorded statements containing s.
func (m *memSink) statements(s string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, c := range m.cmds {
		if strings.Contains(c.Statement, s) {
			n++
		}
	}
	return n
}

func (m *memSink) throttledMs() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for _, c := range m.cmds {
		n += c.ThrottledMs
	}
	return n
}

// sawNote reports whether a heartbeat note contains s.
func (r *recorder) sawNote(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.beats {
		if strings.Contains(b.Note, s) {
			return true
		}
	}
	return false
}

// seedDead creates n small tables with dead tuples in db.
func seedDead(t *testing.T, c *pgcluster.Cluster, db string, n int) {
	t.Helper()
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `CREATE TABLE public.d%d (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = off);
			INSERT INTO public.d%d SELECT g, 'x' FROM generate_series(1, 200) g;
			DELETE FROM public.d%d WHERE id %% 2 = 0;`, i, i, i)
	}
	c.Exec(t, db, b.String())
	waitFor(t, 30*time.Second, "dead tuples in the statistics", func() bool {
		return pgcluster.Scalar[int64](t, c, db, `SELECT count(*) FROM pg_stat_user_tables WHERE relname LIKE 'd%' AND n_dead_tup > 0`) == int64(n)
	})
}

// runAsync runs task in the background with a command-log Recorder.
type asyncRun struct {
	rec  *recorder
	sink *memSink
	done chan struct{}
	res  driver.Result
	err  error
}

func (e *env) runAsync(t *testing.T, task domain.TaskType, opts domain.TaskOptions, h driver.History) *asyncRun {
	t.Helper()
	a := &asyncRun{rec: &recorder{}, sink: &memSink{}, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cl := commandlog.NewRecorder(commandlog.Meta{JobID: "job-" + e.db, Target: e.target.Name, Task: string(task)}, a.sink)
	ctx = commandlog.WithRecorder(ctx, cl)
	go func() {
		defer close(a.done)
		defer cancel()
		a.res, a.err = e.d.Run(ctx, driver.Request{
			Target: e.target, Task: task, Options: opts, Progress: a.rec.report, History: h, JobID: "job-" + e.db,
		})
		_ = cl.Flush(ctx)
	}()
	return a
}

func (a *asyncRun) wait(t *testing.T) driver.Result {
	t.Helper()
	select {
	case <-a.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("task did not finish")
	}
	if a.err != nil {
		t.Fatalf("task failed: %v", a.err)
	}
	return a.res
}

func num(t *testing.T, d map[string]any, key string) float64 {
	t.Helper()
	f, ok := d[key].(float64)
	if !ok {
		t.Fatalf("details %s = %v (%T)", key, d[key], d[key])
	}
	return f
}

func eventsWith(d map[string]any, kind, reason string) int {
	evs, _ := d["throttle_events"].([]any)
	n := 0
	for _, e := range evs {
		m, _ := e.(map[string]any)
		if m["kind"] == kind && strings.Contains(fmt.Sprint(m["reason"]), reason) {
			n++
		}
	}
	return n
}

// TestThrottleReplica runs mvcc_cleanup on a primary whose streaming
// replica has replay paused: the task throttles on the replica's lag and
// goes on when replay resumes; with a critical level it hibernates instead
// of failing; a statement that blocks others past lock_timeout while a
// critical level is up is cancelled and redone.
func TestThrottleReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs PostgreSQL")
	}
	p := pgcluster.Start(t, pgcluster.Options{})
	rep := p.StartReplica(t)
	p.CreateDatabase(t, "app")
	p.WaitCaughtUp(t, rep)

	pauseReplay := func(t *testing.T) {
		t.Helper()
		rep.Exec(t, "app", `SELECT pg_wal_replay_pause()`)
		// A failed subtest must not leave replay paused for the next one.
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = rep.ExecContext(ctx, "app", `SELECT pg_wal_replay_resume()`)
		})
		p.Exec(t, "app", `CREATE TABLE IF NOT EXISTS public.tick (id serial PRIMARY KEY); INSERT INTO public.tick DEFAULT VALUES`)
	}

	t.Run("lag", func(t *testing.T) {
		seedDead(t, p, "app", 50)
		p.WaitCaughtUp(t, rep)
		e := newEnv(t, p, "app")
		e.target.ReplicaDSNs = []string{rep.DSN("app")}
		pauseReplay(t)
		time.Sleep(800 * time.Millisecond)

		const paused = 3 * time.Second
		a := e.runAsync(t, domain.TaskMVCCCleanup, domain.TaskOptions{
			"max_lag_ms": int64(300), "dead_tuple_threshold": int64(1), "parallelism": int64(2),
		}, e.history)
		waitFor(t, 30*time.Second, "a throttled heartbeat", func() bool { return a.rec.sawNote("throttled: replica lag") })
		time.Sleep(paused)
		rep.Exec(t, "app", `SELECT pg_wal_replay_resume()`)
		res := a.wait(t)
		d := detailsJSON(t, res)
		t.Logf("%s; throttled_ms %v, events %v", res.Summary, d["throttled_ms"], d["throttle_events"])
		if got := num(t, d, "tables_vacuumed"); got != 50 {
			t.Errorf("tables_vacuumed = %v, want 50", got)
		}
		if thr := num(t, d, "throttled_ms"); thr < float64((paused - 500*time.Millisecond).Milliseconds()) {
			t.Errorf("throttled_ms = %v, want > %v", thr, paused-500*time.Millisecond)
		}
		if eventsWith(d, "throttled", "replica lag") == 0 {
			t.Errorf("no replica-lag throttle event: %v", d["throttle_events"])
		}
		if got := a.sink.throttledMs(); got < (paused - 500*time.Millisecond).Milliseconds() {
			t.Errorf("command log throttled_ms = %d, want > %v", got, paused-500*time.Millisecond)
		}
		if n, probes := a.sink.statements("VACUUM"), a.sink.statements("pg_blocking_pids")+a.sink.statements("pg_stat_replication"); n != 50 || probes != 0 {
			t.Errorf("command log: %d VACUUMs (want 50), %d pacer readings (want 0)", n, probes)
		}
		if p := pgcluster.Scalar[int64](t, p, "app", `SELECT count(*) FROM pg_stat_user_tables WHERE relname LIKE 'd%' AND n_dead_tup > 0`); p != 0 {
			t.Errorf("%d tables still have dead tuples", p)
		}
	})

	t.Run("critical lag hibernates", func(t *testing.T) {
		p.Exec(t, "app", `DELETE FROM public.d1 WHERE id < 50; DELETE FROM public.d2 WHERE id < 50`)
		waitFor(t, 30*time.Second, "dead tuples in the statistics", func() bool {
			return p.DeadTuples(t, "app", "public.d1") > 0 && p.DeadTuples(t, "app", "public.d2") > 0
		})
		p.WaitCaughtUp(t, rep)
		e := newEnv(t, p, "app")
		e.target.ReplicaDSNs = []string{rep.DSN("app")}
		pauseReplay(t)
		time.Sleep(800 * time.Millisecond)
		a := e.runAsync(t, domain.TaskMVCCCleanup, domain.TaskOptions{
			"max_lag_ms": int64(0), "critical_lag_ms": int64(300), "hibernate_s": int64(1), "dead_tuple_threshold": int64(1),
		}, e.history)
		waitFor(t, 30*time.Second, "a hibernating heartbeat", func() bool { return a.rec.sawNote("hibernating") })
		time.Sleep(1500 * time.Millisecond)
		rep.Exec(t, "app", `SELECT pg_wal_replay_resume()`)
		res := a.wait(t)
		d := detailsJSON(t, res)
		t.Logf("%s; hibernated_ms %v, events %v", res.Summary, d["hibernated_ms"], d["throttle_events"])
		if num(t, d, "hibernated_ms") < 1000 || eventsWith(d, "hibernated", "critical") == 0 {
			t.Errorf("hibernated_ms %v, events %v", d["hibernated_ms"], d["throttle_events"])
		}
	})

	t.Run("critical load cancels a blocking statement", func(t *testing.T) {
		p.Exec(t, "app", `CREATE TABLE public.pinned (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = off);
			INSERT INTO public.pinned SELECT g, 'x' FROM generate_series(1, 1000) g;
			DELETE FROM public.pinned WHERE id % 2 = 0`)
		ctx := context.Background()
		// A cursor pins the table's first page: VACUUM (FREEZE) waits for
		// its cleanup lock, holding its SHARE UPDATE EXCLUSIVE lock.
		holder := p.Conn(t, "app")
		if _, err := holder.Exec(ctx, `BEGIN; DECLARE c CURSOR FOR SELECT * FROM public.pinned`); err != nil {
			t.Fatal(err)
		}
		if _, err := holder.Exec(ctx, `FETCH 1 FROM c`); err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, p, "app")
		a := e.runAsync(t, domain.TaskMVCCCleanup, domain.TaskOptions{
			"max_lag_ms": int64(0), "critical_active_backends": int64(1), "hibernate_s": int64(1),
			"dead_tuple_threshold": int64(1_000_000), "xid_age_threshold": int64(0), "lock_timeout_ms": int64(500),
			"parallelism": int64(1),
		}, e.history)
		name := appName("app", domain.TaskMVCCCleanup, 1)
		waitFor(t, 30*time.Second, "VACUUM waiting for the pinned page", func() bool {
			return pgcluster.Scalar[int64](t, p, "app", `SELECT count(*) FROM pg_stat_activity
				WHERE application_name = $1 AND query LIKE 'VACUUM%pinned%' AND wait_event = 'BufferPin'`, name) == 1
		})
		// Another session now queues behind the VACUUM's lock.
		blocked := p.Conn(t, "app")
		lockDone := make(chan error, 1)
		go func() {
			_, err := blocked.Exec(ctx, `BEGIN; LOCK TABLE public.pinned IN ACCESS EXCLUSIVE MODE; COMMIT`)
			lockDone <- err
		}()
		waitFor(t, 30*time.Second, "the VACUUM cancelled", func() bool { return a.rec.sawNote("statement cancelled") })
		if _, err := holder.Exec(ctx, `ROLLBACK`); err != nil {
			t.Fatal(err)
		}
		if err := <-lockDone; err != nil {
			t.Fatal(err)
		}
		res := a.wait(t)
		d := detailsJSON(t, res)
		t.Logf("%s; events %v", res.Summary, d["throttle_events"])
		if num(t, d, "throttle_cancelled_statements") < 1 {
			t.Errorf("throttle_cancelled_statements = %v", d["throttle_cancelled_statements"])
		}
		if p.DeadTuples(t, "app", "public.pinned") != 0 {
			t.Error("public.pinned was not vacuumed after the hibernation")
		}
	})
}

// TestThrottleManualPause: a manual pause in the history store holds the
// task until it is cleared.
func TestThrottleManualPause(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	seedDead(t, shared, db, 5)
	e := newEnv(t, shared, db)
	h, err := history.Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ctx := context.Background()
	if err := h.SetTargetThrottle(ctx, history.TargetThrottle{Target: e.target.Name, Until: time.Now().Add(time.Hour), Reason: "release freeze"}); err != nil {
		t.Fatal(err)
	}
	a := e.runAsync(t, domain.TaskMVCCCleanup, domain.TaskOptions{"dead_tuple_threshold": int64(1)}, h)
	waitFor(t, 30*time.Second, "a manual-pause heartbeat", func() bool { return a.rec.sawNote("manual pause until") })
	time.Sleep(1500 * time.Millisecond)
	if shared.DeadTuples(t, db, "public.d1") == 0 {
		t.Fatal("the task vacuumed during the pause")
	}
	if ok, err := h.ClearTargetThrottle(ctx, e.target.Name); err != nil || !ok {
		t.Fatalf("clear: %v %v", ok, err)
	}
	res := a.wait(t)
	d := detailsJSON(t, res)
	if num(t, d, "throttled_ms") < 1500 || eventsWith(d, "throttled", "release freeze") == 0 {
		t.Errorf("throttled_ms %v, events %v", d["throttled_ms"], d["throttle_events"])
	}
	if num(t, d, "tables_vacuumed") != 5 {
		t.Errorf("tables_vacuumed %v", d["tables_vacuumed"])
	}
}

// TestThrottleIntensity: intensity 0.5 sleeps after each table as long as
// the table took.
func TestThrottleIntensity(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	seedDead(t, shared, db, 8)
	e := newEnv(t, shared, db)
	a := e.runAsync(t, domain.TaskMVCCCleanup, domain.TaskOptions{"dead_tuple_threshold": int64(1), "intensity": 0.5, "parallelism": int64(1)}, e.history)
	res := a.wait(t)
	d := detailsJSON(t, res)
	tables, _ := d["tables"].([]any)
	var work float64
	for _, x := range tables {
		work += x.(map[string]any)["duration_ms"].(float64)
	}
	slept := num(t, d, "intensity_slept_ms")
	t.Logf("work %v ms over %d tables, slept %v ms", work, len(tables), slept)
	if len(tables) != 8 || slept <= 0 || slept < work-float64(len(tables)) {
		t.Errorf("intensity 0.5: slept %v ms after %v ms of work over %d tables", slept, work, len(tables))
	}
	// The sleep after the last table precedes no statement.
	if got := a.sink.throttledMs(); got <= 0 || float64(got) > slept {
		t.Errorf("command log throttled_ms %d, slept %v", got, slept)
	}
	// intensity 1 sleeps nothing.
	res = e.mustRun(domain.TaskMVCCCleanup, domain.TaskOptions{"dead_tuple_threshold": int64(0)})
	if d := detailsJSON(t, res); num(t, d, "intensity_slept_ms") != 0 || num(t, d, "throttled_ms") != 0 {
		t.Errorf("intensity 1: %v", d)
	}
}

// TestThrottleQuery: a custom probe above its threshold holds the task.
func TestThrottleQuery(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	seedDead(t, shared, db, 3)
	shared.Exec(t, db, `CREATE TABLE public.busy (v numeric); INSERT INTO public.busy VALUES (7)`)
	e := newEnv(t, shared, db)
	a := e.runAsync(t, domain.TaskMVCCCleanup, domain.TaskOptions{
		"dead_tuple_threshold": int64(1), "throttle_query": "SELECT v FROM public.busy", "throttle_threshold": 5.0,
	}, e.history)
	waitFor(t, 30*time.Second, "a throttle_query heartbeat", func() bool { return a.rec.sawNote("throttle_query 7 > 5") })
	time.Sleep(1200 * time.Millisecond)
	if shared.DeadTuples(t, db, "public.d1") == 0 {
		t.Fatal("the task vacuumed while the probe was over its threshold")
	}
	shared.Exec(t, db, `UPDATE public.busy SET v = 2`)
	d := detailsJSON(t, a.wait(t))
	if num(t, d, "throttled_ms") < 1000 || eventsWith(d, "throttled", "throttle_query") == 0 || num(t, d, "tables_vacuumed") != 3 {
		t.Errorf("details %v", d)
	}

	// A query that is not read-only does not throttle (it fails in the
	// read-only transaction) and does not write.
	res := e.mustRun(domain.TaskMVCCCleanup, domain.TaskOptions{"throttle_query": "UPDATE public.busy SET v = 100 RETURNING v"})
	if got := pgcluster.Scalar[string](t, shared, db, `SELECT v::text FROM public.busy`); got != "2" {
		t.Errorf("the probe wrote: v = %s", got)
	}
	if num(t, detailsJSON(t, res), "throttled_ms") != 0 {
		t.Errorf("a failing probe throttled: %v", res.Details)
	}
}

// TestThrottleBetweenIndexesOfATable: with rebuild_unit=index each index of
// a table is its own REINDEX INDEX CONCURRENTLY, and the throttle is
// consulted between them. A probe that is up once one or two of the
// table's three indexes have been rebuilt (their filenodes changed) holds
// the task inside the table until the test lifts it; with the default unit
// the table is one REINDEX TABLE CONCURRENTLY and nothing holds it. A
// reading is reused for up to a second, so every index is on an expression
// that sleeps 1 ms per row: each rebuild takes over a second, and the
// reading after the first is a fresh one whatever the machine's speed.
func TestThrottleBetweenIndexesOfATable(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Exec(t, db, `CREATE FUNCTION public.slow_key(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS
			$$ BEGIN PERFORM pg_sleep(0.001); RETURN i; END $$;
		CREATE TABLE public.r AS SELECT g AS id, g % 100 AS k, g % 7 AS m FROM generate_series(1, 700) g;
		CREATE INDEX r_id ON public.r (public.slow_key(id)); CREATE INDEX r_k ON public.r (public.slow_key(k));
		CREATE INDEX r_m ON public.r (public.slow_key(m));
		CREATE TABLE public.filenodes AS SELECT relname::text, pg_relation_filenode(oid) AS node FROM pg_class WHERE relname IN ('r_id', 'r_k', 'r_m');
		CREATE TABLE public.lift (lifted bool); ANALYZE`)
	// rebuilt: how many of the three indexes have a new filenode.
	const rebuilt = `SELECT count(*) FROM pg_class c JOIN public.filenodes f ON f.relname = c.relname::text
		WHERE c.relnamespace = 'public'::regnamespace AND pg_relation_filenode(c.oid) <> f.node`
	probe := `SELECT CASE WHEN (` + rebuilt + `) BETWEEN 1 AND 2 AND NOT EXISTS (SELECT 1 FROM public.lift) THEN 1 ELSE 0 END`
	e := newEnv(t, shared, db)
	opts := domain.TaskOptions{"high_threshold_pct": 0.0, "min_size_bytes": int64(0), "parallelism": int64(1),
		"throttle_query": probe, "throttle_threshold": 0.5, "rebuild_unit": "index", "parallel_workers": int64(0)}
	a := e.runAsync(t, domain.TaskIndexRebuild, opts, e.history)
	waitFor(t, 60*time.Second, "a throttle between two indexes", func() bool { return a.rec.sawNote("throttle_query 1 > 0.5") })
	time.Sleep(1200 * time.Millisecond)
	if n := pgcluster.Scalar[int64](t, shared, db, rebuilt); n < 1 || n > 2 {
		t.Fatalf("%d index(es) rebuilt while the task was held inside the table", n)
	}
	shared.Exec(t, db, `INSERT INTO public.lift VALUES (true)`)
	d := detailsJSON(t, a.wait(t))
	if num(t, d, "throttled_ms") < 1000 || num(t, d, "reindex_index_statements") != 3 || num(t, d, "reindex_table_statements") != 0 ||
		num(t, d, "rebuilt") != 3 || d["rebuild_unit"] != "index" {
		t.Errorf("rebuild_unit=index: %v", d)
	}
	if n := pgcluster.Scalar[int64](t, shared, db, rebuilt); n != 3 {
		t.Errorf("%d of 3 indexes rebuilt", n)
	}

	// The default unit: one REINDEX TABLE CONCURRENTLY, no wait inside it.
	shared.Exec(t, db, `DELETE FROM public.lift; TRUNCATE public.filenodes;
		INSERT INTO public.filenodes SELECT relname::text, pg_relation_filenode(oid) FROM pg_class WHERE relname IN ('r_id', 'r_k', 'r_m')`)
	delete(opts, "rebuild_unit")
	d = detailsJSON(t, e.mustRun(domain.TaskIndexRebuild, opts))
	if num(t, d, "throttled_ms") != 0 || num(t, d, "reindex_table_statements") != 1 || num(t, d, "reindex_index_statements") != 0 || d["rebuild_unit"] != "table" {
		t.Errorf("rebuild_unit=table: %v", d)
	}
}
