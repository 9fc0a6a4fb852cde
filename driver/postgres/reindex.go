package postgres

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgerrcode"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// rebuildResult is the outcome of one REINDEX INDEX CONCURRENTLY.
type rebuildResult struct {
	Index           string   `json:"index"`
	Table           string   `json:"table"`
	Statement       string   `json:"statement,omitempty"`
	BloatPct        float64  `json:"bloat_pct,omitempty"`
	Method          string   `json:"method,omitempty"`
	SizeBytesBefore int64    `json:"size_bytes_before"`
	SizeBytesAfter  int64    `json:"size_bytes_after"`
	DurationMs      int64    `json:"duration_ms"`
	Skipped         string   `json:"skipped,omitempty"`
	Note            string   `json:"note,omitempty"`
	CleanedUp       []string `json:"cleaned_up,omitempty"`
}

// leftoverName matches the transient indexes REINDEX CONCURRENTLY creates:
// <name>_ccnew[N] (the copy being built) and <name>_ccold[N] (the original
// after the swap); the prefix may be truncated to fit NAMEDATALEN.
var leftoverName = regexp.MustCompile(`_cc(new|old)[0-9]*$`)

// invalidIndexes returns the invalid indexes of table and of its TOAST
// table (OID → rel).
func (r *run) invalidIndexes(ctx context.Context, table uint32) (map[uint32]rel, error) {
	rows, err := r.pool.Query(ctx, `
		SELECT c.oid::int8, n.nspname, c.relname
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE (i.indrelid = $1 OR i.indrelid = (SELECT reltoastrelid FROM pg_class WHERE oid = $1)) AND NOT i.indisvalid`, int64(table))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uint32]rel{}
	for rows.Next() {
		var x rel
		var oid int64
		if err := rows.Scan(&oid, &x.Schema, &x.Name); err != nil {
			return nil, err
		}
		x.OID = uint32(oid)
		out[x.OID] = x
	}
	return out, rows.Err()
}

// reindexConcurrently runs sql, a REINDEX INDEX or REINDEX TABLE
// CONCURRENTLY of (indexes of) table, on s, heartbeating tr while it runs.
// Locks: SHARE UPDATE EXCLUSIVE on the table and its indexes for the
// duration (reads and writes continue; DDL and VACUUM wait), and short
// waits for transactions that could still use an old index, all bounded by
// lock_timeout. If it fails or is cancelled, the invalid _ccnew copies (or
// _ccold originals) it leaves behind, that is the invalid indexes of the
// table and its TOAST table not in before, are dropped with DROP INDEX
// CONCURRENTLY on a clean-up context.
func reindexConcurrently[R any](ctx context.Context, r *run, s *session, table uint32, before map[uint32]rel, sql string, to sessionSettings, tr *tracker[R], note string) (cleaned []string, err error) {
	err = tr.during(note, func() error { return s.exec(ctx, sql) })
	if err == nil {
		return nil, nil
	}
	cctx, cancel := r.cleanupContext(ctx)
	defer cancel()
	cleaned, cerr := r.dropLeftovers(cctx, table, before, to)
	if ctx.Err() != nil {
		return cleaned, ctx.Err()
	}
	if cerr != nil {
		return cleaned, fmt.Errorf("%w (and clean-up of its leftover index failed: %v; orphan_cleanup will drop it)", err, cerr)
	}
	return cleaned, err
}

// dropLeftovers drops invalid REINDEX CONCURRENTLY leftovers on table that
// were not there before. A lock that is not granted is retried until ctx
// ends (the transaction that blocked the rebuild may block the drop too).
func (r *run) dropLeftovers(ctx context.Context, table uint32, before map[uint32]rel, to sessionSettings) ([]string, error) {
	after, err := r.invalidIndexes(ctx, table)
	if err != nil {
		return nil, err
	}
	var dropped []string
	for oid, x := range after {
		if _, old := before[oid]; old || !leftoverName.MatchString(x.Name) {
			continue
		}
		if err := r.dropIndexConcurrently(ctx, x, to, true); err != nil {
			return dropped, fmt.Errorf("drop %s: %w", x, err)
		}
		dropped = append(dropped, x.String())
	}
	sort.Strings(dropped)
	return dropped, nil
}

// dropIndexConcurrently runs DROP INDEX CONCURRENTLY IF EXISTS on its own
// session. Locks: SHARE UPDATE EXCLUSIVE on the table, then a wait for every
// transaction using the table, bounded by lock_timeout. With persist, a lock
// timeout is retried once a second until ctx ends.
func (r *run) dropIndexConcurrently(ctx context.Context, x rel, to sessionSettings, persist bool) error {
	for {
		s, err := r.session(ctx, to)
		if err != nil {
			return err
		}
		err = s.exec(ctx, "DROP INDEX CONCURRENTLY IF EXISTS "+x.ident())
		s.release()
		if err == nil || !persist || !isLockTimeout(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (lock still not available when the clean-up time ran out)", err)
		case <-time.After(time.Second):
		}
	}
}

// indexRebuild (also index_reorganize: PostgreSQL has no in-place
// reorganise, and REINDEX CONCURRENTLY is the online way to compact an
// index) estimates the bloat of every valid btree index of at least
// min_size_bytes (default 1 MiB) outside the system schemas, measures
// those the estimate puts at low_threshold_pct or more exactly
// (pgstatindex; see chooseRebuilds) and rebuilds
// those at or above high_threshold_pct (default 30) with REINDEX INDEX
// CONCURRENTLY (at high_threshold_pct=0 nothing is measured: every one is
// rebuilt). Tables are worked on in parallel (parallelism, default 2), the
// one with the most index bytes first, the indexes of one table one after
// the other (two concurrent rebuilds on one table would wait on each
// other's locks); a table all of whose indexes are chosen gets a single
// REINDEX TABLE CONCURRENTLY instead (the same locks, one round of
// transactions and waits), unless rebuild_unit=index: then every index is
// its own statement and the throttle is consulted between the indexes of a
// table too. Indexes backing exclusion
// constraints cannot be rebuilt concurrently and are skipped.
func indexRebuild(ctx context.Context, r *run) (driver.Result, error) {
	if err := r.requirePrimary(); err != nil {
		return driver.Result{}, err
	}
	thr, err := floatOpt(r.opts(), "high_threshold_pct")
	if err != nil {
		return driver.Result{}, err
	}
	to, par, err := r.sessionOpts()
	if err != nil {
		return driver.Result{}, err
	}
	minBytes, err := intOpt(r.opts(), "min_size_bytes")
	if err != nil {
		return driver.Result{}, err
	}
	low, err := floatOpt(r.opts(), "low_threshold_pct")
	if err != nil {
		return driver.Result{}, err
	}
	unit, err := enumOpt(r.opts(), "rebuild_unit")
	if err != nil {
		return driver.Result{}, err
	}
	all, err := r.listIndexes(ctx, false)
	if err != nil {
		return driver.Result{}, err
	}
	var candidates []index
	for _, ix := range all {
		if ix.AccessMethod == "btree" && ix.Valid && !ix.Exclusion && (ix.SizeBytes < 0 || ix.SizeBytes >= minBytes) {
			candidates = append(candidates, ix)
		}
	}
	ch, err := r.chooseRebuilds(ctx, candidates, thr, low, minBytes)
	if err != nil {
		return driver.Result{}, err
	}
	chosen, bloat, method, why := ch.chosen, ch.bloat, ch.method, ch.why
	keys := make([]string, len(chosen))
	byTable := map[uint32][]index{}
	var tables []rel
	tableBytes := map[uint32]int64{}
	for i, ix := range chosen {
		keys[i] = ix.String()
		if _, ok := byTable[ix.Table.OID]; !ok {
			tables = append(tables, ix.Table)
		}
		byTable[ix.Table.OID] = append(byTable[ix.Table.OID], ix)
		tableBytes[ix.Table.OID] += ix.SizeBytes
	}
	// The table with the most index bytes first, so that no session is
	// left with a big table at the end.
	sort.SliceStable(tables, func(i, j int) bool { return tableBytes[tables[i].OID] > tableBytes[tables[j].OID] })
	// A table all of whose indexes are chosen gets one REINDEX TABLE
	// CONCURRENTLY, as reindexdb -t does: the same rebuilds and locks, with
	// one round of transactions and lock waits for the table instead of one
	// per index (it also rebuilds the table's TOAST index, which is small).
	indexesOf := map[uint32]int{}
	for _, ix := range all {
		indexesOf[ix.Table.OID]++
	}
	// With rebuild_unit=index every index is its own statement, and the
	// throttle is consulted between them as between tables.
	wholeTable := func(t rel, pending []index) bool {
		return unit != "index" && len(pending) == indexesOf[t.OID]
	}
	rb := &rebuilder{r: r, to: to, tr: newTracker[rebuildResult](r, keys), bloat: bloat}
	// An index planned by the previous attempt that has a new OID since
	// was rebuilt by it, though its checkpoint may not say so (the worker
	// died before the heartbeat went out, or while the statement ran).
	plan := make(map[string]uint32, len(chosen))
	for _, ix := range chosen {
		key := ix.String()
		plan[key] = ix.OID
		if !rb.tr.isDone(key) && rb.tr.changedSincePlan(key, ix.OID) {
			res := rebuildResult{Index: key, Table: ix.Table.String(), Method: bloat[ix.OID].Method,
				SizeBytesBefore: ix.SizeBytes, SizeBytesAfter: ix.SizeBytes, Note: "rebuilt by an earlier attempt"}
			rb.tr.finish(key, &res, "rebuilt by an earlier attempt: "+key)
		}
	}
	if len(chosen) > 0 {
		rb.tr.plan(plan, fmt.Sprintf("rebuilding %d index(es)", len(chosen)))
	}
	pendingOf := func(t rel) []index {
		var pending []index
		for _, ix := range byTable[t.OID] {
			if !rb.tr.isDone(ix.String()) {
				pending = append(pending, ix)
			}
		}
		return pending
	}
	// A unit is a table: its prediction is that of its REINDEX TABLE, or
	// of its indexes' REINDEX INDEX, as it will be run.
	u := units[rel]{
		key: rel.String,
		objects: func(t rel) []string {
			pending := pendingOf(t)
			if wholeTable(t, pending) {
				return []string{t.String()}
			}
			objs := make([]string, len(pending))
			for i, ix := range pending {
				objs[i] = ix.String()
			}
			return objs
		},
		left: func(t rel, reason string) {
			for _, ix := range pendingOf(t) {
				b := bloat[ix.OID]
				res := rebuildResult{Index: ix.String(), Table: t.String(), BloatPct: b.BloatPct, Method: b.Method,
					SizeBytesBefore: ix.SizeBytes, Skipped: reason}
				rb.tr.leave(res, "left "+res.Index+": "+reason)
			}
		},
	}
	err = forEachSession(ctx, r, par, to, tables, u, func(ctx context.Context, s *session, t rel) error {
		pending := pendingOf(t)
		if len(pending) == 0 {
			return nil
		}
		// Invalid indexes already on the table are not ours to drop; one
		// look per table (a successful rebuild leaves none behind).
		before, err := r.invalidIndexes(ctx, t.OID)
		if err != nil {
			return classify(ctx, err, "list invalid indexes of %s", t)
		}
		if wholeTable(t, pending) {
			ctx := withPlanNote(ctx, fmt.Sprintf("all %d index(es) of the table at or above %.0f%% bloat", len(pending), thr), rb.figures(pending, thr))
			return rb.rebuild(ctx, s, t, before, "REINDEX TABLE CONCURRENTLY "+t.ident(), "REINDEX TABLE CONCURRENTLY "+t.String(), pending)
		}
		for i, ix := range pending {
			if i > 0 && !r.dry() {
				p, err := r.pacerFor(ctx)
				if err == nil {
					err = r.budgetWait(ctx, p)
				}
				if err != nil {
					return err
				}
			}
			b := bloat[ix.OID]
			ctx := withPlanNote(ctx, fmt.Sprintf("%.1f%% bloat (%s) >= %.0f%%", b.BloatPct, b.Method, thr), rb.figures([]index{ix}, thr))
			if err := rb.rebuild(ctx, s, t, before, "REINDEX INDEX CONCURRENTLY "+ix.ident(), "REINDEX INDEX CONCURRENTLY "+ix.String(), []index{ix}); err != nil {
				return err
			}
		}
		return nil
	})
	tr, locked := rb.tr, rb.locked
	if err != nil {
		return driver.Result{}, err
	}
	if len(locked) > 0 {
		sort.Strings(locked)
		return driver.Result{}, fmt.Errorf("%s: %d index(es) not rebuilt, lock not available within lock_timeout (%d ms): %s; the others are checkpointed and a retry does only these",
			r.req.Task, len(locked), to.LockMs, joinNames(locked, 10))
	}
	results := tr.results()
	var before, after int64
	rebuilt, tableStmts, indexStmts := 0, map[string]bool{}, 0
	for _, x := range results {
		if strings.HasPrefix(x.Statement, "REINDEX TABLE") {
			tableStmts[x.Table] = true
		} else if x.Statement != "" {
			indexStmts++
		}
		if x.Skipped == "" {
			rebuilt++
			before += x.SizeBytesBefore
			after += x.SizeBytesAfter
		}
	}
	summary := fmt.Sprintf("no index at or above %.0f%% bloat among %d btree indexes of at least %s (%s)", thr, len(candidates), bytesHuman(minBytes), method)
	if len(candidates) == 0 {
		summary = fmt.Sprintf("no btree index of at least %s to rebuild", bytesHuman(minBytes))
	}
	if len(results) > 0 {
		summary = fmt.Sprintf("rebuilt %d index(es) at or above %.0f%% bloat with REINDEX CONCURRENTLY: %s → %s", rebuilt, thr, bytesHuman(before), bytesHuman(after))
	}
	if r.dry() {
		summary = drySummary("REINDEX", countSkipped(results, func(x rebuildResult) string { return x.Skipped }, skippedDryRun), len(candidates), "indexes")
	}
	details := map[string]any{
		"high_threshold_pct": thr, "low_threshold_pct": low, "min_size_bytes": minBytes, "candidates": len(candidates), "rebuilt": rebuilt,
		"estimated": ch.estimated, "measured_exactly": ch.measured,
		"size_bytes_before": before, "size_bytes_after": after, "reclaimed_bytes": before - after,
		"measurement_method": method, "parallelism": par,
		"rebuild_unit": unit, "reindex_table_statements": len(tableStmts), "reindex_index_statements": indexStmts, "lock_timeout_ms": to.LockMs,
		"statement_timeout_ms": to.StatementMs, "resumed": tr.resumed, "indexes": results,
	}
	if r.req.Task == domain.TaskIndexReorganize {
		details["note"] = "PostgreSQL has no in-place reorganise; REINDEX INDEX CONCURRENTLY is the online rebuild"
	}
	if len(ch.moderate) > 0 {
		// Ola Hallengren's reorganise tier: measured, reported, not rebuilt
		// (a rebuild costs the same whatever the bloat; see chooseRebuilds).
		details["moderate_tier"] = ch.moderate
	}
	if why != "" {
		details["method_reason"] = why
	}
	return driver.Result{Summary: summary, Details: details}, nil
}

// rebuilder runs index_rebuild's statements and records their outcome.
type rebuilder struct {
	r      *run
	to     sessionSettings
	tr     *tracker[rebuildResult]
	bloat  map[uint32]relBloat
	mu     sync.Mutex
	locked []string
}

// rebuild runs one REINDEX ... CONCURRENTLY statement (sql, described by
// label) that rebuilds ixs, all indexes of table t, on s. A dropped table
// or index is recorded as skipped and a lock not granted in time leaves ixs
// for a retry; any other failure is returned after the leftovers are gone.
func (rb *rebuilder) rebuild(ctx context.Context, s *session, t rel, before map[uint32]rel, sql, label string, ixs []index) error {
	start := time.Now()
	cleaned, err := reindexConcurrently(ctx, rb.r, s, t.OID, before, sql, rb.to, rb.tr, label)
	ms := time.Since(start).Milliseconds()
	results := make([]rebuildResult, len(ixs))
	idents := make([]string, len(ixs))
	for i, ix := range ixs {
		b := rb.bloat[ix.OID]
		results[i] = rebuildResult{Index: ix.String(), Table: t.String(), Statement: label, BloatPct: b.BloatPct, Method: b.Method,
			SizeBytesBefore: ix.SizeBytes, DurationMs: ms, CleanedUp: cleaned}
		idents[i] = ix.ident()
	}
	if err == nil && rb.r.dry() {
		for i := range results {
			results[i].Skipped, results[i].DurationMs = skippedDryRun, 0
			rb.tr.finish(results[i].Index, &results[i], "planned "+label)
		}
		return nil
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return ctx.Err()
	case isGone(err):
		for i := range results {
			results[i].Skipped = "dropped while the task ran"
			rb.tr.finish(results[i].Index, &results[i], "skipped "+results[i].Index)
		}
		return nil
	case isLockTimeout(err):
		rb.mu.Lock()
		for _, x := range results {
			rb.locked = append(rb.locked, x.Index)
		}
		rb.mu.Unlock()
		rb.tr.heartbeat(label + ": lock not available; left for a retry")
		return nil
	default:
		return classify(ctx, err, "%s", label)
	}
	// Sizes after are informational: the rebuild has succeeded whether or
	// not they can be read.
	var after []int64
	_ = s.queryRow(ctx, `SELECT array_agg(coalesce(pg_relation_size(to_regclass(u.x)), 0)::int8 ORDER BY u.o)
		FROM unnest($1::text[]) WITH ORDINALITY AS u(x, o)`, []any{idents}, &after)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for i := range min(len(after), len(results)) {
		results[i].SizeBytesAfter = after[i]
	}
	for i := range results {
		x := &results[i]
		rb.tr.finish(x.Index, x, fmt.Sprintf("rebuilt %s: %s → %s", x.Index, bytesHuman(x.SizeBytesBefore), bytesHuman(x.SizeBytesAfter)))
	}
	return nil
}

// figures are the plan figures of a rebuild of ixs: each index's bloat,
// how it was measured, and the threshold.
func (rb *rebuilder) figures(ixs []index, thr float64) map[string]any {
	f := map[string]any{"high_threshold_pct": thr}
	if len(ixs) == 1 {
		b := rb.bloat[ixs[0].OID]
		f["bloat_pct"], f["method"], f["size_bytes"] = b.BloatPct, b.Method, ixs[0].SizeBytes
		return f
	}
	per := map[string]float64{}
	for _, ix := range ixs {
		per[ix.String()] = rb.bloat[ix.OID].BloatPct
	}
	f["bloat_pct"] = per
	return f
}

// methodNotMeasured names the choice at high_threshold_pct=0.
const methodNotMeasured = "not measured (high_threshold_pct=0: every candidate is rebuilt)"

// rebuildChoice is what chooseRebuilds decided.
type rebuildChoice struct {
	chosen      []index
	bloat       map[uint32]relBloat
	method, why string
	// estimated counts the candidates decided by the catalog estimate
	// alone, measured those measured exactly (pgstatindex).
	estimated, measured int
	// moderate are the indexes measured between low_threshold_pct and
	// high_threshold_pct, with their bloat.
	moderate map[string]float64
}

// chooseRebuilds returns the candidates at or above thr percent bloat, with
// their measurements, and how they were measured. Cheap first: every
// candidate's bloat is estimated from catalog statistics (reltuples, key
// widths, fillfactor; no lock beyond a catalog read), and only those the
// estimate puts at low percent or more — or that have no usable statistics
// — are measured exactly with pgstatindex, which reads the whole index.
// Without pgstattuple the estimate decides. The tiers follow Ola
// Hallengren's IndexOptimize (5 % / 30 %): below low nothing is done;
// between low and thr the index is measured and reported (moderate) but
// not rebuilt — PostgreSQL has no in-place reorganise, and index_reorganize
// runs the same REINDEX CONCURRENTLY as index_rebuild, which costs as much
// whatever the bloat; at thr or more it is rebuilt. Measuring is the first
// fifth of the progress bar; a resumed attempt measures again (cheap next
// to rebuilding, and rebuilt indexes are no longer over the threshold). At
// thr=0 every candidate qualifies whatever its bloat, so nothing is
// measured: only the real sizes are read.
func (r *run) chooseRebuilds(ctx context.Context, candidates []index, thr, low float64, minBytes int64) (rebuildChoice, error) {
	ch := rebuildChoice{bloat: map[uint32]relBloat{}, moderate: map[string]float64{}}
	if thr == 0 {
		oids := make([]int64, len(candidates))
		for i, ix := range candidates {
			oids[i] = int64(ix.OID)
		}
		size := map[uint32]int64{}
		rows, err := r.pool.Query(ctx, `SELECT x, coalesce(pg_relation_size(x::oid), 0)::int8 FROM unnest($1::int8[]) AS x`, oids)
		if err != nil {
			return ch, classify(ctx, err, "read index sizes")
		}
		for rows.Next() {
			var oid, n int64
			if err := rows.Scan(&oid, &n); err != nil {
				rows.Close()
				return ch, classify(ctx, err, "read index sizes")
			}
			size[uint32(oid)] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return ch, classify(ctx, err, "read index sizes")
		}
		for _, ix := range candidates {
			if n := size[ix.OID]; n >= minBytes {
				ix.SizeBytes = n
				ch.chosen = append(ch.chosen, ix)
				ch.bloat[ix.OID] = relBloat{Relation: ix.String(), Kind: "index", SizeBytes: n, Method: methodNotMeasured}
			}
		}
		r.progress(20, fmt.Sprintf("%d of %d candidates chosen without measuring (high_threshold_pct=0)", len(ch.chosen), len(candidates)), nil)
		ch.method = methodNotMeasured
		return ch, nil
	}
	m, err := r.newMeasurer(ctx)
	if err != nil {
		return ch, err
	}
	for i, ix := range candidates {
		var b relBloat
		exact := m.schema != "" && low == 0
		if !exact {
			if b, err = m.indexEstimate(ctx, ix); err != nil {
				return ch, err
			}
			exact = m.schema != "" && (b.Skipped == noUsableStatistics || b.Skipped == "" && b.BloatPct >= low)
		}
		if exact {
			if b, err = m.index(ctx, ix); err != nil {
				return ch, err
			}
			ch.measured++
		} else {
			ch.estimated++
		}
		if b.Skipped == "" && b.SizeBytes >= minBytes {
			switch {
			case b.BloatPct >= thr:
				ix.SizeBytes = b.SizeBytes
				ch.chosen = append(ch.chosen, ix)
				ch.bloat[ix.OID] = b
			case b.BloatPct >= low:
				ch.moderate[ix.String()] = b.BloatPct
			}
		}
		r.progress(20*float64(i+1)/float64(len(candidates)), "measured "+ix.String(), nil)
	}
	ch.method, ch.why = m.method(), m.why
	return ch, nil
}

// vectorReindex rebuilds pgvector indexes (hnsw, ivfflat) with REINDEX
// INDEX CONCURRENTLY, one after the other (these builds are memory- and
// CPU-heavy), checkpointed per index. Without the vector extension it
// succeeds saying there are no vector indexes.
func vectorReindex(ctx context.Context, r *run) (driver.Result, error) {
	if _, ok, err := r.extensionSchema(ctx, "vector"); err != nil {
		return driver.Result{}, err
	} else if !ok {
		return driver.Result{Summary: "no vector indexes: the vector extension is not installed in this database",
			Details: map[string]any{"vector_indexes": 0, "extension": "not installed"}}, nil
	}
	if err := r.requirePrimary(); err != nil {
		return driver.Result{}, err
	}
	to, err := r.timeoutOpts()
	if err != nil {
		return driver.Result{}, err
	}
	all, err := r.listIndexes(ctx, false)
	if err != nil {
		return driver.Result{}, err
	}
	var vix []index
	var keys []string
	for _, ix := range all {
		if ix.AccessMethod == "hnsw" || ix.AccessMethod == "ivfflat" {
			vix = append(vix, ix)
			keys = append(keys, ix.String())
		}
	}
	if len(vix) == 0 {
		return driver.Result{Summary: "no vector indexes (hnsw or ivfflat) in this database", Details: map[string]any{"vector_indexes": 0}}, nil
	}
	tr := newTracker[rebuildResult](r, keys)
	s, err := r.session(ctx, to)
	if err != nil {
		return driver.Result{}, err
	}
	defer s.release()
	var locked []string
	for _, ix := range carriedFirst(vix, index.String, r.req.Budget.Carried) {
		key := ix.String()
		if tr.isDone(key) {
			continue
		}
		res := rebuildResult{Index: key, Table: ix.Table.String(), Method: ix.AccessMethod, SizeBytesBefore: ix.SizeBytes}
		pos := r.nextPos()
		if why := r.budgetGate(ctx, []string{key}); why != "" {
			r.leave(pos, key, why, false)
			res.Skipped = why
			tr.leave(res, "left "+key+": "+why)
			continue
		}
		before, err := r.invalidIndexes(ctx, ix.Table.OID)
		if err != nil {
			return driver.Result{}, classify(ctx, err, "list invalid indexes of %s", ix.Table)
		}
		start := time.Now()
		uctx, unitDone := r.unitContext(withPlanNote(ctx, "vector index ("+ix.AccessMethod+")", map[string]any{"size_bytes": ix.SizeBytes}))
		cleaned, err := reindexConcurrently(uctx, r, s, ix.Table.OID, before, "REINDEX INDEX CONCURRENTLY "+ix.ident(), to, tr, "REINDEX INDEX CONCURRENTLY "+key)
		res.DurationMs, res.CleanedUp = time.Since(start).Milliseconds(), cleaned
		if unitDone() {
			why := r.stoppedBy()
			r.leave(pos, key, why, true)
			res.Skipped = why
			tr.leave(res, "left "+key+": "+why)
			continue
		}
		if err == nil && r.dry() {
			res.Skipped, res.DurationMs = skippedDryRun, 0
			tr.finish(key, &res, "planned "+key)
			continue
		}
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return driver.Result{}, ctx.Err()
		case isGone(err):
			res.Skipped = "dropped while the task ran"
			tr.finish(key, &res, "skipped "+key)
			continue
		case isLockTimeout(err):
			locked = append(locked, key)
			continue
		default:
			return driver.Result{}, classify(ctx, err, "REINDEX INDEX CONCURRENTLY %s", key)
		}
		_ = s.queryRow(ctx, `SELECT pg_relation_size(to_regclass($1))`, []any{ix.ident()}, &res.SizeBytesAfter)
		tr.finish(key, &res, "rebuilt "+key)
	}
	if ctx.Err() != nil {
		return driver.Result{}, ctx.Err()
	}
	if len(locked) > 0 {
		return driver.Result{}, fmt.Errorf("vector_reindex: %d index(es) not rebuilt, lock not available within lock_timeout: %s", len(locked), joinNames(locked, 10))
	}
	results := tr.results()
	summary := fmt.Sprintf("rebuilt %d vector index(es) with REINDEX CONCURRENTLY", countSkipped(results, func(x rebuildResult) string { return x.Skipped }, ""))
	if r.dry() {
		summary = drySummary("REINDEX", countSkipped(results, func(x rebuildResult) string { return x.Skipped }, skippedDryRun), len(vix), "vector indexes")
	}
	return driver.Result{
		Summary: summary,
		Details: map[string]any{"vector_indexes": len(vix), "indexes": results, "resumed": tr.resumed},
	}, nil
}

// orphanIndex is an invalid index found by orphan_cleanup.
type orphanIndex struct {
	Index  string `json:"index"`
	Table  string `json:"table"`
	Size   int64  `json:"size_bytes"`
	Action string `json:"action"` // dropped, skipped
	Reason string `json:"reason,omitempty"`
}

// orphanCleanup drops invalid indexes left by failed CREATE INDEX
// CONCURRENTLY or REINDEX CONCURRENTLY (DROP INDEX CONCURRENTLY: SHARE
// UPDATE EXCLUSIVE on the table plus a wait, bounded by lock_timeout, for
// transactions using it), skipping any whose table has an index build in
// progress (pg_stat_progress_create_index), since an index being built is
// invalid too. It then removes this driver's own stale scratch restores and
// unfinished backups (see cleanStaleFiles).
func orphanCleanup(ctx context.Context, r *run) (driver.Result, error) {
	lock, err := intOpt(r.opts(), "lock_timeout_ms")
	if err != nil {
		return driver.Result{}, err
	}
	to := sessionSettings{LockMs: lock, StatementMs: r.d.opts.StatementTimeout.Milliseconds()}
	if lock == 0 {
		to.LockMs = r.d.opts.LockTimeout.Milliseconds()
	}
	var orphans []orphanIndex
	var locked []string
	if !r.srv.InRecovery {
		all, err := r.listIndexes(ctx, false)
		if err != nil {
			return driver.Result{}, err
		}
		building, err := r.tablesBeingIndexed(ctx)
		if err != nil {
			return driver.Result{}, err
		}
		for _, ix := range all {
			if ix.Valid {
				continue
			}
			o := orphanIndex{Index: ix.String(), Table: ix.Table.String(), Size: ix.SizeBytes}
			if building[ix.Table.OID] {
				o.Action, o.Reason = "skipped", "an index build is in progress on the table"
				orphans = append(orphans, o)
				continue
			}
			err := r.dropIndexConcurrently(withPlanNote(ctx, "invalid index", map[string]any{"size_bytes": ix.SizeBytes}), ix.rel, to, false)
			switch {
			case err == nil && r.dry():
				o.Action = "planned"
			case err == nil:
				o.Action = "dropped"
			case ctx.Err() != nil:
				return driver.Result{}, ctx.Err()
			case isLockTimeout(err):
				locked = append(locked, o.Index)
				o.Action, o.Reason = "skipped", "lock not available within lock_timeout"
			case isCode(err, pgerrcode.DependentObjectsStillExist):
				o.Action, o.Reason = "skipped", pgMessage(err)
			default:
				return driver.Result{}, classify(ctx, err, "DROP INDEX CONCURRENTLY %s", o.Index)
			}
			orphans = append(orphans, o)
			r.progress(50, fmt.Sprintf("%s %s", o.Action, o.Index), nil)
		}
	}
	files, err := r.cleanStaleFiles(ctx)
	if err != nil {
		return driver.Result{}, err
	}
	if len(locked) > 0 {
		return driver.Result{}, fmt.Errorf("orphan_cleanup: %d invalid index(es) not dropped, lock not available within lock_timeout (%d ms): %s",
			len(locked), to.LockMs, joinNames(locked, 10))
	}
	dropped := 0
	var reclaimed int64
	var names []string
	for _, o := range orphans {
		if o.Action == "dropped" {
			dropped++
			reclaimed += o.Size
			names = append(names, o.Index)
		}
	}
	summary := fmt.Sprintf("dropped %d invalid index(es) (%s)", dropped, bytesHuman(reclaimed))
	if dropped > 0 {
		summary += ": " + joinNames(names, 5)
	}
	if r.srv.InRecovery {
		summary = "standby: invalid indexes are dropped on the primary"
	}
	if len(files) > 0 {
		summary += fmt.Sprintf("; removed %d stale scratch or partial backup director(ies)", len(files))
	}
	if r.dry() {
		summary = fmt.Sprintf("dry run: would drop %d invalid index(es) and remove %d stale director(ies)",
			countSkipped(orphans, func(o orphanIndex) string { return o.Action }, "planned"), len(files))
	}
	return driver.Result{
		Summary: summary,
		Details: map[string]any{
			"invalid_indexes": orphans, "dropped": dropped, "reclaimed_bytes": reclaimed,
			"removed_paths": files, "lock_timeout_ms": to.LockMs,
		},
	}, nil
}
