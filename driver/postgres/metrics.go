package postgres

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/assess"
)

// Metric names written to the history store.
const (
	MetricSizeBytes = "size_bytes"
	// MetricProbePrefix prefixes baseline probe timings ("probe_ms:catalog_scan").
	MetricProbePrefix = "probe_ms:"
)

// xidWarnAge is the database transaction-id age at which metrics_collection
// raises a HIGH alert (wraparound shutdown comes near 2^31).
const xidWarnAge = 1_000_000_000

// metricsCollection snapshots pg_stat_database, the background writer and
// checkpointer, table tuple totals and the database size, keeps them as
// history samples and returns them as details. HIGH alerts for a database
// transaction-id age past one billion and CRITICAL for checksum failures;
// WARNING when connections pass 90 % of max_connections. No locks.
func metricsCollection(ctx context.Context, r *run) (driver.Result, error) {
	m := map[string]int64{}
	var hitRatio float64
	var names = []string{"size_bytes", "numbackends", "xact_commit", "xact_rollback", "blks_read", "blks_hit",
		"tup_returned", "tup_fetched", "tup_inserted", "tup_updated", "tup_deleted", "conflicts",
		"temp_files", "temp_bytes", "deadlocks", "checksum_failures", "xid_age", "max_connections", "connections"}
	vals := make([]int64, len(names))
	ptrs := make([]any, len(names))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	checksums := "coalesce(d.checksum_failures, 0)"
	err := r.pool.QueryRow(ctx, `
		SELECT pg_database_size(current_database()), d.numbackends, d.xact_commit, d.xact_rollback,
		       d.blks_read, d.blks_hit, d.tup_returned, d.tup_fetched, d.tup_inserted, d.tup_updated,
		       d.tup_deleted, d.conflicts, d.temp_files, d.temp_bytes, d.deadlocks, `+checksums+`,
		       age(db.datfrozenxid), current_setting('max_connections')::int8,
		       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')
		FROM pg_stat_database d JOIN pg_database db ON db.oid = d.datid
		WHERE d.datname = current_database()`).Scan(ptrs...)
	if err != nil {
		return driver.Result{}, classify(ctx, err, "read pg_stat_database")
	}
	for i, n := range names {
		m[n] = vals[i]
	}
	if m["blks_hit"]+m["blks_read"] > 0 {
		hitRatio = round3(float64(m["blks_hit"]) / float64(m["blks_hit"]+m["blks_read"]))
	}
	r.progress(30, "read pg_stat_database", nil)

	var ckTimed, ckReq, bufCk, bufClean, maxWritten, bufAlloc int64
	var bufBackend *int64
	if r.atLeast(17) {
		err = r.pool.QueryRow(ctx, `
			SELECT c.num_timed, c.num_requested, c.buffers_written, b.buffers_clean, b.maxwritten_clean, b.buffers_alloc
			FROM pg_stat_checkpointer c, pg_stat_bgwriter b`).Scan(&ckTimed, &ckReq, &bufCk, &bufClean, &maxWritten, &bufAlloc)
	} else {
		err = r.pool.QueryRow(ctx, `
			SELECT checkpoints_timed, checkpoints_req, buffers_checkpoint, buffers_clean, maxwritten_clean, buffers_alloc, buffers_backend
			FROM pg_stat_bgwriter`).Scan(&ckTimed, &ckReq, &bufCk, &bufClean, &maxWritten, &bufAlloc, &bufBackend)
	}
	if err != nil {
		return driver.Result{}, classify(ctx, err, "read background writer statistics")
	}
	bg := map[string]any{
		"checkpoints_timed": ckTimed, "checkpoints_req": ckReq, "buffers_checkpoint": bufCk,
		"buffers_clean": bufClean, "maxwritten_clean": maxWritten, "buffers_alloc": bufAlloc,
	}
	if bufBackend != nil {
		bg["buffers_backend"] = *bufBackend
	}
	var tables, live, dead int64
	if err := r.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(n_live_tup), 0)::int8, coalesce(sum(n_dead_tup), 0)::int8 FROM pg_stat_user_tables`).
		Scan(&tables, &live, &dead); err != nil {
		return driver.Result{}, classify(ctx, err, "read pg_stat_user_tables")
	}
	r.progress(60, "read background writer and table statistics", nil)

	now := time.Now().UTC()
	name := r.target().Name
	samples := []driver.Sample{
		{Target: name, Metric: MetricSizeBytes, At: now, Value: float64(m["size_bytes"])},
		{Target: name, Metric: "connections", At: now, Value: float64(m["connections"])},
		{Target: name, Metric: "xact_commit", At: now, Value: float64(m["xact_commit"])},
		{Target: name, Metric: "xact_rollback", At: now, Value: float64(m["xact_rollback"])},
		{Target: name, Metric: "cache_hit_ratio", At: now, Value: hitRatio},
		{Target: name, Metric: "deadlocks", At: now, Value: float64(m["deadlocks"])},
		{Target: name, Metric: "temp_bytes", At: now, Value: float64(m["temp_bytes"])},
		{Target: name, Metric: "xid_age", At: now, Value: float64(m["xid_age"])},
		{Target: name, Metric: "live_tuples", At: now, Value: float64(live)},
		{Target: name, Metric: "dead_tuples", At: now, Value: float64(dead)},
		{Target: name, Metric: "checkpoints_req", At: now, Value: float64(ckReq)},
	}
	details := map[string]any{
		"database": r.srv.Database, "server_version": r.srv.Version, "in_recovery": r.srv.InRecovery,
		"database_stats": m, "cache_hit_ratio": hitRatio, "bgwriter": bg,
		"user_tables": tables, "live_tuples": live, "dead_tuples": dead,
	}
	if r.req.History != nil {
		if err := r.req.History.RecordSamples(ctx, samples...); err != nil {
			return driver.Result{}, fmt.Errorf("record samples in the history store: %w", err)
		}
		details["samples_recorded"] = len(samples)
	} else {
		details["samples_recorded"] = 0
		details["history"] = "no history store configured; samples not kept"
	}
	var alerts []domain.Alert
	if m["checksum_failures"] > 0 {
		alerts = append(alerts, domain.Alert{Level: domain.AlertCritical, Subject: r.srv.Database,
			Message: fmt.Sprintf("%d data checksum failure(s) recorded: storage corruption; run full_checkdb", m["checksum_failures"])})
	}
	if m["xid_age"] >= xidWarnAge {
		alerts = append(alerts, domain.Alert{Level: domain.AlertHigh, Subject: r.srv.Database,
			Message: fmt.Sprintf("transaction-id age %d: wraparound protection approaches; run mvcc_cleanup", m["xid_age"])})
	}
	if mc := m["max_connections"]; mc > 0 && m["connections"]*10 >= mc*9 {
		alerts = append(alerts, domain.Alert{Level: domain.AlertWarning, Subject: r.srv.Database,
			Message: fmt.Sprintf("%d client connections of max_connections %d", m["connections"], mc)})
	}
	return driver.Result{
		Summary: fmt.Sprintf("database %s: %s, %d connections, cache hit ratio %.3f, %d live / %d dead tuples in %d tables",
			r.srv.Database, bytesHuman(m["size_bytes"]), m["connections"], hitRatio, live, dead, tables),
		Details: details,
		Alerts:  alerts,
	}, nil
}

// databaseSize is pg_database_size of the target database.
func (r *run) databaseSize(ctx context.Context) (int64, error) {
	var size int64
	if err := r.pool.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&size); err != nil {
		return 0, classify(ctx, err, "read pg_database_size")
	}
	return size, nil
}

// quotaCheck compares pg_database_size of the target database with
// Target.QuotaBytes, with the alert ladder of assess.QuotaLevel: WARNING
// above alert_pct (default 80), HIGH above half-way from there to full,
// CRITICAL at or over the quota. Without a quota it says so and succeeds.
// No locks.
func quotaCheck(ctx context.Context, r *run) (driver.Result, error) {
	alertPct, err := floatOpt(r.opts(), "alert_pct")
	if err != nil {
		return driver.Result{}, err
	}
	size, err := r.databaseSize(ctx)
	if err != nil {
		return driver.Result{}, err
	}
	quota := r.target().QuotaBytes
	details := map[string]any{"used_bytes": size, "quota_bytes": quota, "alert_pct": alertPct, "database": r.srv.Database}
	if quota <= 0 {
		details["quota_configured"] = false
		return driver.Result{
			Summary: fmt.Sprintf("no quota configured for target %s: nothing to compare; database %s uses %s", r.target().Name, r.srv.Database, bytesHuman(size)),
			Details: details,
		}, nil
	}
	pct := 100 * float64(size) / float64(quota)
	details["quota_configured"] = true
	details["used_pct"] = round1(pct)
	details["headroom_bytes"] = quota - size
	level := assess.QuotaLevel(pct, alertPct)
	summary := fmt.Sprintf("%s of %s quota used by database %s (%.1f %%, alert above %.0f %%)", bytesHuman(size), bytesHuman(quota), r.srv.Database, pct, alertPct)
	var alerts []domain.Alert
	if level != "" {
		alerts = append(alerts, domain.Alert{Level: level, Subject: "quota",
			Message: fmt.Sprintf("database %s uses %.1f %% of its %s quota (%s)", r.srv.Database, pct, bytesHuman(quota), bytesHuman(size))})
		summary += ": " + level
	}
	return driver.Result{Summary: summary, Details: details, Alerts: alerts}, nil
}

// capacityTrend measures pg_database_size and hands it to
// assess.Capacity: a size sample is recorded, a least-squares line is
// fitted to the size samples of the last lookback_days (default 90) and the
// runway to Target.QuotaBytes forecast, as on every engine: a HIGH alert
// when the runway is below runway_alert_days (default 30), CRITICAL at a
// quarter of that or less (an exhausted quota included). Too few samples,
// or samples spanning less than an hour, is a success that says a trend
// needs more. No locks.
func capacityTrend(ctx context.Context, r *run) (driver.Result, error) {
	h, err := r.requireHistory()
	if err != nil {
		return driver.Result{}, err
	}
	alertDays, err := intOpt(r.opts(), "runway_alert_days")
	if err != nil {
		return driver.Result{}, err
	}
	lookback, err := intOpt(r.opts(), "lookback_days")
	if err != nil {
		return driver.Result{}, err
	}
	current, err := r.databaseSize(ctx)
	if err != nil {
		return driver.Result{}, err
	}
	return assess.Capacity(ctx, h, r.target().Name, current, r.target().QuotaBytes, assess.CapacityOptions{
		Metric: MetricSizeBytes, LookbackDays: lookback, RunwayAlertDays: alertDays,
		Details:  map[string]any{"database": r.srv.Database},
		Progress: func(pct float64, note string) { r.progress(pct, note, nil) },
	})
}

// probe is one timed baseline query; probes reading a table run on a
// session with the driver's lock_timeout (ACCESS SHARE).
type probe struct {
	Name string
	SQL  string
}

// baselineUpdate times a fixed set of probe queries (a round trip, a catalog
// join, a statistics view scan, and a repeatable 1 % sample scan of each of
// the three largest tables), each ProbeRuns times with the median kept;
// compares them with the stored baseline (assess.Baseline: a WARNING alert
// per probe slower by more than regression_pct, default 50, and by more
// than RegressionFloor); stores the new timings as the baseline and as
// samples.
func baselineUpdate(ctx context.Context, r *run) (driver.Result, error) {
	h, err := r.requireHistory()
	if err != nil {
		return driver.Result{}, err
	}
	regPct, err := floatOpt(r.opts(), "regression_pct")
	if err != nil {
		return driver.Result{}, err
	}
	probes := []probe{
		{"round_trip", `SELECT 1`},
		{"catalog_join", `SELECT count(*) FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid WHERE a.attnum > 0`},
		{"stats_scan", `SELECT count(*), sum(n_live_tup) FROM pg_stat_all_tables`},
	}
	tables, err := r.listTables(ctx)
	if err != nil {
		return driver.Result{}, err
	}
	sort.Slice(tables, func(i, j int) bool { return tables[i].SizeBytes > tables[j].SizeBytes })
	for _, t := range tables[:min(3, len(tables))] {
		probes = append(probes, probe{"sample_scan:" + t.String(), `SELECT count(*) FROM ` + t.ident() + ` TABLESAMPLE SYSTEM (1) REPEATABLE (42)`})
	}
	to := sessionSettings{LockMs: r.d.opts.LockTimeout.Milliseconds(), StatementMs: 60_000}
	s, err := r.session(ctx, to)
	if err != nil {
		return driver.Result{}, err
	}
	defer s.release()
	current := map[string]float64{}
	var skipped []string
	for i, p := range probes {
		runs := make([]float64, 0, r.d.opts.ProbeRuns)
		var perr error
		for k := 0; k < r.d.opts.ProbeRuns && perr == nil; k++ {
			start := time.Now()
			perr = s.exec(ctx, p.SQL)
			runs = append(runs, float64(time.Since(start).Microseconds())/1000)
		}
		if perr != nil {
			if ctx.Err() != nil {
				return driver.Result{}, ctx.Err()
			}
			if isGone(perr) || isLockTimeout(perr) {
				skipped = append(skipped, p.Name+": "+pgMessage(perr))
				continue
			}
			return driver.Result{}, classify(ctx, perr, "probe %s", p.Name)
		}
		sort.Float64s(runs)
		current[p.Name] = round3(runs[len(runs)/2])
		r.progress(80*float64(i+1)/float64(len(probes)), "timed "+p.Name, nil)
	}
	baseline, err := h.Baseline(ctx, r.target().Name)
	if err != nil {
		return driver.Result{}, fmt.Errorf("read baseline: %w", err)
	}
	floorMs := float64(r.d.opts.RegressionFloor.Microseconds()) / 1000
	res := assess.Baseline(baseline, current, assess.BaselineOptions{RegressionPct: regPct, FloorMs: floorMs, ProbeRuns: r.d.opts.ProbeRuns})
	names := make([]string, 0, len(current))
	for n := range current {
		names = append(names, n)
	}
	sort.Strings(names)
	now := time.Now().UTC()
	samples := make([]driver.Sample, 0, len(names))
	for _, n := range names {
		samples = append(samples, driver.Sample{Target: r.target().Name, Metric: MetricProbePrefix + n, At: now, Value: current[n]})
	}
	if err := h.RecordSamples(ctx, samples...); err != nil {
		return driver.Result{}, fmt.Errorf("record probe samples: %w", err)
	}
	r.progress(95, "save baseline", nil)
	if err := h.SaveBaseline(ctx, r.target().Name, current); err != nil {
		return driver.Result{}, fmt.Errorf("save baseline: %w", err)
	}
	if len(skipped) > 0 {
		res.Details["skipped"] = skipped
	}
	return res, nil
}
