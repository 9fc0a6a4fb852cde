package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

func invalidIndexes(t *testing.T, c *pgcluster.Cluster, db string) int64 {
	t.Helper()
	return pgcluster.Scalar[int64](t, c, db, `SELECT count(*) FROM pg_index WHERE NOT indisvalid`)
}

// requireNoRebuildLeftovers checks that a stopped REINDEX CONCURRENTLY
// left neither a _ccnew/_ccold copy nor an invalid index (after says what
// stopped it).
func requireNoRebuildLeftovers(t *testing.T, c *pgcluster.Cluster, db, after string) {
	t.Helper()
	if n := pgcluster.Scalar[int64](t, c, db, `SELECT count(*) FROM pg_class WHERE relname LIKE '%\_cc%'`); n != 0 {
		t.Errorf("%d _ccnew/_ccold leftovers after %s", n, after)
	}
	if n := invalidIndexes(t, c, db); n != 0 {
		t.Errorf("%d invalid indexes after %s", n, after)
	}
}

// TestFragmentationAndRebuild: the seeded primary key (80 % of its entries
// dead, then vacuumed away, so its leaf pages are mostly empty) is reported
// HIGH and rebuilt smaller; a freshly built index is left alone.
func TestFragmentationAndRebuild(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Seed(t, db, pgcluster.SeedOptions{Tables: 1, Rows: 80000, DeletePct: 80, UpdatePct: -1})
	shared.Exec(t, db, `VACUUM public.seed_1`)
	shared.Exec(t, db, `CREATE TABLE public.fresh AS SELECT g AS id FROM generate_series(1, 100000) g`)
	shared.Exec(t, db, `CREATE INDEX fresh_id ON public.fresh (id)`)
	shared.Exec(t, db, `ANALYZE public.fresh`)
	e := newEnv(t, shared, db)

	res := e.mustRun(domain.TaskFragmentationMonitoring, nil)
	t.Log(res.Summary)
	d := detailsJSON(t, res)
	if d["method"] != "pgstattuple" {
		t.Errorf("method = %v, want pgstattuple (superuser, extension available)", d["method"])
	}
	if !hasAlert(res, domain.AlertHigh, "public.seed_1_pkey") {
		t.Errorf("no HIGH alert for public.seed_1_pkey: %+v", res.Alerts)
	}
	if hasAlert(res, domain.AlertHigh, "public.fresh_id") {
		t.Errorf("freshly built index reported HIGH: %+v", res.Alerts)
	}
	idx := e.mustRun(domain.TaskIndexFragmentationReport, nil)
	for _, rel := range detailsJSON(t, idx)["relations"].([]any) {
		if rel.(map[string]any)["kind"] != "index" {
			t.Errorf("index report lists a %v", rel.(map[string]any)["kind"])
		}
	}

	before := shared.RelationSize(t, db, "public.seed_1_pkey")
	res = e.mustRun(domain.TaskIndexRebuild, domain.TaskOptions{"high_threshold_pct": 30.0})
	after := shared.RelationSize(t, db, "public.seed_1_pkey")
	t.Logf("%s; seed_1_pkey %d → %d bytes", res.Summary, before, after)
	if after >= before/2 {
		t.Errorf("seed_1_pkey: %d → %d bytes, want it at least halved", before, after)
	}
	rebuilt := map[string]bool{}
	for _, x := range detailsJSON(t, res)["indexes"].([]any) {
		rebuilt[x.(map[string]any)["index"].(string)] = true
	}
	if !rebuilt["public.seed_1_pkey"] || rebuilt["public.fresh_id"] {
		t.Errorf("rebuilt %v; want seed_1_pkey and not fresh_id", rebuilt)
	}
	if n := invalidIndexes(t, shared, db); n != 0 {
		t.Errorf("%d invalid indexes after the rebuild", n)
	}
	// The rebuilt index is no longer over the threshold.
	res = e.mustRun(domain.TaskIndexReorganize, nil)
	if !strings.HasPrefix(res.Summary, "no index at or above") {
		t.Errorf("second rebuild: %s", res.Summary)
	}
}

// TestIndexRebuildWholeTableOrEachIndex: at high_threshold_pct=0 nothing is
// measured; a table all of whose indexes are chosen gets one REINDEX TABLE
// CONCURRENTLY (its TOAST index included), a table with an index too small
// to choose gets REINDEX INDEX CONCURRENTLY of the chosen one only.
func TestIndexRebuildWholeTableOrEachIndex(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Exec(t, db, `CREATE TABLE public.whole AS SELECT g AS id, g % 1000 AS k, repeat('x', 10) AS note FROM generate_series(1, 120000) g`)
	shared.Exec(t, db, `CREATE INDEX whole_id ON public.whole (id)`)
	shared.Exec(t, db, `CREATE INDEX whole_k ON public.whole (k, id)`)
	shared.Exec(t, db, `CREATE TABLE public.part AS SELECT g AS id, g % 10 AS k FROM generate_series(1, 120000) g`)
	shared.Exec(t, db, `CREATE INDEX part_id ON public.part (id)`)
	shared.Exec(t, db, `CREATE INDEX part_small ON public.part (id) WHERE k = 0 AND id < 1000`)
	shared.Exec(t, db, `ANALYZE`)
	filenode := func(rel string) int64 {
		return pgcluster.Scalar[int64](t, shared, db, `SELECT pg_relation_filenode(to_regclass($1))::int8`, rel)
	}
	toastIndex := pgcluster.Scalar[string](t, shared, db, `SELECT i.indexrelid::regclass::text FROM pg_index i
		WHERE i.indrelid = (SELECT reltoastrelid FROM pg_class WHERE oid = 'public.whole'::regclass)`)
	rels := []string{"public.whole_id", "public.whole_k", "public.part_id", "public.part_small", toastIndex}
	before := map[string]int64{}
	for _, rel := range rels {
		before[rel] = filenode(rel)
	}
	e := newEnv(t, shared, db)

	res := e.mustRun(domain.TaskIndexRebuild, domain.TaskOptions{"high_threshold_pct": 0.0})
	t.Log(res.Summary)
	d := detailsJSON(t, res)
	if d["measurement_method"] != "not measured (high_threshold_pct=0: every candidate is rebuilt)" {
		t.Errorf("measurement_method = %v", d["measurement_method"])
	}
	if d["reindex_table_statements"] != 1.0 || d["reindex_index_statements"] != 1.0 || d["rebuilt"] != 3.0 {
		t.Errorf("statements: table %v, index %v, rebuilt %v; want 1, 1, 3", d["reindex_table_statements"], d["reindex_index_statements"], d["rebuilt"])
	}
	stmt := map[string]string{}
	for _, x := range d["indexes"].([]any) {
		m := x.(map[string]any)
		stmt[m["index"].(string)] = m["statement"].(string)
	}
	want := map[string]string{
		"public.whole_id": "REINDEX TABLE CONCURRENTLY public.whole",
		"public.whole_k":  "REINDEX TABLE CONCURRENTLY public.whole",
		"public.part_id":  "REINDEX INDEX CONCURRENTLY public.part_id",
	}
	for ix, w := range want {
		if stmt[ix] != w {
			t.Errorf("%s rebuilt by %q, want %q", ix, stmt[ix], w)
		}
	}
	if len(stmt) != len(want) {
		t.Errorf("rebuilt %v, want exactly %v", stmt, want)
	}
	for _, rel := range rels {
		changed := filenode(rel) != before[rel]
		if wantChanged := rel != "public.part_small"; changed != wantChanged {
			t.Errorf("%s rebuilt = %v, want %v", rel, changed, wantChanged)
		}
	}
	if n := invalidIndexes(t, shared, db); n != 0 {
		t.Errorf("%d invalid indexes after the rebuild", n)
	}
	// min_size_bytes above every index: nothing is a candidate.
	res = e.mustRun(domain.TaskIndexRebuild, domain.TaskOptions{"high_threshold_pct": 0.0, "min_size_bytes": int64(1 << 40)})
	if d := detailsJSON(t, res); d["candidates"] != 0.0 || d["rebuilt"] != 0.0 || !strings.HasPrefix(res.Summary, "no btree index of at least ") {
		t.Errorf("min_size_bytes=1TiB: %s (candidates %v)", res.Summary, d["candidates"])
	}
}

// TestFragmentationFallsBackToEstimate: a role that can neither create nor
// find pgstattuple gets the statistics estimate, which still flags the
// bloated index.
func TestFragmentationFallsBackToEstimate(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Seed(t, db, pgcluster.SeedOptions{Tables: 1, Rows: 80000, DeletePct: 80, UpdatePct: -1})
	role := db + "_frag_monitor" // roles are cluster-wide: one per database, so -count=N works
	shared.Exec(t, db, `CREATE ROLE `+pgx.Identifier{role}.Sanitize()+` LOGIN`)
	shared.Exec(t, db, `GRANT SELECT ON ALL TABLES IN SCHEMA public TO `+pgx.Identifier{role}.Sanitize())
	e := newEnv(t, shared, db)
	e.target.DSN = strings.Replace(shared.DSN(db), "postgres@", role+"@", 1)
	res := e.mustRun(domain.TaskFragmentationMonitoring, nil)
	t.Log(res.Summary)
	d := detailsJSON(t, res)
	if d["method"] != "statistics_estimate" || !strings.Contains(d["method_reason"].(string), "pgstattuple") {
		t.Errorf("method %v (%v), want statistics_estimate with the reason", d["method"], d["method_reason"])
	}
	if !hasAlert(res, domain.AlertHigh, "public.seed_1_pkey") {
		t.Errorf("estimate missed the bloated primary key: %+v", d["relations"])
	}
}

// TestIndexRebuildCancelDropsLeftover cancels a REINDEX CONCURRENTLY that
// waits for an open transaction and expects the invalid _ccnew copy gone.
func TestIndexRebuildCancelDropsLeftover(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Seed(t, db, pgcluster.SeedOptions{Tables: 1, Rows: 80000, DeletePct: 80, UpdatePct: -1})
	shared.Exec(t, db, `VACUUM public.seed_1`)
	e := newEnv(t, shared, db)
	bg := context.Background()
	blocker := shared.Conn(t, db)
	tx, err := blocker.Begin(bg)
	if err != nil {
		t.Fatal(err)
	}
	// An open writing transaction: REINDEX CONCURRENTLY builds its _ccnew
	// copy, then waits for this transaction before it can validate it.
	if _, err := tx.Exec(bg, `INSERT INTO public.seed_1 VALUES (900000, 1, 'new', 1, now(), 'x')`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() {
		_, _, err := e.run(ctx, domain.TaskIndexRebuild, domain.TaskOptions{"lock_timeout_ms": int64(600_000)}, nil)
		done <- err
	}()
	waitFor(t, 30*time.Second, "the _ccnew index to appear", func() bool {
		return pgcluster.Scalar[int64](t, shared, db, `SELECT count(*) FROM pg_class WHERE relname LIKE '%\_ccnew%'`) > 0
	})
	waitFor(t, 10*time.Second, "the REINDEX to wait", func() bool {
		return pgcluster.Scalar[int64](t, shared, db, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'REINDEX%' AND wait_event_type = 'Lock'`, appName(db, domain.TaskIndexRebuild, 1)) == 1
	})
	cancel()
	// The drop of the leftover waits for the same transaction; end it soon.
	committed := make(chan struct{})
	time.AfterFunc(500*time.Millisecond, func() { _ = tx.Commit(bg); close(committed) })
	t.Cleanup(func() { <-committed }) // before the connection is closed
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v, want context.Canceled", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	requireNoRebuildLeftovers(t, shared, db, "cancellation")
}

func TestOrphanCleanupDropsInvalidIndex(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Exec(t, db, `CREATE TABLE public.dup AS SELECT g % 10 AS k FROM generate_series(1, 1000) g`)
	// A unique index built concurrently over duplicates fails and leaves an
	// invalid index behind.
	err := shared.ExecContext(context.Background(), db, `CREATE UNIQUE INDEX CONCURRENTLY dup_k ON public.dup (k)`)
	if err == nil {
		t.Fatal("CREATE UNIQUE INDEX CONCURRENTLY over duplicates succeeded")
	}
	if n := invalidIndexes(t, shared, db); n != 1 {
		t.Fatalf("%d invalid indexes, want 1", n)
	}
	e := newEnv(t, shared, db)
	// A stale scratch restore left by a crashed run is removed too.
	stale := e.target.ScratchDir + "/themis-restore-123"
	mkStale(t, stale)
	res := e.mustRun(domain.TaskOrphanCleanup, nil)
	t.Log(res.Summary)
	if n := invalidIndexes(t, shared, db); n != 0 {
		t.Errorf("%d invalid indexes after orphan_cleanup", n)
	}
	if d := detailsJSON(t, res); d["dropped"].(float64) != 1 || len(d["removed_paths"].([]any)) != 1 {
		t.Errorf("details %v", d)
	}
}

func TestVectorReindexWithoutExtension(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	e := newEnv(t, shared, db)
	res := e.mustRun(domain.TaskVectorReindex, nil)
	if !strings.HasPrefix(res.Summary, "no vector indexes") {
		t.Errorf("summary %q", res.Summary)
	}
}

// TestIndexRebuildResumesFromFirstCheckpoint: attempt 1 of index_rebuild
// over many small tables (a REINDEX TABLE CONCURRENTLY each, a few ms) is
// cancelled after ten indexes. Its worker heartbeats at most once a second
// and a killed worker loses what it had not sent, so the server may hold
// only the first checkpoint attempt 1 reported: attempt 2, given that one,
// must still rebuild none of the indexes attempt 1 rebuilt (each keeps the
// filenode attempt 1 gave it) and finish the others.
func TestIndexRebuildResumesFromFirstCheckpoint(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Exec(t, db, `DO $$
BEGIN
  FOR i IN 1..30 LOOP
    EXECUTE format('CREATE TABLE public.%I (id bigint PRIMARY KEY, k integer NOT NULL, note text NOT NULL)', 'rt_' || lpad(i::text, 3, '0'));
    EXECUTE format('CREATE INDEX %I ON public.%I (k)', 'rt_' || lpad(i::text, 3, '0') || '_k', 'rt_' || lpad(i::text, 3, '0'));
    EXECUTE format('INSERT INTO public.%I SELECT g, g %% 500, md5(g::text) FROM generate_series(1, 2000) g', 'rt_' || lpad(i::text, 3, '0'));
  END LOOP;
END $$`)
	filenodes := func() map[string]int64 {
		conn := shared.Conn(t, db)
		rows, err := conn.Query(context.Background(), `SELECT n.nspname || '.' || c.relname, pg_relation_filenode(c.oid)::int8
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'i' AND n.nspname = 'public'`)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for rows.Next() {
			var name string
			var fn int64
			if err := rows.Scan(&name, &fn); err != nil {
				t.Fatal(err)
			}
			out[name] = fn
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		return out
	}
	opts := domain.TaskOptions{"parallelism": int64(1), "high_threshold_pct": 0.0, "min_size_bytes": int64(0)}
	e := newEnv(t, shared, db)
	before := filenodes()

	// Attempt 1, cancelled once ten indexes are checkpointed.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a1, stop := context.WithCancel(ctx)
	rec := &recorder{}
	var mu sync.Mutex
	var first json.RawMessage
	var last []string
	_, err := e.d.Run(a1, driver.Request{
		Target: e.target, Task: domain.TaskIndexRebuild, Options: opts, JobID: "job-" + db, Attempt: 1, History: e.history,
		Progress: func(p driver.Progress) {
			rec.report(p)
			if p.Checkpoint == nil {
				return
			}
			b, err := json.Marshal(p.Checkpoint)
			if err != nil {
				t.Errorf("checkpoint does not encode: %v", err)
				return
			}
			var cp struct{ Done []string }
			_ = json.Unmarshal(b, &cp)
			mu.Lock()
			if first == nil {
				first = b
				// The server has it before any index is touched.
				if !p.Durable {
					t.Errorf("attempt 1's first checkpoint (%s) is not Durable", p.Note)
				}
			}
			last = cp.Done
			mu.Unlock()
			if len(cp.Done) >= 10 {
				stop()
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("attempt 1: %v, want it cancelled mid-way", err)
	}
	mu.Lock()
	cp, done := first, last
	mu.Unlock()
	if len(done) < 10 {
		t.Fatalf("attempt 1 checkpointed %d indexes, want 10", len(done))
	}
	after1 := filenodes()

	// Attempt 2 on another worker (a driver of its own).
	e2 := newEnv(t, shared, db)
	res, err := e2.d.Run(ctx, driver.Request{
		Target: e.target, Task: domain.TaskIndexRebuild, Options: opts, JobID: "job-" + db, Attempt: 2,
		Checkpoint: cp, History: e2.history,
	})
	if err != nil {
		t.Fatalf("attempt 2: %v", err)
	}
	after2 := filenodes()
	var redone []string
	for _, ix := range done {
		if after2[ix] != after1[ix] {
			redone = append(redone, ix)
		}
	}
	notRebuilt := 0
	for ix, fn := range after2 {
		if fn == before[ix] {
			notRebuilt++
		}
	}
	t.Logf("attempt 1 rebuilt %d indexes; attempt 2, from attempt 1's first checkpoint, rebuilt %d of them again; %s", len(done), len(redone), res.Summary)
	if len(redone) > 0 {
		t.Errorf("attempt 2 rebuilt again %d of the %d indexes attempt 1 rebuilt: %v", len(redone), len(done), redone)
	}
	if notRebuilt > 0 {
		t.Errorf("%d of %d indexes rebuilt by neither attempt", notRebuilt, len(after2))
	}
	d := detailsJSON(t, res)
	if n := len(d["indexes"].([]any)); n != len(after2) {
		t.Errorf("attempt 2 reports %d indexes, want %d", n, len(after2))
	}
	if n := invalidIndexes(t, shared, db); n != 0 {
		t.Errorf("%d invalid indexes left", n)
	}
}
