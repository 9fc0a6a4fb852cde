package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// walCheckpoint is mvcc_cleanup on SQLite: SQLite keeps no dead row versions
// (deleted rows free their space at once), but in WAL mode committed pages
// pile up in the write-ahead log until a checkpoint copies them back.
// PRAGMA wal_checkpoint(TRUNCATE) copies every frame and truncates the log.
func walCheckpoint(ctx context.Context, r *run) (driver.Result, error) {
	mode, err := journalMode(ctx, r)
	if err != nil {
		return driver.Result{}, err
	}
	if mode != "wal" {
		summary := fmt.Sprintf("database is in %s journal mode, not WAL: no write-ahead log to checkpoint and no dead row versions to clean (SQLite frees deleted rows at once)", mode)
		if r.req.DryRun {
			summary = dryRunSummary("do nothing: %s", summary)
		}
		return driver.Result{
			Summary: summary,
			Details: map[string]any{"journal_mode": mode, "checkpointed": false, "analogue": "wal_checkpoint(TRUNCATE)"},
		}, nil
	}
	before, err := readDiskUsage(r.target().DSN)
	if err != nil {
		return driver.Result{}, err
	}
	pageSize, err := pragmaInt(ctx, r.db, "page_size")
	if err != nil {
		return driver.Result{}, err
	}
	// With TRUNCATE SQLite reports 0 frames once the log is reset, so the
	// frame count comes from the log's size: a 32-byte header, then frames
	// of a 24-byte header and one page.
	framesBefore := int64(0)
	if before.WAL > 32 {
		framesBefore = (before.WAL - 32) / (24 + pageSize)
	}
	st := driver.PlannedStatement{
		Statement: `PRAGMA wal_checkpoint(TRUNCATE)`,
		Reason: fmt.Sprintf("journal_mode is wal: %d frames (%s) in the write-ahead log are copied into the database and the log truncated",
			framesBefore, humanBytes(before.WAL)),
		Figures: map[string]any{"journal_mode": mode, "wal_frames": framesBefore, "wal_bytes": before.WAL},
	}
	var busy, logFrames, done int64
	r.progress(5, "wal_checkpoint(TRUNCATE)", nil)
	stopped, err := r.whole(ctx, func(ctx context.Context) error {
		return r.during(5, "wal_checkpoint(TRUNCATE)", nil, func() error {
			return r.maintain(ctx, st, func(ctx context.Context, stmt string) error {
				return r.timed(ctx, "wal_checkpoint(TRUNCATE)", func(ctx context.Context) error {
					return r.db.QueryRowContext(ctx, stmt).Scan(&busy, &logFrames, &done)
				})
			})
		})
	})
	if err != nil {
		return driver.Result{}, err
	}
	if stopped {
		return r.budget.notStarted("wal_checkpoint(TRUNCATE)"), nil
	}
	if r.req.DryRun {
		return driver.Result{
			Summary: dryRunSummary("checkpoint %d WAL frames (%s) into the database and truncate the log with PRAGMA wal_checkpoint(TRUNCATE)",
				framesBefore, humanBytes(before.WAL)),
			Details: map[string]any{"journal_mode": mode, "analogue": "wal_checkpoint(TRUNCATE)", "wal_frames_before": framesBefore, "wal_bytes_before": before.WAL},
		}, nil
	}
	if busy != 0 {
		// Readers or a writer kept the checkpoint from finishing within the
		// busy timeout; a later attempt can succeed.
		return driver.Result{}, fmt.Errorf("wal_checkpoint(TRUNCATE) could not finish: %d of %d WAL frames copied, the log is still in use by other connections", done, logFrames)
	}
	after, err := readDiskUsage(r.target().DSN)
	if err != nil {
		return driver.Result{}, err
	}
	return driver.Result{
		Summary: fmt.Sprintf("wal_checkpoint(TRUNCATE), SQLite's analogue of MVCC cleanup: %d WAL frames checkpointed into the database, WAL truncated from %s to %s",
			framesBefore, humanBytes(before.WAL), humanBytes(after.WAL)),
		Details: map[string]any{
			"journal_mode":      mode,
			"checkpointed":      true,
			"analogue":          "wal_checkpoint(TRUNCATE)",
			"wal_frames_before": framesBefore,
			"wal_bytes_before":  before.WAL,
			"wal_bytes_after":   after.WAL,
			"file_bytes_before": before.File,
			"file_bytes_after":  after.File,
			"ignored_options": r.ignoredOptions(map[string]string{
				"dead_tuple_threshold": "SQLite keeps no dead row versions",
				"xid_age_threshold":    "SQLite has no transaction-id wraparound",
				"parallelism":          oneWriter,
			}),
		},
	}, nil
}

// storageCompaction returns free pages to the file system. VACUUM rewrites
// the whole database under an exclusive lock, so it runs only with
// full=true; without it a database in auto_vacuum=INCREMENTAL mode gets
// PRAGMA incremental_vacuum (no rewrite), and any other only a report of
// what VACUUM would reclaim.
func storageCompaction(ctx context.Context, r *run) (driver.Result, error) {
	full := r.opts().Bool("full")
	before, err := readFileSpace(ctx, r.db)
	if err != nil {
		return driver.Result{}, err
	}
	usageBefore, err := readDiskUsage(r.target().DSN)
	if err != nil {
		return driver.Result{}, err
	}
	autoVacuum, err := pragmaInt(ctx, r.db, "auto_vacuum")
	if err != nil {
		return driver.Result{}, err
	}
	details := map[string]any{
		"full":                 full,
		"auto_vacuum":          map[int64]string{0: "none", 1: "full", 2: "incremental"}[autoVacuum],
		"file_bytes_before":    usageBefore.File,
		"freelist_before":      before.FreelistCount,
		"reclaimable_bytes":    before.freeBytes(),
		"page_count_before":    before.PageCount,
		"exclusive_lock_taken": false,
	}
	figures := map[string]any{
		"full":              full,
		"auto_vacuum":       details["auto_vacuum"],
		"freelist_count":    before.FreelistCount,
		"page_count":        before.PageCount,
		"reclaimable_bytes": before.freeBytes(),
	}
	free := fmt.Sprintf("%d free pages (%s) of %d", before.FreelistCount, humanBytes(before.freeBytes()), before.PageCount)
	var method string
	var stopped bool
	switch {
	case full:
		method = "VACUUM"
		// In WAL mode the rewritten pages are in the log; a checkpoint
		// after VACUUM lets the file really shrink.
		mode, err := journalMode(ctx, r)
		if err != nil {
			return driver.Result{}, err
		}
		r.progress(5, "VACUUM (rewrites the whole database)", nil)
		start := time.Now()
		stopped, err = r.whole(ctx, func(ctx context.Context) error {
			err := r.during(5, "VACUUM (rewrites the whole database)", nil, func() error {
				return r.maintain(ctx, driver.PlannedStatement{
					Statement: `VACUUM`,
					Reason:    "full=true: VACUUM rewrites the whole database under an exclusive lock, returning " + free + " to the file system",
					Figures:   figures,
				}, func(ctx context.Context, stmt string) error {
					return r.timed(ctx, "VACUUM", func(ctx context.Context) error {
						_, err := r.db.ExecContext(ctx, stmt)
						return err
					})
				})
			})
			if err != nil {
				return fmt.Errorf("vacuum: %w", err)
			}
			if !r.req.DryRun {
				details["exclusive_lock_taken"] = true
				details["vacuum_ms"] = time.Since(start).Milliseconds()
			}
			if mode != "wal" {
				return nil
			}
			r.progress(90, "wal_checkpoint(TRUNCATE) after VACUUM", nil)
			err = r.maintain(ctx, driver.PlannedStatement{
				Statement: `PRAGMA wal_checkpoint(TRUNCATE)`,
				Reason:    "journal_mode is wal: the pages VACUUM rewrote are in the write-ahead log until a checkpoint copies them and the file shrinks",
				Figures:   map[string]any{"journal_mode": mode},
			}, func(ctx context.Context, stmt string) error {
				_, err := r.db.ExecContext(ctx, stmt)
				return err
			})
			if err != nil {
				return fmt.Errorf("checkpoint after vacuum: %w", err)
			}
			return nil
		})
		if err != nil {
			return driver.Result{}, err
		}
	case autoVacuum == 2:
		method = "incremental_vacuum"
		r.progress(5, "PRAGMA incremental_vacuum", nil)
		stopped, err = r.whole(ctx, func(ctx context.Context) error {
			return r.during(5, "PRAGMA incremental_vacuum", nil, func() error {
				return r.maintain(ctx, driver.PlannedStatement{
					Statement: `PRAGMA incremental_vacuum`,
					Reason:    "auto_vacuum is incremental: PRAGMA incremental_vacuum releases " + free + " pages without a rewrite",
					Figures:   figures,
				}, func(ctx context.Context, stmt string) error {
					return r.timed(ctx, "incremental_vacuum", func(ctx context.Context) error {
						rows, err := r.db.QueryContext(ctx, stmt)
						if err != nil {
							return err
						}
						for rows.Next() {
						}
						rows.Close()
						return rows.Err()
					})
				})
			})
		})
		if err != nil {
			return driver.Result{}, fmt.Errorf("incremental_vacuum: %w", err)
		}
	default:
		details["method"] = "none"
		summary := fmt.Sprintf("nothing compacted: VACUUM rewrites the whole database under an exclusive lock and runs only with full=true, and auto_vacuum is %s (not incremental); %d free pages (%s) reclaimable",
			details["auto_vacuum"], before.FreelistCount, humanBytes(before.freeBytes()))
		if r.req.DryRun {
			summary = dryRunSummary("compact nothing: %s", strings.TrimPrefix(summary, "nothing compacted: "))
		}
		return driver.Result{Summary: summary, Details: details}, nil
	}
	if stopped {
		return r.budget.notStarted(method), nil
	}
	details["method"] = method
	if r.req.DryRun {
		what := "VACUUM the whole database under an exclusive lock (full=true)"
		if method != "VACUUM" {
			what = "run PRAGMA incremental_vacuum (auto_vacuum=INCREMENTAL, no rewrite)"
		}
		return driver.Result{
			Summary: dryRunSummary("%s, returning %s (file %s)", what, free, humanBytes(usageBefore.File)),
			Details: details,
		}, nil
	}
	after, err := readFileSpace(ctx, r.db)
	if err != nil {
		return driver.Result{}, err
	}
	usageAfter, err := readDiskUsage(r.target().DSN)
	if err != nil {
		return driver.Result{}, err
	}
	details["method"] = method
	details["file_bytes_after"] = usageAfter.File
	details["freelist_after"] = after.FreelistCount
	details["page_count_after"] = after.PageCount
	details["reclaimed_bytes"] = usageBefore.File - usageAfter.File
	what := "PRAGMA incremental_vacuum released the free pages (auto_vacuum=INCREMENTAL, no rewrite)"
	if method == "VACUUM" {
		what = "VACUUM rewrote the whole database under an exclusive lock (full=true)"
	}
	summary := fmt.Sprintf("%s: file %s → %s, free pages %d → %d", what,
		humanBytes(usageBefore.File), humanBytes(usageAfter.File), before.FreelistCount, after.FreelistCount)
	return driver.Result{Summary: summary, Details: details}, nil
}

// statisticsUpdate runs ANALYZE table by table (resumable, each table a
// unit of the budget), then PRAGMA optimize, which refreshes whatever
// statistics the planner still lacks (not when the budget left tables: it
// could analyze them past the window).
func statisticsUpdate(ctx context.Context, r *run) (driver.Result, error) {
	rels, err := listRelations(ctx, r.db)
	if err != nil {
		return driver.Result{}, err
	}
	tables := r.budget.order(userTables(rels))
	var cp loopCheckpoint[float64]
	resumed := driver.DecodeCheckpoint(r.req.Checkpoint, &cp)
	skippedDone := len(cp.Done)
	err = unitLoop(ctx, r, tables, &cp, 0, 90, "ANALYZE", nil, r.budget, func(ctx context.Context, table string) (float64, error) {
		start := time.Now()
		err := r.maintain(ctx, driver.PlannedStatement{
			Object:    table,
			Statement: `ANALYZE main.` + quoteIdent(table),
			Reason:    "statistics_update analyzes every table",
		}, func(ctx context.Context, stmt string) error {
			return r.timed(ctx, "analyze "+table, func(ctx context.Context) error {
				_, err := r.db.ExecContext(ctx, stmt)
				return err
			})
		})
		if err != nil {
			return 0, fmt.Errorf("analyze %s: %w", table, err)
		}
		return msSince(start), nil
	})
	if err != nil {
		return driver.Result{}, err
	}
	optimized := len(r.budget.left) == 0
	if optimized {
		r.progress(92, "PRAGMA optimize", cp.snapshot())
		err := r.maintain(ctx, driver.PlannedStatement{
			Statement: `PRAGMA optimize`,
			Reason:    "refreshes whatever statistics the planner still lacks",
		}, func(ctx context.Context, stmt string) error {
			_, err := r.db.ExecContext(ctx, stmt)
			return err
		})
		if err != nil {
			return driver.Result{}, fmt.Errorf("pragma optimize: %w", err)
		}
	}
	var stat1 int64
	// sqlite_stat1 exists once ANALYZE ran on any table with an index.
	if err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'`).Scan(&stat1); err == nil && stat1 > 0 {
		if err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_stat1`).Scan(&stat1); err != nil {
			return driver.Result{}, fmt.Errorf("read sqlite_stat1: %w", err)
		}
	}
	analyzed := len(cp.Done) - skippedDone
	res := driver.Result{
		Summary: fmt.Sprintf("ANALYZE ran on %d tables (%d rows of statistics in sqlite_stat1), then PRAGMA optimize", len(cp.Done), stat1),
		Details: map[string]any{
			"tables":          tables,
			"analyze_ms":      cp.Results,
			"stat1_rows":      stat1,
			"resumed":         resumed,
			"already_done":    skippedDone,
			"optimized":       optimized,
			"ignored_options": r.ignoredOptions(map[string]string{"parallelism": oneWriter}),
		},
	}
	switch {
	case r.req.DryRun && optimized:
		res.Summary = dryRunSummary("ANALYZE %d tables, then PRAGMA optimize (sqlite_stat1 now has %d rows)", analyzed, stat1)
	case r.req.DryRun:
		res.Summary = dryRunSummary("ANALYZE %d tables, without PRAGMA optimize", analyzed)
	case !optimized:
		res.Summary = fmt.Sprintf("ANALYZE ran on %d tables (%d rows of statistics in sqlite_stat1); PRAGMA optimize not run", len(cp.Done), stat1)
	}
	r.budget.report(&res, "tables")
	return res, nil
}

// reindexDecision is why an index is rebuilt: the figures that crossed the
// thresholds.
type reindexDecision struct {
	reason  string
	figures map[string]any
}

// reindex is index_rebuild and index_reorganize: SQLite has one operation
// for both, REINDEX, which rebuilds an index from its table into freshly
// packed pages. Indexes run one by one (each a unit of the budget) with a
// heartbeat and a checkpoint after each; a retried attempt skips those its
// checkpoint lists. With high_threshold_pct set only indexes at least that
// fragmented (and at least min_size_bytes big, 64 KiB on SQLite by default)
// are rebuilt.
func reindex(ctx context.Context, r *run) (driver.Result, error) {
	rels, err := listRelations(ctx, r.db)
	if err != nil {
		return driver.Result{}, err
	}
	var indexes []relation
	for _, rel := range rels {
		if rel.Type == "index" {
			indexes = append(indexes, rel)
		}
	}
	var cp loopCheckpoint[float64]
	resumed := driver.DecodeCheckpoint(r.req.Checkpoint, &cp)
	skippedDone := len(cp.Done)

	thresholdSet := r.opts().IsSet("high_threshold_pct")
	minSizeSet := r.opts().IsSet("min_size_bytes")
	threshold := r.opts().Float("high_threshold_pct")
	minSize := r.opts().Int("min_size_bytes")
	var todo []string
	why := map[string]reindexDecision{}
	belowThreshold := map[string]float64{}
	smaller := map[string]int64{}
	for _, idx := range indexes {
		d := reindexDecision{reason: "no high_threshold_pct or min_size_bytes set: every index is rebuilt"}
		if (thresholdSet || minSizeSet) && !cp.isDone(idx.Name) {
			f, err := measureRelation(ctx, r.db, idx)
			if err != nil {
				return driver.Result{}, err
			}
			// Small indexes are below any threshold: a one-page index is
			// always "mostly empty" and REINDEX cannot change that.
			if f.TotalBytes < minSize {
				smaller[idx.Name] = f.TotalBytes
				continue
			}
			if thresholdSet && f.FragmentationPct < threshold {
				belowThreshold[idx.Name] = f.FragmentationPct
				continue
			}
			d.figures = map[string]any{"total_bytes": f.TotalBytes, "min_size_bytes": minSize, "fragmentation_pct": f.FragmentationPct}
			d.reason = fmt.Sprintf("%s >= min_size_bytes %s", humanBytes(f.TotalBytes), humanBytes(minSize))
			if thresholdSet {
				d.figures["high_threshold_pct"] = threshold
				d.reason = fmt.Sprintf("%.1f %% fragmented >= %.0f %%, %s", f.FragmentationPct, threshold, d.reason)
			}
		}
		why[idx.Name] = d
		todo = append(todo, idx.Name)
	}
	todo = r.budget.order(todo)
	err = unitLoop(ctx, r, todo, &cp, 0, 100, "reindex", nil, r.budget, func(ctx context.Context, name string) (float64, error) {
		start := time.Now()
		err := r.maintain(ctx, driver.PlannedStatement{
			Object: name,
			// Schema-qualified, so a name that is also a collation's is
			// taken as the index.
			Statement: `REINDEX main.` + quoteIdent(name),
			Reason:    why[name].reason,
			Figures:   why[name].figures,
		}, func(ctx context.Context, stmt string) error {
			return r.timed(ctx, "reindex "+name, func(ctx context.Context) error {
				_, err := r.db.ExecContext(ctx, stmt)
				return err
			})
		})
		if err != nil {
			return 0, fmt.Errorf("reindex %s: %w", name, err)
		}
		return msSince(start), nil
	})
	if err != nil {
		return driver.Result{}, err
	}
	rebuilt := len(cp.Done) - skippedDone
	summary := fmt.Sprintf("REINDEX rebuilt %d indexes", rebuilt)
	if r.req.DryRun {
		summary = dryRunSummary("REINDEX %d indexes", rebuilt)
	}
	if skippedDone > 0 {
		summary += fmt.Sprintf(" (%d more already rebuilt by an earlier attempt)", skippedDone)
	}
	if thresholdSet {
		summary += fmt.Sprintf("; %d below %.0f %% fragmentation left alone", len(belowThreshold), threshold)
	}
	if len(smaller) > 0 {
		summary += fmt.Sprintf("; %d smaller than %d bytes left alone", len(smaller), minSize)
	}
	if r.req.Task == domain.TaskIndexReorganize {
		summary += "; SQLite has no lighter reorganize, REINDEX is its rebuild"
	}
	res := driver.Result{
		Summary: summary,
		Details: map[string]any{
			"reindexed":            cp.Done,
			"reindex_ms":           cp.Results,
			"rebuilt_this_attempt": rebuilt,
			"already_done":         skippedDone,
			"below_threshold":      belowThreshold,
			"below_min_size":       smaller,
			"resumed":              resumed,
			"statement":            "REINDEX",
			"ignored_options":      r.ignoredOptions(map[string]string{"parallelism": oneWriter}),
		},
	}
	r.budget.report(&res, "indexes")
	return res, nil
}

func journalMode(ctx context.Context, r *run) (string, error) {
	var mode string
	if err := r.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return "", fmt.Errorf("pragma journal_mode: %w", err)
	}
	return mode, nil
}
