package postgres

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/themis-maintenance/themis/driver"
)

// tableWork is the outcome of one VACUUM or ANALYZE.
type tableWork struct {
	Table            string   `json:"table"`
	Statement        string   `json:"statement"`
	Reasons          []string `json:"reasons,omitempty"`
	DeadTuplesBefore int64    `json:"dead_tuples_before"`
	DeadTuplesAfter  int64    `json:"dead_tuples_after"`
	SizeBytesBefore  int64    `json:"size_bytes_before"`
	SizeBytesAfter   int64    `json:"size_bytes_after"`
	XIDAgeBefore     int64    `json:"xid_age_before,omitempty"`
	XIDAgeAfter      int64    `json:"xid_age_after,omitempty"`
	DurationMs       int64    `json:"duration_ms"`
	Skipped          string   `json:"skipped,omitempty"`
}

// tableJob is one table and the statement to run on it.
type tableJob struct {
	t       table
	sql     string
	label   string
	reasons []string
	// figures are the values behind reasons and their thresholds, for
	// the plan of a dry run.
	figures map[string]any
}

// tableRunner runs tableJobs on parallel sessions, records them in a
// tracker and collects tables whose lock could not be had in time.
type tableRunner struct {
	r      *run
	to     sessionSettings
	tr     *tracker[tableWork]
	mu     sync.Mutex
	locked []string
}

// run executes jobs on n sessions, the largest table first (a big table
// started last would leave the other sessions idle at the end). Tables
// dropped meanwhile are recorded as skipped; tables whose lock was not
// granted within lock_timeout are left undone (a retry does them) and
// reported by lockedErr.
func (tw *tableRunner) run(ctx context.Context, n int, jobs []tableJob) error {
	todo := make([]tableJob, 0, len(jobs))
	for _, j := range jobs {
		if !tw.tr.isDone(j.t.String()) {
			todo = append(todo, j)
		}
	}
	sort.SliceStable(todo, func(i, k int) bool { return todo[i].t.SizeBytes > todo[k].t.SizeBytes })
	u := units[tableJob]{
		key: func(j tableJob) string { return j.t.String() },
		left: func(j tableJob, why string) {
			key := j.t.String()
			res := tableWork{Table: key, Statement: j.label, Reasons: j.reasons,
				DeadTuplesBefore: j.t.DeadTup, SizeBytesBefore: j.t.SizeBytes, XIDAgeBefore: j.t.XIDAge, Skipped: why}
			tw.tr.leave(res, "left "+key+": "+why)
		},
	}
	return forEachSession(ctx, tw.r, n, tw.to, todo, u, func(ctx context.Context, s *session, j tableJob) error {
		key := j.t.String()
		res := tableWork{
			Table: key, Statement: j.label, Reasons: j.reasons,
			DeadTuplesBefore: j.t.DeadTup, SizeBytesBefore: j.t.SizeBytes, XIDAgeBefore: j.t.XIDAge,
		}
		start := time.Now()
		ctx = withPlanNote(ctx, strings.Join(j.reasons, "; "), j.figures)
		err := tw.tr.during(j.label+" "+key, func() error { return s.exec(ctx, j.sql) })
		res.DurationMs = time.Since(start).Milliseconds()
		if err == nil && tw.r.dry() {
			res.Skipped, res.DurationMs = skippedDryRun, 0
			tw.tr.finish(key, &res, "planned "+j.label+" "+key)
			return nil
		}
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case isGone(err):
			res.Skipped = "dropped while the task ran"
			tw.tr.finish(key, &res, "skipped "+key+" (dropped)")
			return nil
		case isLockTimeout(err):
			tw.mu.Lock()
			tw.locked = append(tw.locked, key)
			tw.mu.Unlock()
			tw.tr.heartbeat(fmt.Sprintf("%s: lock not available within %d ms; left for a retry", key, tw.to.LockMs))
			return nil
		default:
			return classify(ctx, err, "%s %s", j.label, key)
		}
		// pg_stat_get_dead_tuples rather than the pg_stat_all_tables view:
		// this runs once per table, and the view aggregates over pg_index.
		err = s.queryRow(ctx, `
			SELECT pg_stat_get_dead_tuples(c.oid), pg_table_size(c.oid),
			       CASE WHEN c.relfrozenxid::text::int8 = 0 THEN 0 ELSE age(c.relfrozenxid) END
			FROM pg_class c WHERE c.oid = $1`, []any{int64(j.t.OID)}, &res.DeadTuplesAfter, &res.SizeBytesAfter, &res.XIDAgeAfter)
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		tw.tr.finish(key, &res, fmt.Sprintf("%s %s done", j.label, key))
		return nil
	})
}

// lockedErr is the retryable error for tables left undone because their
// lock was not granted in time; the checkpoint lets a retry skip the rest.
func (tw *tableRunner) lockedErr(what string) error {
	if len(tw.locked) == 0 {
		return nil
	}
	sort.Strings(tw.locked)
	return fmt.Errorf("%s: %d table(s) not done, lock not available within lock_timeout (%d ms): %s; the others are checkpointed and a retry does only these",
		what, len(tw.locked), tw.to.LockMs, joinNames(tw.locked, 10))
}

// requirePrimary refuses write maintenance on a standby.
func (r *run) requirePrimary() error {
	if r.srv.InRecovery {
		return driver.Permanentf(driver.KindMisconfigured, "%s writes, and target %s is a read-only standby: run it against the primary", r.req.Task, r.target().Name)
	}
	return nil
}

// mvccCleanup: VACUUM (ANALYZE) of tables past dead_tuple_threshold, and
// VACUUM (FREEZE, ANALYZE) of tables past xid_age_threshold (a plain VACUUM
// below vacuum_freeze_table_age need not advance relfrozenxid), in parallel,
// one session per table. Locks: SHARE UPDATE EXCLUSIVE on each table (blocks
// DDL and other VACUUMs, not reads or writes).
func mvccCleanup(ctx context.Context, r *run) (driver.Result, error) {
	if err := r.requirePrimary(); err != nil {
		return driver.Result{}, err
	}
	to, par, err := r.sessionOpts()
	if err != nil {
		return driver.Result{}, err
	}
	deadThr, err := intOpt(r.opts(), "dead_tuple_threshold")
	if err != nil {
		return driver.Result{}, err
	}
	xidThr, err := intOpt(r.opts(), "xid_age_threshold")
	if err != nil {
		return driver.Result{}, err
	}
	tables, err := r.listTables(ctx)
	if err != nil {
		return driver.Result{}, err
	}
	var jobs []tableJob
	var keys []string
	for _, t := range tables {
		var reasons []string
		figures := map[string]any{}
		if t.DeadTup >= deadThr {
			reasons = append(reasons, fmt.Sprintf("%d dead tuples >= %d", t.DeadTup, deadThr))
			figures["dead_tuples"], figures["dead_tuple_threshold"] = t.DeadTup, deadThr
		}
		freeze := t.XIDAge >= xidThr
		if freeze {
			reasons = append(reasons, fmt.Sprintf("xid age %d >= %d", t.XIDAge, xidThr))
			figures["xid_age"], figures["xid_age_threshold"] = t.XIDAge, xidThr
		}
		if len(reasons) == 0 {
			continue
		}
		label := "VACUUM (ANALYZE)"
		if freeze {
			label = "VACUUM (FREEZE, ANALYZE)"
		}
		jobs = append(jobs, tableJob{t: t, sql: label + " " + t.ident(), label: label, reasons: reasons, figures: figures})
		keys = append(keys, t.String())
	}
	tw := &tableRunner{r: r, to: to, tr: newTracker[tableWork](r, keys)}
	r.progress(tw.tr.pct(), fmt.Sprintf("%d of %d tables over the thresholds; %d sessions", len(jobs), len(tables), par), tw.tr.snapshot())
	if err := tw.run(ctx, par, jobs); err != nil {
		return driver.Result{}, err
	}
	if err := tw.lockedErr("mvcc_cleanup"); err != nil {
		return driver.Result{}, err
	}
	results := tw.tr.results()
	var before, after int64
	done := 0
	for _, w := range results {
		if w.Skipped == "" {
			done++
			before += w.DeadTuplesBefore
			after += w.DeadTuplesAfter
		}
	}
	summary := fmt.Sprintf("no table over the thresholds (%d tables checked)", len(tables))
	if len(results) > 0 {
		summary = fmt.Sprintf("vacuumed %d of %d tables: dead tuples %d → %d", done, len(tables), before, after)
	}
	if r.dry() {
		summary = drySummary("VACUUM", countSkipped(results, func(w tableWork) string { return w.Skipped }, skippedDryRun), len(tables), "tables")
	}
	return driver.Result{
		Summary: summary,
		Details: map[string]any{
			"tables_checked":       len(tables),
			"tables_vacuumed":      done,
			"dead_tuples_before":   before,
			"dead_tuples_after":    after,
			"dead_tuple_threshold": deadThr,
			"xid_age_threshold":    xidThr,
			"parallelism":          par,
			"lock_timeout_ms":      to.LockMs,
			"statement_timeout_ms": to.StatementMs,
			"resumed":              tw.tr.resumed,
			"tables":               results,
		},
	}, nil
}

// statisticsUpdate: ANALYZE of every table whose statistics are stale (never
// analysed, or rows modified since the last analyse), in parallel.
// Locks: SHARE UPDATE EXCLUSIVE on each table.
func statisticsUpdate(ctx context.Context, r *run) (driver.Result, error) {
	if err := r.requirePrimary(); err != nil {
		return driver.Result{}, err
	}
	to, par, err := r.sessionOpts()
	if err != nil {
		return driver.Result{}, err
	}
	tables, err := r.listTables(ctx)
	if err != nil {
		return driver.Result{}, err
	}
	var jobs []tableJob
	var keys []string
	fresh := 0
	for _, t := range tables {
		var reason string
		switch {
		case !t.Analyzed:
			reason = "never analysed"
		case t.ModSinceAnalyze > 0:
			reason = fmt.Sprintf("%d rows modified since the last analyse", t.ModSinceAnalyze)
		default:
			fresh++
			continue
		}
		figures := map[string]any{"n_mod_since_analyze": t.ModSinceAnalyze, "analyzed_before": t.Analyzed}
		jobs = append(jobs, tableJob{t: t, sql: "ANALYZE " + t.ident(), label: "ANALYZE", reasons: []string{reason}, figures: figures})
		keys = append(keys, t.String())
	}
	tw := &tableRunner{r: r, to: to, tr: newTracker[tableWork](r, keys)}
	r.progress(tw.tr.pct(), fmt.Sprintf("%d of %d tables have stale statistics", len(jobs), len(tables)), tw.tr.snapshot())
	if err := tw.run(ctx, par, jobs); err != nil {
		return driver.Result{}, err
	}
	if err := tw.lockedErr("statistics_update"); err != nil {
		return driver.Result{}, err
	}
	results := tw.tr.results()
	analysed := countSkipped(results, func(w tableWork) string { return w.Skipped }, "")
	summary := fmt.Sprintf("analysed %d tables; %d already had fresh statistics", analysed, fresh)
	if r.dry() {
		summary = drySummary("ANALYZE", countSkipped(results, func(w tableWork) string { return w.Skipped }, skippedDryRun), len(tables), "tables")
	}
	return driver.Result{
		Summary: summary,
		Details: map[string]any{
			"tables_checked":  len(tables),
			"tables_analyzed": analysed,
			"tables_fresh":    fresh,
			"parallelism":     par,
			"resumed":         tw.tr.resumed,
			"tables":          results,
		},
	}, nil
}

// compactionFullPct is the wasted-space share at which storage_compaction
// with full=true rewrites a table.
const compactionFullPct = 20.0

// compactionMeasurePct is the estimated waste from which storage_compaction
// with full=true measures a table exactly (pgstattuple_approx); below it
// the catalog estimate decides.
const compactionMeasurePct = 5.0

// storageCompaction: plain VACUUM of tables with dead tuples (it returns
// space to the free-space map and truncates empty pages at the end of the
// file). With full=true, tables of at least 1 MiB whose measured waste is
// compactionFullPct or more get VACUUM (FULL, ANALYZE) instead: a rewrite
// under an ACCESS EXCLUSIVE lock that blocks reads and writes of the table
// for its duration and needs free disk space equal to the table's size.
// Sequential, checkpointed per table.
func storageCompaction(ctx context.Context, r *run) (driver.Result, error) {
	if err := r.requirePrimary(); err != nil {
		return driver.Result{}, err
	}
	to, err := r.timeoutOpts()
	if err != nil {
		return driver.Result{}, err
	}
	full, err := boolOpt(r.opts(), "full")
	if err != nil {
		return driver.Result{}, err
	}
	tables, err := r.listTables(ctx)
	if err != nil {
		return driver.Result{}, err
	}
	waste := map[uint32]relBloat{}
	method := ""
	estimated, measured := 0, 0
	if full {
		m, err := r.newMeasurer(ctx)
		if err != nil {
			return driver.Result{}, err
		}
		method = m.method()
		// Cheap first: the catalog estimate for every table, the exact
		// measurement (pgstattuple_approx) only for those the estimate puts
		// at compactionMeasurePct or more.
		for i, t := range tables {
			if t.SizeBytes >= 0 && t.SizeBytes < defaultMinSizeBytes {
				continue
			}
			b, err := m.tableEstimate(ctx, t)
			if err != nil {
				return driver.Result{}, err
			}
			if m.schema != "" && b.Skipped == "" && b.BloatPct >= compactionMeasurePct {
				if b, err = m.table(ctx, t); err != nil {
					return driver.Result{}, err
				}
				measured++
			} else {
				estimated++
			}
			waste[t.OID] = b
			r.progress(float64(i)*10/float64(len(tables)), "measured "+t.String(), nil)
		}
	}
	var jobs []tableJob
	var keys []string
	for _, t := range tables {
		if b, ok := waste[t.OID]; ok && b.Skipped == "" && b.BloatPct >= compactionFullPct {
			jobs = append(jobs, tableJob{t: t, sql: "VACUUM (FULL, ANALYZE) " + t.ident(), label: "VACUUM (FULL, ANALYZE)",
				reasons: []string{fmt.Sprintf("%.1f%% wasted (%s) >= %.0f%%", b.BloatPct, b.Method, compactionFullPct)},
				figures: map[string]any{"bloat_pct": b.BloatPct, "full_threshold_pct": compactionFullPct, "method": b.Method, "size_bytes": b.SizeBytes}})
		} else if t.DeadTup > 0 {
			jobs = append(jobs, tableJob{t: t, sql: "VACUUM " + t.ident(), label: "VACUUM",
				reasons: []string{fmt.Sprintf("%d dead tuples", t.DeadTup)}, figures: map[string]any{"dead_tuples": t.DeadTup}})
		} else {
			continue
		}
		keys = append(keys, t.String())
	}
	tw := &tableRunner{r: r, to: to, tr: newTracker[tableWork](r, keys)}
	if err := tw.run(ctx, 1, jobs); err != nil {
		return driver.Result{}, err
	}
	if err := tw.lockedErr("storage_compaction"); err != nil {
		return driver.Result{}, err
	}
	results := tw.tr.results()
	var before, after int64
	rewrites := 0
	for _, w := range results {
		if w.Skipped != "" {
			continue
		}
		before += w.SizeBytesBefore
		after += w.SizeBytesAfter
		if strings.Contains(w.Statement, "FULL") {
			rewrites++
		}
	}
	vacuumed := countSkipped(results, func(w tableWork) string { return w.Skipped }, "")
	summary := fmt.Sprintf("vacuumed %d tables (%d rewritten with VACUUM FULL): %s → %s", vacuumed, rewrites, bytesHuman(before), bytesHuman(after))
	if r.dry() {
		summary = drySummary("VACUUM", countSkipped(results, func(w tableWork) string { return w.Skipped }, skippedDryRun), len(tables), "tables")
	}
	if !full {
		summary += "; full=false, so no exclusive-lock rewrite was done"
	}
	details := map[string]any{
		"full": full, "tables_checked": len(tables), "tables_vacuumed": vacuumed, "tables_rewritten": rewrites,
		"size_bytes_before": before, "size_bytes_after": after, "reclaimed_bytes": before - after,
		"resumed": tw.tr.resumed, "tables": results,
	}
	if full {
		details["measurement_method"] = method
		details["full_threshold_pct"] = compactionFullPct
		details["measure_threshold_pct"] = compactionMeasurePct
		details["tables_estimated"] = estimated
		details["tables_measured_exactly"] = measured
	}
	return driver.Result{Summary: summary, Details: details}, nil
}

// countSkipped counts the results whose skipped (read by skip) is want
// ("" counts the units done).
func countSkipped[R any](results []R, skip func(R) string, want string) int {
	n := 0
	for _, x := range results {
		if skip(x) == want {
			n++
		}
	}
	return n
}
