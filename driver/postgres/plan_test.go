package postgres_test

import (
	"context"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/commandlog"
	"github.com/themis-maintenance/themis/driver/historytest"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// unitHistory is the history store's interface with the per-unit figures
// the command log gives (driver.UnitHistory), kept in memory.
type unitHistory struct {
	*historytest.Memory
	mu        sync.Mutex
	durations map[string]time.Duration
	lastGood  map[string]time.Time
}

func newUnitHistory() *unitHistory {
	return &unitHistory{Memory: historytest.New(), durations: map[string]time.Duration{}, lastGood: map[string]time.Time{}}
}

func (h *unitHistory) UnitDurations(_ context.Context, _ string, _ domain.TaskType) (map[string]time.Duration, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.durations), nil
}

func (h *unitHistory) LastGoodChecks(_ context.Context, _ string, _ []domain.TaskType) (map[string]time.Time, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.lastGood), nil
}

var _ driver.UnitHistory = (*unitHistory)(nil)

// runLogged runs req (target, job and progress filled in) with a command
// log, and returns the result and the commands recorded.
func (e *env) runLogged(t *testing.T, req driver.Request) (driver.Result, []commandlog.Command, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sink := &memSink{}
	cl := commandlog.NewRecorder(commandlog.Meta{JobID: "job-" + e.db, Target: e.target.Name, Task: string(req.Task)}, sink)
	ctx = commandlog.WithRecorder(ctx, cl)
	req.Target, req.JobID, req.Progress = e.target, "job-"+e.db, (&recorder{}).report
	if req.History == nil {
		req.History = e.history
	}
	if req.Options == nil {
		req.Options = domain.TaskOptions{}
	}
	res, err := e.d.Run(ctx, req)
	if ferr := cl.Flush(context.Background()); ferr != nil {
		t.Error(ferr) // not Fatal: tests call runLogged from goroutines too
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	return res, slices.Clone(sink.cmds), err
}

// statementsLike returns the statements of cmds that start with prefix, in
// order.
func statementsLike(cmds []commandlog.Command, prefix string) []string {
	var out []string
	for _, c := range cmds {
		if strings.HasPrefix(c.Statement, prefix) {
			out = append(out, c.Statement)
		}
	}
	return out
}

func planStatements(plan []driver.PlannedStatement) []string {
	out := make([]string, len(plan))
	for i, p := range plan {
		out[i] = p.Statement
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// resetStatements empties pg_stat_statements for db only (tests in other
// databases run at the same time).
func resetStatements(t *testing.T, db string) {
	t.Helper()
	shared.Exec(t, db, `SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)`)
}

// statementsSeen returns the statements pg_stat_statements saw in db.
func statementsSeen(t *testing.T, db string) []string {
	t.Helper()
	conn := shared.Conn(t, db)
	rows, err := conn.Query(context.Background(), `SELECT query FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			t.Fatal(err)
		}
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// readOnlyStatement reports whether q (as pg_stat_statements normalises
// it) is a read, a setting or transaction control.
func readOnlyStatement(q string) bool {
	w := strings.ToUpper(strings.Fields(strings.TrimSpace(q) + " x")[0])
	switch w {
	case "SELECT", "WITH", "SET", "RESET", "SHOW", "BEGIN", "COMMIT", "ROLLBACK", "DISCARD", "DEALLOCATE":
		return !strings.Contains(strings.ToUpper(q), "PG_CANCEL_BACKEND") && !strings.Contains(strings.ToUpper(q), "BT_INDEX")
	}
	return false
}

// TestDryRunExecutesNothingAndPlansTheRealRun: dry runs of mvcc_cleanup and
// index_rebuild send the target nothing but reads (pg_stat_statements), leave
// dead tuples and index OIDs as they were, and plan exactly the statements
// the real runs then send (command log).
func TestDryRunExecutesNothingAndPlansTheRealRun(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	seed := shared.Seed(t, db, pgcluster.SeedOptions{Tables: 3, Rows: 20000})
	// A table under the dead-tuple threshold: not planned.
	shared.Exec(t, db, `CREATE TABLE public.clean (id int PRIMARY KEY); INSERT INTO public.clean SELECT generate_series(1, 100); ANALYZE public.clean`)
	shared.Exec(t, db, `CREATE EXTENSION pg_stat_statements; CREATE EXTENSION pgstattuple`)
	e := newEnv(t, shared, db)
	deadBefore := map[string]int64{}
	for _, tbl := range seed.Tables {
		deadBefore[tbl] = shared.DeadTuples(t, db, tbl)
	}
	oidsQuery := `SELECT string_agg(c.relname || '=' || c.oid || '/' || c.relfilenode, ',' ORDER BY c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'i'`
	oidsBefore := pgcluster.Scalar[string](t, shared, db, oidsQuery)
	rebuildOpts := domain.TaskOptions{"min_size_bytes": int64(64 << 10)}

	resetStatements(t, db)
	start := time.Now()
	vacPlan, vacCmds, err := e.runLogged(t, driver.Request{Task: domain.TaskMVCCCleanup, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	idxPlan, idxCmds, err := e.runLogged(t, driver.Request{Task: domain.TaskIndexRebuild, DryRun: true, Options: rebuildOpts})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dry runs took %s: %q; %q", time.Since(start), vacPlan.Summary, idxPlan.Summary)
	for _, q := range statementsSeen(t, db) {
		if !readOnlyStatement(q) {
			t.Errorf("a dry run sent %q", q)
		}
	}
	if n := len(statementsLike(vacCmds, "VACUUM")) + len(statementsLike(idxCmds, "REINDEX")); n != 0 {
		t.Errorf("the command log of the dry runs holds %d maintenance statements", n)
	}
	for _, tbl := range seed.Tables {
		if got := shared.DeadTuples(t, db, tbl); got != deadBefore[tbl] {
			t.Errorf("%s: dead tuples %d → %d after a dry run", tbl, deadBefore[tbl], got)
		}
	}
	if got := pgcluster.Scalar[string](t, shared, db, oidsQuery); got != oidsBefore {
		t.Errorf("index OIDs changed by a dry run:\n%s\n%s", oidsBefore, got)
	}
	if !strings.HasPrefix(vacPlan.Summary, "dry run: would VACUUM 3 of 4 tables") {
		t.Errorf("summary %q", vacPlan.Summary)
	}
	for _, p := range vacPlan.Plan {
		if p.Reason == "" || p.Figures["dead_tuples"] == nil || p.Figures["dead_tuple_threshold"] == nil || !slices.Contains(seed.Tables, p.Object) {
			t.Errorf("planned statement without object, reason or figures: %+v", p)
		}
	}
	if len(idxPlan.Plan) == 0 {
		t.Fatalf("index_rebuild planned nothing: %s", idxPlan.Summary)
	}
	for _, p := range idxPlan.Plan {
		if p.Object == "" || p.Reason == "" || p.Figures["high_threshold_pct"] == nil {
			t.Errorf("planned statement without object, reason or figures: %+v", p)
		}
	}

	// The real runs send exactly what was planned (index_rebuild first: the
	// VACUUMs of mvcc_cleanup change what pgstatindex finds).
	_, idxCmds, err = e.runLogged(t, driver.Request{Task: domain.TaskIndexRebuild, Options: rebuildOpts})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sorted(statementsLike(idxCmds, "REINDEX")), sorted(planStatements(idxPlan.Plan)); !slices.Equal(got, want) {
		t.Errorf("index_rebuild ran %v, planned %v", got, want)
	}
	realVac, vacCmds, err := e.runLogged(t, driver.Request{Task: domain.TaskMVCCCleanup})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sorted(statementsLike(vacCmds, "VACUUM")), sorted(planStatements(vacPlan.Plan)); !slices.Equal(got, want) {
		t.Errorf("mvcc_cleanup ran %v, planned %v", got, want)
	}
	var worked []string
	for _, w := range detailsJSON(t, realVac)["tables"].([]any) {
		worked = append(worked, w.(map[string]any)["table"].(string))
	}
	var planned []string
	for _, p := range vacPlan.Plan {
		planned = append(planned, p.Object)
	}
	if !slices.Equal(sorted(worked), sorted(planned)) {
		t.Errorf("mvcc_cleanup worked on %v, the plan listed %v", worked, planned)
	}
}

// TestDryRunDoesNotCreateExtensions: a dry run of consistency_check on a
// database without amcheck plans its creation and the checks, creates
// nothing and checks nothing.
func TestDryRunDoesNotCreateExtensions(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Exec(t, db, `CREATE TABLE public.a (id int PRIMARY KEY)`)
	e := newEnv(t, shared, db)
	res, cmds, err := e.runLogged(t, driver.Request{Task: domain.TaskConsistencyCheck, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := pgcluster.Scalar[int64](t, shared, db, `SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'`); n != 0 {
		t.Fatal("a dry run created amcheck")
	}
	if len(statementsLike(cmds, "CREATE")) != 0 || len(statementsLike(cmds, "SELECT \"themis_ext\".\"bt_index_check\"")) != 0 {
		t.Errorf("the dry run sent %v", statementsLike(cmds, ""))
	}
	if len(res.Plan) < 3 || !strings.HasPrefix(res.Plan[1].Statement, "CREATE EXTENSION IF NOT EXISTS \"amcheck\"") || res.Plan[1].Object != "amcheck" {
		t.Fatalf("plan %+v", res.Plan)
	}
	found := false
	for _, p := range res.Plan {
		if p.Object == "public.a_pkey" && strings.Contains(p.Statement, "bt_index_check") {
			found = true
		}
	}
	if !found || !strings.HasPrefix(res.Summary, "dry run: would check") {
		t.Errorf("public.a_pkey not planned (%s)", res.Summary)
	}
	// Light tasks cannot be planned.
	if _, _, err := e.runLogged(t, driver.Request{Task: domain.TaskQuotaCheck, DryRun: true}); permanentKind(err) != driver.KindInvalidInput {
		t.Errorf("dry run of quota_check: %v", err)
	}
}

// TestRealRunStatementsAllInCommandLog: every maintenance statement a real
// mvcc_cleanup sends (pg_stat_statements) is in its command log, with its
// object.
func TestRealRunStatementsAllInCommandLog(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	seedDead(t, shared, db, 4)
	shared.Exec(t, db, `CREATE EXTENSION pg_stat_statements`)
	e := newEnv(t, shared, db)
	resetStatements(t, db)
	_, cmds, err := e.runLogged(t, driver.Request{Task: domain.TaskMVCCCleanup, Options: domain.TaskOptions{"dead_tuple_threshold": int64(50)}})
	if err != nil {
		t.Fatal(err)
	}
	logged := map[string]string{}
	for _, c := range cmds {
		logged[c.Statement] = c.Object
	}
	vacuums := 0
	for _, q := range statementsSeen(t, db) {
		if readOnlyStatement(q) {
			continue
		}
		if strings.HasPrefix(q, "CREATE EXTENSION pg_stat_statements") {
			continue
		}
		obj, ok := logged[q]
		if !ok {
			t.Errorf("%q ran and is not in the command log", q)
			continue
		}
		if strings.HasPrefix(q, "VACUUM") {
			vacuums++
			if !strings.HasPrefix(obj, "public.d") {
				t.Errorf("%q logged with object %q", q, obj)
			}
		}
	}
	if vacuums != 4 {
		t.Errorf("%d VACUUMs seen, want 4", vacuums)
	}
}

// TestIndexRebuildCheapFirst: every candidate's bloat is estimated from
// catalog statistics; pgstatindex runs only on those the estimate puts at
// low_threshold_pct or more, so a fresh index is never read whole.
func TestIndexRebuildCheapFirst(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Seed(t, db, pgcluster.SeedOptions{Tables: 2, Rows: 20000})
	shared.Exec(t, db, `CREATE TABLE public.fresh (id bigint PRIMARY KEY, v int NOT NULL);
		INSERT INTO public.fresh SELECT g, g FROM generate_series(1, 30000) g;
		CREATE INDEX fresh_v_idx ON public.fresh (v); ANALYZE public.fresh`)
	shared.Exec(t, db, `CREATE EXTENSION pg_stat_statements; CREATE EXTENSION pgstattuple`)
	e := newEnv(t, shared, db)
	resetStatements(t, db)
	res, _, err := e.runLogged(t, driver.Request{Task: domain.TaskIndexRebuild, Options: domain.TaskOptions{"min_size_bytes": int64(64 << 10)}})
	if err != nil {
		t.Fatal(err)
	}
	d := detailsJSON(t, res)
	estimated, measured, candidates := num(t, d, "estimated"), num(t, d, "measured_exactly"), num(t, d, "candidates")
	t.Logf("%s: %v candidates, %v decided by the estimate, %v measured exactly", res.Summary, candidates, estimated, measured)
	if estimated < 2 || measured < 1 || estimated+measured != candidates {
		t.Errorf("estimated %v + measured %v, %v candidates: want the two fresh indexes estimated only and the bloated ones measured", estimated, measured, candidates)
	}
	var calls int64
	for _, q := range statementsSeen(t, db) {
		if strings.Contains(q, "pgstatindex") {
			calls += pgcluster.Scalar[int64](t, shared, db, `SELECT sum(calls)::int8 FROM pg_stat_statements
				WHERE query = $1 AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`, q)
		}
	}
	if calls != int64(measured) {
		t.Errorf("pgstatindex ran %d times, measured_exactly = %v", calls, measured)
	}
	for _, x := range d["indexes"].([]any) {
		if ix := x.(map[string]any)["index"].(string); strings.HasPrefix(ix, "public.fresh") {
			t.Errorf("%s rebuilt although fresh", ix)
		}
	}
}

// TestDryRunOrphanCleanupAndBackupVerification: orphan_cleanup plans the
// drop of an invalid index and the removal of a stale scratch restore and
// does neither; backup_verification plans its pg_basebackup command line
// and verification steps and takes no backup.
func TestDryRunOrphanCleanupAndBackupVerification(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Exec(t, db, `CREATE TABLE public.dup AS SELECT g % 10 AS k FROM generate_series(1, 1000) g`)
	if err := shared.ExecContext(context.Background(), db, `CREATE UNIQUE INDEX CONCURRENTLY dup_k ON public.dup (k)`); err == nil {
		t.Fatal("CREATE UNIQUE INDEX CONCURRENTLY over duplicates succeeded")
	}
	e := newEnv(t, shared, db)
	stale := e.target.ScratchDir + "/themis-restore-123"
	mkStale(t, stale)
	res, _, err := e.runLogged(t, driver.Request{Task: domain.TaskOrphanCleanup, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := invalidIndexes(t, shared, db); n != 1 {
		t.Errorf("%d invalid indexes after a dry run, want 1", n)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Errorf("the stale scratch restore was removed by a dry run: %v", err)
	}
	got := planStatements(res.Plan)
	want := []string{`DROP INDEX CONCURRENTLY IF EXISTS "public"."dup_k"`, "remove " + stale}
	if !slices.Equal(got, want) || res.Plan[0].Object != "public.dup_k" {
		t.Errorf("plan %v, want %v", got, want)
	}
	if res.Summary != "dry run: would drop 1 invalid index(es) and remove 1 stale director(ies)" {
		t.Errorf("summary %q", res.Summary)
	}

	e = newEnv(t, shared, db) // a scratch directory of its own
	res, _, err = e.runLogged(t, driver.Request{Task: domain.TaskBackupVerification, DryRun: true, Options: domain.TaskOptions{"method": "pg_basebackup"}})
	if err != nil {
		t.Fatal(err)
	}
	got = planStatements(res.Plan)
	if len(got) < 4 || !strings.HasPrefix(got[0], "pg_basebackup -D "+e.target.BackupDir) || !strings.Contains(got[0], "-X stream") ||
		!strings.HasPrefix(got[1], "pg_verifybackup ") {
		t.Errorf("plan %q", got)
	}
	if entries, _ := os.ReadDir(e.target.BackupDir + "/" + e.target.Name); len(entries) != 0 {
		t.Errorf("a dry run left %d entries in the backup directory", len(entries))
	}
	if !strings.HasPrefix(res.Summary, "dry run: would take a pg_basebackup backup") {
		t.Errorf("summary %q", res.Summary)
	}
}
