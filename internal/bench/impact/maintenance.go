package impact

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/historytest"
	"github.com/themis-maintenance/themis/driver/postgres"
)

// Step is one maintenance command of a side.
type Step struct {
	Name    string  `json:"name"`
	Command string  `json:"command"`
	Seconds float64 `json:"seconds"`
	Summary string  `json:"summary,omitempty"`
	// ThrottledMs and SleptMs are ours' time waiting on throttle signals
	// and sleeping for intensity (the task's details).
	ThrottledMs int64 `json:"throttled_ms,omitempty"`
	SleptMs     int64 `json:"intensity_slept_ms,omitempty"`
	// Waits counts ours' throttle events, with their reasons abridged.
	Waits   int      `json:"throttle_events,omitempty"`
	Reasons []string `json:"throttle_reasons,omitempty"`
	// P99Ms is the foreground's p99 while this step ran.
	P99Ms float64 `json:"foreground_p99_ms"`
	// MaxLagMs is the standby's largest lag (either reading) while this
	// step ran.
	MaxLagMs float64 `json:"max_lag_ms"`
	// from and to bound the step.
	from, to time.Time
}

// work is what both sides maintain, read from the generated database:
// the tables with dead tuples (largest first) and the tables whose indexes
// are rebuilt (most index bytes first).
type work struct {
	vacuum  []string
	reindex []string
}

func readWork(ctx context.Context, conn *pgx.Conn) (work, error) {
	var w work
	rows, err := conn.Query(ctx, `
		SELECT quote_ident(schemaname) || '.' || quote_ident(relname)
		FROM pg_stat_user_tables WHERE n_dead_tup > 0
		ORDER BY pg_table_size(relid) DESC, relid`)
	if err != nil {
		return w, err
	}
	if w.vacuum, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return w, err
	}
	rows, err = conn.Query(ctx, `
		SELECT quote_ident(schemaname) || '.' || quote_ident(relname)
		FROM pg_stat_user_tables WHERE pg_indexes_size(relid) > 0
		ORDER BY pg_indexes_size(relid) DESC, relid`)
	if err != nil {
		return w, err
	}
	w.reindex, err = pgx.CollectRows(rows, pgx.RowTo[string])
	return w, err
}

// oursOptions are the tasks' options: the same work as the native tools
// (every table with a dead tuple, no FREEZE; every btree index) and the
// throttling of Config.
func (b *bench) oursOptions(task domain.TaskType) domain.TaskOptions {
	o := domain.TaskOptions{
		"parallelism": int64(b.cfg.Jobs), "max_lag_ms": b.cfg.MaxLagMs,
		"max_active_backends": b.cfg.MaxActive, "intensity": b.cfg.Intensity,
	}
	if b.cfg.ParallelWorkers != nil {
		o["parallel_workers"] = *b.cfg.ParallelWorkers
	}
	switch task {
	case domain.TaskMVCCCleanup:
		o["dead_tuple_threshold"], o["xid_age_threshold"] = int64(1), int64(2_000_000_000)
		if b.cfg.CostDelayMs > 0 {
			o["cost_delay_ms"] = b.cfg.CostDelayMs
		}
	case domain.TaskIndexRebuild:
		o["high_threshold_pct"], o["min_size_bytes"] = 0.0, int64(0)
		o["parallelism"] = int64(b.cfg.RebuildJobs)
		if b.cfg.RebuildUnit != "" {
			o["rebuild_unit"] = b.cfg.RebuildUnit
		}
	}
	return o
}

// describe renders the task and its options keys as key=value, in that order.
func describe(task domain.TaskType, o domain.TaskOptions, keys ...string) string {
	parts := []string{string(task)}
	for _, k := range keys {
		if v, ok := o[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return strings.Join(parts, " ")
}

// runOurs runs mvcc_cleanup then index_rebuild through the postgres
// driver, with the standby in ReplicaDSNs.
func (b *bench) runOurs(ctx context.Context, standbyDSN string, w work) ([]Step, error) {
	d := postgres.New()
	defer d.Close()
	t := driver.Target{Name: "bench-impact", Driver: postgres.Name, DSN: b.c.DSN(benchDB), ReplicaDSNs: []string{standbyDSN},
		BinDir: b.c.BinDir, OSUser: b.c.OSUser}
	var steps []Step
	for _, task := range []domain.TaskType{domain.TaskMVCCCleanup, domain.TaskIndexRebuild} {
		opts := b.oursOptions(task)
		st := Step{Name: "ours " + string(task), Command: describe(task, opts, "parallelism", "dead_tuple_threshold", "xid_age_threshold",
			"high_threshold_pct", "min_size_bytes", "max_lag_ms", "max_active_backends", "intensity", "cost_delay_ms", "parallel_workers", "rebuild_unit")}
		start := time.Now()
		st.from = start
		res, err := driver.Run(ctx, d, driver.Request{Target: t, Task: task, Options: opts, History: historytest.New(),
			JobID: "bench-impact-" + string(task), Attempt: 1})
		st.to = time.Now()
		st.Seconds = st.to.Sub(start).Seconds()
		if err != nil {
			return steps, fmt.Errorf("%s: %w", task, err)
		}
		st.Summary = res.Summary
		st.ThrottledMs = detailInt(res.Details, "throttled_ms") + detailInt(res.Details, "hibernated_ms")
		st.SleptMs = detailInt(res.Details, "intensity_slept_ms")
		st.Waits, st.Reasons = throttleEvents(res.Details)
		if err := checkDone(task, res.Details, w); err != nil {
			return steps, err
		}
		b.logf("%s: %.1f s, throttled %.1f s (%d waits): %s", st.Name, st.Seconds, float64(st.ThrottledMs)/1000, st.Waits, res.Summary)
		steps = append(steps, st)
	}
	return steps, nil
}

// checkDone fails when ours did other work than the native tools do: a
// VACUUM (ANALYZE) per table with dead tuples, a REINDEX TABLE
// CONCURRENTLY per table (with rebuild_unit=index, a REINDEX INDEX
// CONCURRENTLY per index of those tables instead).
func checkDone(task domain.TaskType, d map[string]any, w work) error {
	switch task {
	case domain.TaskMVCCCleanup:
		if n := detailInt(d, "tables_vacuumed"); n != int64(len(w.vacuum)) {
			return fmt.Errorf("mvcc_cleanup vacuumed %d tables, the native side %d", n, len(w.vacuum))
		}
	case domain.TaskIndexRebuild:
		t, i := detailInt(d, "reindex_table_statements"), detailInt(d, "reindex_index_statements")
		if d["rebuild_unit"] == "index" {
			if t != 0 || i < int64(len(w.reindex)) || i != detailInt(d, "rebuilt") {
				return fmt.Errorf("index_rebuild (rebuild_unit=index) ran %d REINDEX TABLE and %d REINDEX INDEX for %d rebuilt, over the native side's %d tables",
					t, i, detailInt(d, "rebuilt"), len(w.reindex))
			}
			return nil
		}
		if t != int64(len(w.reindex)) || i != 0 {
			return fmt.Errorf("index_rebuild ran %d REINDEX TABLE and %d REINDEX INDEX, the native side %d REINDEX TABLE", t, i, len(w.reindex))
		}
	}
	return nil
}

func detailInt(d map[string]any, key string) int64 {
	switch v := d[key].(type) {
	case int:
		return int64(v)
	case int64:
		return v
	case float64:
		return int64(v)
	}
	return 0
}

// throttleEvents counts the pacer's events and lists their distinct
// reasons with the figures that vary left out ("replica lag 812 ms > 500
// ms (standby x)" → "replica lag > 500 ms (standby x)"). The events are
// read through their JSON form (their type is the driver's own).
func throttleEvents(d map[string]any) (int, []string) {
	var evs []struct {
		Kind   string `json:"kind"`
		Reason string `json:"reason"`
	}
	if raw, err := json.Marshal(d["throttle_events"]); err == nil {
		_ = json.Unmarshal(raw, &evs)
	}
	n := max(int(detailInt(d, "throttle_events_total")), len(evs))
	seen := map[string]bool{}
	var reasons []string
	for _, e := range evs {
		parts := strings.Split(e.Reason, "; ")
		for i, r := range parts {
			if j := strings.Index(r, " > "); j >= 0 {
				parts[i] = readingFigure.ReplaceAllString(r[:j], "") + r[j:]
			}
		}
		r := e.Kind + ": " + strings.Join(parts, "; ")
		if !seen[r] {
			seen[r] = true
			reasons = append(reasons, r)
		}
	}
	return n, reasons
}

// readingFigure is the figure a throttle reason reads ("… 812 ms").
var readingFigure = regexp.MustCompile(` [0-9.]+( ms)?$`)

// runNative runs vacuumdb then reindexdb over the same tables.
func (b *bench) runNative(ctx context.Context, w work) ([]Step, error) {
	j := strconv.Itoa(b.cfg.Jobs)
	vac := []string{"-j", j, "--analyze", "-d", benchDB}
	for _, t := range w.vacuum {
		vac = append(vac, "-t", t)
	}
	rei := []string{"--concurrently", "-j", j, "-d", benchDB}
	for _, t := range w.reindex {
		rei = append(rei, "-t", t)
	}
	var steps []Step
	for _, c := range []struct {
		name, bin string
		args      []string
		flags     int // the leading arguments shown
		tables    int
	}{
		{"native vacuumdb", "vacuumdb", vac, 3, len(w.vacuum)},
		{"native reindexdb", "reindexdb", rei, 3, len(w.reindex)},
	} {
		st := Step{Name: c.name, Command: fmt.Sprintf("%s %s (%d × -t)", c.bin, strings.Join(c.args[:c.flags], " "), c.tables)}
		st.from = time.Now()
		if _, err := b.tools.Run(ctx, c.bin, c.args...); err != nil {
			return steps, err
		}
		st.to = time.Now()
		st.Seconds = st.to.Sub(st.from).Seconds()
		b.logf("%s: %.1f s", st.Name, st.Seconds)
		steps = append(steps, st)
	}
	return steps, nil
}
