package sqlite

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/assess"
)

const (
	// probeRowCap bounds the rows a count probe reads, so probes stay cheap
	// on big tables and comparable as tables grow past it.
	probeRowCap = 100_000
	// probeScanRows is how many full rows a scan probe reads.
	probeScanRows = 1_000
)

// probe is one timed query.
type probe struct {
	Name  string
	Query string
}

// probesFor returns the fixed probe set: a schema scan, and for each table a
// capped count and a scan of the first rows with every column.
func probesFor(tables []string) []probe {
	out := []probe{{Name: "schema_scan", Query: `SELECT type, name, tbl_name, sql FROM sqlite_schema`}}
	for _, t := range tables {
		q := quoteIdent(t)
		out = append(out,
			probe{Name: "count." + t, Query: fmt.Sprintf(`SELECT count(*) FROM (SELECT 1 FROM %s LIMIT %d)`, q, probeRowCap)},
			probe{Name: "scan." + t, Query: fmt.Sprintf(`SELECT * FROM %s LIMIT %d`, q, probeScanRows)},
		)
	}
	return out
}

// runProbe runs p runs times, reading every row and column, and returns the
// median time in milliseconds.
func runProbe(ctx context.Context, r *run, p probe, runs int) (float64, error) {
	times := make([]float64, 0, runs)
	for i := 0; i < runs; i++ {
		start := time.Now()
		rows, err := r.db.QueryContext(ctx, p.Query)
		if err != nil {
			return 0, fmt.Errorf("probe %s: %w", p.Name, err)
		}
		cols, err := rows.Columns()
		if err != nil {
			rows.Close()
			return 0, fmt.Errorf("probe %s: %w", p.Name, err)
		}
		dest := make([]any, len(cols))
		for j := range dest {
			dest[j] = new(any)
		}
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return 0, fmt.Errorf("probe %s: %w", p.Name, err)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, fmt.Errorf("probe %s: %w", p.Name, err)
		}
		times = append(times, msSince(start))
	}
	sort.Float64s(times)
	return times[len(times)/2], nil
}

// regression is a probe slower than its baseline: the elements of the
// "regressions" detail of baseline_update.
type regression = assess.Regression

// baselineUpdate times the probe set (resumable, one heartbeat per probe),
// compares the timings with the stored baseline (assess.Baseline: a WARNING
// for each probe that regressed), and stores them as the new baseline.
func baselineUpdate(ctx context.Context, r *run) (driver.Result, error) {
	hist, err := r.requireHistory()
	if err != nil {
		return driver.Result{}, err
	}
	pct := r.opts().Float("regression_pct")
	floorMs := float64(r.d.opts.RegressionFloor.Microseconds()) / 1000
	name := r.target().Name
	old, err := hist.Baseline(ctx, name)
	if err != nil {
		return driver.Result{}, fmt.Errorf("read baseline: %w", err)
	}
	rels, err := listRelations(ctx, r.db)
	if err != nil {
		return driver.Result{}, err
	}
	probes := probesFor(userTables(rels))
	byName := map[string]probe{}
	names := make([]string, len(probes))
	for i, p := range probes {
		byName[p.Name] = p
		names[i] = p.Name
	}
	var cp loopCheckpoint[float64]
	resumed := driver.DecodeCheckpoint(r.req.Checkpoint, &cp)
	err = loop(ctx, r, names, &cp, 0, 90, "probe", nil, func(ctx context.Context, n string) (float64, error) {
		return runProbe(ctx, r, byName[n], r.d.opts.ProbeRuns)
	})
	if err != nil {
		return driver.Result{}, err
	}
	current := map[string]float64{}
	for _, n := range names {
		current[n] = assess.Round3(cp.Results[n])
	}
	res := assess.Baseline(old, current, assess.BaselineOptions{RegressionPct: pct, FloorMs: floorMs, ProbeRuns: r.d.opts.ProbeRuns})
	r.progress(95, "save baseline", cp.snapshot())
	if err := hist.SaveBaseline(ctx, name, current); err != nil {
		return driver.Result{}, fmt.Errorf("save baseline: %w", err)
	}
	res.Details["resumed"] = resumed
	return res, nil
}
