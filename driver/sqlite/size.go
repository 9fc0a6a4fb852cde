package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/assess"
)

// Metric names written to the history store.
const (
	MetricSizeBytes     = "size_bytes" // database + WAL + shared memory + journal
	MetricFileBytes     = "file_bytes"
	MetricWALBytes      = "wal_bytes"
	MetricPageCount     = "page_count"
	MetricFreelistCount = "freelist_count"
	MetricTableCount    = "table_count"
	MetricIndexCount    = "index_count"
	MetricRowsPrefix    = "rows." // + table name
)

// diskUsage is what a SQLite database occupies on disk.
type diskUsage struct {
	File    int64 `json:"file_bytes"`
	WAL     int64 `json:"wal_bytes"`
	SHM     int64 `json:"shm_bytes"`
	Journal int64 `json:"journal_bytes"`
}

func (u diskUsage) total() int64 { return u.File + u.WAL + u.SHM + u.Journal }

// readDiskUsage stats the database file and its companions (-wal, -shm,
// -journal); missing companions count as zero.
func readDiskUsage(dsn string) (diskUsage, error) {
	f, err := parseDSN(dsn)
	if err != nil {
		return diskUsage{}, err
	}
	path := f.Path
	size := func(p string) (int64, error) {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
	var u diskUsage
	for _, f := range []struct {
		suffix string
		dst    *int64
	}{{"", &u.File}, {"-wal", &u.WAL}, {"-shm", &u.SHM}, {"-journal", &u.Journal}} {
		if *f.dst, err = size(path + f.suffix); err != nil {
			return diskUsage{}, fmt.Errorf("size of database files: %w", err)
		}
	}
	return u, nil
}

// quotaCheck compares the disk usage of the database (file, WAL, shared
// memory, journal) with the target's quota, with the alert ladder of
// assess.QuotaLevel: WARNING above alert_pct, HIGH above half-way between
// there and full, CRITICAL at or over the quota.
func quotaCheck(ctx context.Context, r *run) (driver.Result, error) {
	alertPct := r.opts().Float("alert_pct")
	usage, err := readDiskUsage(r.target().DSN)
	if err != nil {
		return driver.Result{}, err
	}
	space, err := readFileSpace(ctx, r.db)
	if err != nil {
		return driver.Result{}, err
	}
	used := usage.total()
	quota := r.target().QuotaBytes
	details := map[string]any{
		"used_bytes":        used,
		"file_bytes":        usage.File,
		"wal_bytes":         usage.WAL,
		"shm_bytes":         usage.SHM,
		"journal_bytes":     usage.Journal,
		"reclaimable_bytes": space.freeBytes(),
		"quota_bytes":       quota,
		"alert_pct":         alertPct,
	}
	if quota <= 0 {
		details["quota_configured"] = false
		return driver.Result{
			Summary: fmt.Sprintf("no quota configured for target %s: nothing to compare; the database uses %s (file %s, WAL %s)",
				r.target().Name, humanBytes(used), humanBytes(usage.File), humanBytes(usage.WAL)),
			Details: details,
		}, nil
	}
	pct := 100 * float64(used) / float64(quota)
	details["quota_configured"] = true
	details["used_pct"] = round1(pct)
	details["headroom_bytes"] = quota - used

	var alerts []domain.Alert
	level := assess.QuotaLevel(pct, alertPct)
	summary := fmt.Sprintf("%s of %s quota used (%.1f %%, alert above %.0f %%)", humanBytes(used), humanBytes(quota), pct, alertPct)
	if level != "" {
		msg := fmt.Sprintf("database uses %.1f %% of its %s quota (%s)", pct, humanBytes(quota), humanBytes(used))
		if space.freeBytes() > 0 {
			msg += fmt.Sprintf("; %s of free pages could be reclaimed with VACUUM", humanBytes(space.freeBytes()))
		}
		alerts = append(alerts, domain.Alert{Level: level, Subject: "quota", Message: msg})
		summary += ": " + level
	}
	return driver.Result{Summary: summary, Details: details, Alerts: alerts}, nil
}

// metricsCollection snapshots page accounting, sizes, and row counts per
// table (resumable, one heartbeat per table) and writes them to the history
// store as samples.
func metricsCollection(ctx context.Context, r *run) (driver.Result, error) {
	hist, err := r.requireHistory()
	if err != nil {
		return driver.Result{}, err
	}
	rels, err := listRelations(ctx, r.db)
	if err != nil {
		return driver.Result{}, err
	}
	tables := userTables(rels)
	var cp loopCheckpoint[int64]
	resumed := driver.DecodeCheckpoint(r.req.Checkpoint, &cp)
	err = loop(ctx, r, tables, &cp, 0, 90, "count rows of", nil, func(ctx context.Context, table string) (int64, error) {
		return countRows(ctx, r.db, table)
	})
	if err != nil {
		return driver.Result{}, err
	}
	space, err := readFileSpace(ctx, r.db)
	if err != nil {
		return driver.Result{}, err
	}
	usage, err := readDiskUsage(r.target().DSN)
	if err != nil {
		return driver.Result{}, err
	}
	var journalMode string
	if err := r.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&journalMode); err != nil {
		return driver.Result{}, fmt.Errorf("pragma journal_mode: %w", err)
	}

	now := time.Now()
	name := r.target().Name
	sample := func(metric string, v int64) driver.Sample {
		return driver.Sample{Target: name, Metric: metric, At: now, Value: float64(v)}
	}
	indexes := int64(len(indexNames(rels)))
	samples := []driver.Sample{
		sample(MetricSizeBytes, usage.total()),
		sample(MetricFileBytes, usage.File),
		sample(MetricWALBytes, usage.WAL),
		sample(MetricPageCount, space.PageCount),
		sample(MetricFreelistCount, space.FreelistCount),
		sample(MetricTableCount, int64(len(tables))),
		sample(MetricIndexCount, indexes),
	}
	var totalRows int64
	rows := map[string]int64{}
	for _, t := range tables {
		n := cp.Results[t]
		rows[t] = n
		totalRows += n
		samples = append(samples, sample(MetricRowsPrefix+t, n))
	}
	r.progress(95, "record samples", cp.snapshot())
	if err := hist.RecordSamples(ctx, samples...); err != nil {
		return driver.Result{}, fmt.Errorf("record samples: %w", err)
	}
	return driver.Result{
		Summary: fmt.Sprintf("%d samples recorded: %s on disk (%d pages of %d B, %d free), %d tables, %d indexes, %d rows",
			len(samples), humanBytes(usage.total()), space.PageCount, space.PageSize, space.FreelistCount, len(tables), indexes, totalRows),
		Details: map[string]any{
			"size_bytes":     usage.total(),
			"file_bytes":     usage.File,
			"wal_bytes":      usage.WAL,
			"shm_bytes":      usage.SHM,
			"page_size":      space.PageSize,
			"page_count":     space.PageCount,
			"freelist_count": space.FreelistCount,
			"table_count":    len(tables),
			"index_count":    indexes,
			"rows":           rows,
			"total_rows":     totalRows,
			"journal_mode":   journalMode,
			"samples":        len(samples),
			"resumed":        resumed,
		},
	}, nil
}

// capacityTrend measures the disk usage of the database and hands it to
// assess.Capacity: it records the current size, fits a least-squares line
// to the size samples of the last lookback_days and forecasts the days
// until the quota is full: HIGH under runway_alert_days, CRITICAL at a
// quarter of it or less.
func capacityTrend(ctx context.Context, r *run) (driver.Result, error) {
	hist, err := r.requireHistory()
	if err != nil {
		return driver.Result{}, err
	}
	lookback := r.opts().Int("lookback_days")
	alertDays := r.opts().Int("runway_alert_days")
	usage, err := readDiskUsage(r.target().DSN)
	if err != nil {
		return driver.Result{}, err
	}
	return assess.Capacity(ctx, hist, r.target().Name, usage.total(), r.target().QuotaBytes, assess.CapacityOptions{
		Metric: MetricSizeBytes, LookbackDays: lookback, RunwayAlertDays: alertDays,
		Progress: func(pct float64, note string) { r.progress(pct, note, nil) },
	})
}
