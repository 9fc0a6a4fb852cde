package postgres_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/commandlog"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// skippedOf returns the skipped reason of each table in a result's details.
func skippedOf(t *testing.T, res driver.Result, list, name string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, x := range detailsJSON(t, res)[list].([]any) {
		m := x.(map[string]any)
		s, _ := m["skipped"].(string)
		out[m[name].(string)] = s
	}
	return out
}

// TestBudgetWindowClosesMidRunAndNextRunDoesTheRest: the window closes
// while the first table's VACUUM waits on a lock; the other tables are left
// (skipped: window_closed, in UnitsLeft) and the task succeeds. The next
// run, carrying them, does exactly those, in the carried order.
func TestBudgetWindowClosesMidRunAndNextRunDoesTheRest(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	seedDead(t, shared, db, 4)
	e := newEnv(t, shared, db)
	opts := domain.TaskOptions{"dead_tuple_threshold": int64(50), "parallelism": int64(1), "lock_timeout_ms": int64(30_000)}
	// d1 goes first (carried) and waits on this lock until the window has
	// closed.
	blocker := shared.Conn(t, db)
	ctx := context.Background()
	tx, err := blocker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE public.d1 IN SHARE UPDATE EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	stop := time.Now().Add(3 * time.Second)
	budget := driver.Budget{StopStartingAt: stop, StoppedBy: driver.StoppedWindowClosed, Carried: []string{"public.d1"}}
	type out struct {
		res  driver.Result
		cmds []commandlog.Command
		err  error
	}
	done := make(chan out, 1)
	go func() {
		res, cmds, err := e.runLogged(t, driver.Request{Task: domain.TaskMVCCCleanup, Options: opts, Budget: budget})
		done <- out{res, cmds, err}
	}()
	waitFor(t, 30*time.Second, "d1's VACUUM to wait on the lock", func() bool {
		return pgcluster.Scalar[int64](t, shared, db, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'VACUUM%' AND wait_event_type = 'Lock'`, appName(db, domain.TaskMVCCCleanup, 1)) == 1
	})
	if time.Now().After(stop) {
		_ = tx.Rollback(ctx)
		<-done
		t.Skip("the machine is too slow for this test's timing: the first VACUUM started after the window closed")
	}
	time.Sleep(time.Until(stop) + 200*time.Millisecond)
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	var o out
	select {
	case o = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("mvcc_cleanup did not return")
	}
	res, cmds, err := o.res, o.cmds, o.err
	if err != nil {
		t.Fatal(err)
	}
	if got := statementsLike(cmds, "VACUUM"); len(got) != 1 || !strings.Contains(got[0], `"d1"`) {
		t.Fatalf("first run sent %v, want only d1's VACUUM", got)
	}
	if !slices.Equal(sorted(res.UnitsLeft), []string{"public.d2", "public.d3", "public.d4"}) || res.StoppedBy != driver.StoppedWindowClosed {
		t.Fatalf("units left %v (%q), want d2..d4 (window_closed)", res.UnitsLeft, res.StoppedBy)
	}
	if !strings.Contains(res.Summary, "3 unit(s) left for the next run (window_closed)") {
		t.Errorf("summary %q", res.Summary)
	}
	sk := skippedOf(t, res, "tables", "table")
	for _, u := range res.UnitsLeft {
		if sk[u] != driver.StoppedWindowClosed {
			t.Errorf("%s skipped %q, want window_closed", u, sk[u])
		}
		if shared.DeadTuples(t, db, u) == 0 {
			t.Errorf("%s was vacuumed although left", u)
		}
	}
	if sk["public.d1"] != "" || shared.DeadTuples(t, db, "public.d1") != 0 {
		t.Errorf("d1 not vacuumed (%q)", sk["public.d1"])
	}

	// The next run starts with what was left, in the carried order.
	carried := slices.Clone(res.UnitsLeft)
	slices.Reverse(carried)
	res2, cmds, err := e.runLogged(t, driver.Request{Task: domain.TaskMVCCCleanup, Options: opts, Budget: driver.Budget{Carried: carried}})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, u := range carried {
		want = append(want, "VACUUM (ANALYZE) "+`"public"."`+strings.TrimPrefix(u, "public.")+`"`)
	}
	if got := statementsLike(cmds, "VACUUM"); !slices.Equal(got, want) {
		t.Errorf("second run sent %v, want %v", got, want)
	}
	if len(res2.UnitsLeft) != 0 {
		t.Errorf("second run left %v", res2.UnitsLeft)
	}
}

// TestBudgetSkipsUnitsPredictedNotToFit: a table whose VACUUMs took an
// hour (command log) is not started with ten minutes left; the others are.
func TestBudgetSkipsUnitsPredictedNotToFit(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	seedDead(t, shared, db, 3)
	e := newEnv(t, shared, db)
	h := newUnitHistory()
	h.durations["public.d1"] = 6 * time.Minute
	h.durations["public.d2"] = time.Hour
	h.durations["public.d3"] = 6 * time.Minute
	budget := driver.Budget{StopStartingAt: time.Now().Add(10 * time.Minute), StoppedBy: driver.StoppedTimeLimit}
	// A dry run's clock advances by the predictions: after d1 (6 min), d3
	// (6 more) would not fit either.
	dry, _, err := e.runLogged(t, driver.Request{Task: domain.TaskMVCCCleanup, History: h, Budget: budget, DryRun: true,
		Options: domain.TaskOptions{"dead_tuple_threshold": int64(50)}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dry.UnitsLeft, []string{"public.d2", "public.d3"}) || len(dry.Plan) != 1 || dry.Plan[0].Object != "public.d1" {
		t.Errorf("dry run: left %v, plan %+v", dry.UnitsLeft, dry.Plan)
	}
	res, _, err := e.runLogged(t, driver.Request{Task: domain.TaskMVCCCleanup, History: h, Budget: budget,
		Options: domain.TaskOptions{"dead_tuple_threshold": int64(50)}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.UnitsLeft, []string{"public.d2"}) || res.StoppedBy != driver.StoppedTimeLimit {
		t.Fatalf("units left %v (%q), want [public.d2] (time_limit)", res.UnitsLeft, res.StoppedBy)
	}
	sk := skippedOf(t, res, "tables", "table")
	if !strings.HasPrefix(sk["public.d2"], "would not fit: predicted 1h0m0s, ") || !strings.HasSuffix(sk["public.d2"], " left") {
		t.Errorf("d2 skipped %q", sk["public.d2"])
	}
	if shared.DeadTuples(t, db, "public.d2") == 0 || shared.DeadTuples(t, db, "public.d1") != 0 || shared.DeadTuples(t, db, "public.d3") != 0 {
		t.Error("d2 vacuumed, or d1/d3 not")
	}
	// A dry run predicts the statements' durations.
	plan, _, err := e.runLogged(t, driver.Request{Task: domain.TaskMVCCCleanup, History: h, DryRun: true,
		Options: domain.TaskOptions{"dead_tuple_threshold": int64(50)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Plan) != 1 || plan.Plan[0].Object != "public.d2" || plan.Plan[0].PredictedMs != time.Hour.Milliseconds() {
		t.Errorf("plan %+v", plan.Plan)
	}
}

// TestBudgetHardStopCancelsRebuild: a REINDEX CONCURRENTLY still waiting
// at the hard stop is cancelled server-side, its invalid _ccnew copy is
// dropped, and the table is left for the next run; the task succeeds.
func TestBudgetHardStopCancelsRebuild(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Seed(t, db, pgcluster.SeedOptions{Tables: 1, Rows: 30000, DeletePct: 80, UpdatePct: -1})
	e := newEnv(t, shared, db)
	bg := context.Background()
	blocker := shared.Conn(t, db)
	tx, err := blocker.Begin(bg)
	if err != nil {
		t.Fatal(err)
	}
	// REINDEX CONCURRENTLY builds its _ccnew copy, then waits for this
	// transaction.
	if _, err := tx.Exec(bg, `INSERT INTO public.seed_1 VALUES (900000, 1, 'new', 1, now(), 'x')`); err != nil {
		t.Fatal(err)
	}
	hard := time.Now().Add(6 * time.Second)
	type out struct {
		res driver.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, _, err := e.runLogged(t, driver.Request{Task: domain.TaskIndexRebuild, Budget: driver.Budget{HardStopAt: hard, StoppedBy: driver.StoppedWindowClosed},
			Options: domain.TaskOptions{"lock_timeout_ms": int64(600_000), "high_threshold_pct": 0.0, "min_size_bytes": int64(0)}})
		done <- out{res, err}
	}()
	waitFor(t, 30*time.Second, "the _ccnew index to appear", func() bool {
		return pgcluster.Scalar[int64](t, shared, db, `SELECT count(*) FROM pg_class WHERE relname LIKE '%\_ccnew%'`) > 0
	})
	if time.Now().After(hard) {
		t.Skip("the machine is too slow for this test's timing: the rebuild reached its wait after the hard stop")
	}
	// The clean-up's DROP INDEX CONCURRENTLY waits for the same
	// transaction: end it once the hard stop has passed.
	time.Sleep(time.Until(hard) + 500*time.Millisecond)
	waitFor(t, 10*time.Second, "the REINDEX to be cancelled", func() bool {
		return pgcluster.Scalar[int64](t, shared, db, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'REINDEX%' AND state = 'active'`, appName(db, domain.TaskIndexRebuild, 1)) == 0
	})
	if err := tx.Commit(bg); err != nil {
		t.Fatal(err)
	}
	var o out
	select {
	case o = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return after the hard stop")
	}
	if o.err != nil {
		t.Fatalf("index_rebuild failed at the hard stop: %v", o.err)
	}
	if !slices.Equal(o.res.UnitsLeft, []string{"public.seed_1"}) || o.res.StoppedBy != driver.StoppedWindowClosed {
		t.Fatalf("units left %v (%q)", o.res.UnitsLeft, o.res.StoppedBy)
	}
	if hs, _ := detailsJSON(t, o.res)["hard_stopped"].([]any); len(hs) != 1 {
		t.Errorf("hard_stopped %v", hs)
	}
	for idx, s := range skippedOf(t, o.res, "indexes", "index") {
		if s != driver.StoppedWindowClosed {
			t.Errorf("%s skipped %q", idx, s)
		}
	}
	requireNoRebuildLeftovers(t, shared, db, "the hard stop")
}

// TestIntegrityRotationByLastGoodCheck: consistency_check takes relations
// never checked first, then the oldest last good check first (a window
// already closed leaves them all, in that order, without checking any).
func TestIntegrityRotationByLastGoodCheck(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Exec(t, db, `CREATE TABLE public.r1 (id int PRIMARY KEY); CREATE TABLE public.r2 (id int PRIMARY KEY); CREATE TABLE public.r3 (id int PRIMARY KEY)`)
	e := newEnv(t, shared, db)
	// Run once for real, so amcheck is there and every relation has a key.
	base, cmds, err := e.runLogged(t, driver.Request{Task: domain.TaskConsistencyCheck})
	if err != nil {
		t.Fatal(err)
	}
	objects := map[string]bool{}
	for _, c := range cmds {
		if strings.Contains(c.Statement, "bt_index_check") {
			if c.Object == "" {
				t.Fatalf("amcheck call logged without its object: %q", c.Statement)
			}
			objects[c.Object] = true
		}
	}
	if !objects["public.r1_pkey"] || !objects["public.pg_class_oid_index"] && !objects["pg_catalog.pg_class_oid_index"] {
		t.Fatalf("objects checked: %d (%s)", len(objects), base.Summary)
	}
	h := newUnitHistory()
	now := time.Now()
	i := 0
	for o := range objects {
		h.lastGood[o] = now.Add(-time.Duration(1000+i) * time.Hour)
		i++
	}
	h.lastGood["public.r1_pkey"] = now.Add(-time.Minute)       // checked last: goes last
	h.lastGood["public.r2_pkey"] = now.Add(-10000 * time.Hour) // oldest: first among the checked
	delete(h.lastGood, "public.r3_pkey")                       // never checked: first of all
	res, cmds, err := e.runLogged(t, driver.Request{Task: domain.TaskConsistencyCheck, History: h,
		Options: domain.TaskOptions{"parallelism": int64(1)},
		Budget:  driver.Budget{StopStartingAt: now.Add(-time.Second), StoppedBy: driver.StoppedWindowClosed}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(statementsLike(cmds, "SELECT \"themis_ext\".\"bt_index_check\"")); n != 0 {
		t.Errorf("%d checks ran after the window closed", n)
	}
	left := res.UnitsLeft
	if len(left) != len(objects) {
		t.Fatalf("%d units left, want %d", len(left), len(objects))
	}
	if left[0] != "public.r3_pkey" || left[1] != "public.r2_pkey" || left[len(left)-1] != "public.r1_pkey" {
		t.Errorf("rotation order: first %v, last %s", left[:2], left[len(left)-1])
	}
	for k := 2; k < len(left); k++ {
		if h.lastGood[left[k]].Before(h.lastGood[left[k-1]]) {
			t.Errorf("%s (last good %s) after %s (%s)", left[k], h.lastGood[left[k]], left[k-1], h.lastGood[left[k-1]])
			break
		}
	}
	if d := detailsJSON(t, res); d["order"] != "oldest last good check first" {
		t.Errorf("order %v", d["order"])
	}
}
