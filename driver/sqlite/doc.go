// Package sqlite is the SQLite driver of Themis Maintenance (modernc.org/sqlite,
// pure Go, no cgo). A target's DSN is the path of its database file.
//
// Each task maps onto what SQLite really has:
//
//   - consistency_check: PRAGMA quick_check and foreign_key_check per table
//     (resumable), then quick_check of the schema and freelist;
//     full_checkdb: whole-file PRAGMA integrity_check plus foreign_key_check.
//     Problems fail the task with driver.KindIntegrityViolation naming the
//     tables and indexes involved.
//   - fragmentation_monitoring, index_fragmentation_report: per b-tree page
//     statistics from the dbstat virtual table (compiled into modernc):
//     unused bytes / total bytes, and how often consecutive leaf pages are not
//     adjacent in the file; plus the file's freelist.
//   - quota_check: database + WAL + shared-memory file sizes against the quota.
//   - metrics_collection: page and freelist counts, sizes, tables and row
//     counts, written to the history store as samples.
//   - capacity_trend_analysis: a size sample plus a least-squares trend over
//     the history (package forecast) and the runway to the quota.
//   - baseline_update: timed probe queries compared with the stored baseline.
//   - mvcc_cleanup: PRAGMA wal_checkpoint(TRUNCATE), SQLite's analogue.
//   - storage_compaction: VACUUM (whole-file rewrite, only with full=true) or
//     PRAGMA incremental_vacuum when the file uses auto_vacuum=INCREMENTAL.
//   - statistics_update: ANALYZE per table, then PRAGMA optimize.
//   - index_rebuild, index_reorganize: REINDEX per index (resumable).
//   - backup_verification: VACUUM INTO a timestamped file in the backup
//     directory, integrity_check and row-count comparison of the copy,
//     recorded in the history store, pruned to keep_backups.
//   - orphan_cleanup: stale partial backups and scratch directories.
//
// replica_validation, performance_analysis and vector_reindex have no SQLite
// counterpart and fail with an error wrapping driver.ErrNotSupported.
//
// disaster_recovery_drill is not a Run task: the drill workflow drives the
// driver through driver.Driller (drill.go). SQLite has no WAL archive and no
// replica, so its one strategy is backup_restore: the restore copies the
// latest verified backup that backup_verification recorded in the history
// store, taken at or before the failure instant, into
// <scratch_dir>/drill-<id>/restored.db (never a copy made for the drill);
// verification opens that copy read-only. No such backup fails preflight and
// restore with a Misconfigured error that says to run backup_verification.
// The canary table themis_drill_canary is the drill's only write to the
// database; clean-up removes it and the scratch directory, never the backup.
//
// Every statement a task sends to the target goes to the command log of
// its context (package driver/commandlog) through the connections
// openRecorded makes (commandlog.go): object, operation, text, start, end,
// rows affected or returned, error.
//
// A dry run (driver.Request.DryRun; PlansDryRun says which tasks) opens the
// file read-only, reads and decides as a real run does, and returns the
// statements it would have sent in Result.Plan (plan.go); orphan_cleanup,
// which removes files rather than sending statements, names them in
// Details["would_remove"].
//
// A budget (driver.Request.Budget, budget.go) bounds the units of
// statistics_update (a table), index_rebuild and index_reorganize (an
// index) and consistency_check (a table, oldest good check first); VACUUM,
// wal_checkpoint, integrity_check and the backup are one unit each, named
// "main". Units left are in Result.UnitsLeft; the next run starts with them.
//
// Every per-relation loop heartbeats a checkpoint (the relations done so far
// and their results) and a retried attempt resumes from it. Long single
// statements (VACUUM, integrity_check) heartbeat on a timer while they run.
package sqlite
