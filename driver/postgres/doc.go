// Package postgres is the PostgreSQL driver of Themis Maintenance (pgx v5,
// PostgreSQL 13 and later). It keeps one pgxpool per target name, pinged
// when it is created and replaced when the target's DSN changes; Close
// releases them.
//
// # Sessions, dead workers and retries
//
// Every connection a task uses carries the application_name
// themis:<job>:<task>:a<attempt> (a long or unusual job id is shortened to
// a prefix and a hash, so the name fits PostgreSQL's 63 bytes), client
// programs (pg_basebackup, pg_dump) too through PGAPPNAME; connections
// outside a task are named "themis-maintenance" unless the DSN names them.
// On PostgreSQL 14 and later each connection sets
// client_connection_check_interval (Options.ConnectionCheckInterval,
// default 2 s), so a backend whose worker was killed stops its statement,
// or its lock wait, within seconds. A worker that hangs or is cut off
// keeps its connections open, so attempt N > 1 of a task first terminates
// (pg_terminate_backend) the backends named after an earlier attempt of
// the same job and task, waits until they are gone (at most 30 s), drops
// the invalid _ccnew/_ccold indexes an interrupted REINDEX CONCURRENTLY
// leaves (index_rebuild, index_reorganize, vector_reindex), and then
// resumes from the heartbeat checkpoint; the result's details report it
// under previous_attempts.
//
// # What each task does
//
//   - metrics_collection: pg_stat_database, pg_stat_bgwriter (and
//     pg_stat_checkpointer on 17+), table tuple totals and
//     pg_database_size, kept as history samples (size_bytes, connections,
//     cache_hit_ratio, xid_age, ...). No locks.
//   - fragmentation_monitoring, index_fragmentation_report: bloat per table
//     (pgstattuple_approx) and btree index (pgstatindex leaf density against
//     the fillfactor, plus empty and deleted pages) when pgstattuple is
//     installed or may be created (Target.AllowCreateExtension, into
//     Target.ExtensionSchema: a routine task never changes a production
//     database's schema otherwise); otherwise an estimate from catalog
//     statistics (row and key widths from pg_stats, reltuples), and the
//     result says which method was used and why. Relations under
//     min_size_bytes (default 1 MiB) are skipped; HIGH alert at or above
//     high_threshold_pct (default 30). ACCESS SHARE per relation.
//   - quota_check: pg_database_size against Target.QuotaBytes; HIGH above
//     alert_pct (default 80), CRITICAL at 100 %; no quota is reported as such.
//   - consistency_check: amcheck bt_index_check on every valid btree index,
//     catalog indexes included, on parallelism sessions (default 2): never
//     checked first, then the oldest last good check (consistency_check or
//     full_checkdb, from the command log), largest first between equals
//     (largest first without a command log). ACCESS SHARE.
//   - full_checkdb: verify_heapam on every table with its TOAST (14+) and
//     bt_index_parent_check(heapallindexed => true) on every btree index
//     (bt_index_check with heapallindexed on a standby), one queue of
//     relations in the rotation order of consistency_check, on parallelism
//     sessions. parent_check holds
//     SHARE on the table: writes to that table wait while its index is
//     checked. Corruption found by either task is a permanent
//     driver.KindIntegrityViolation naming the relations.
//   - replica_validation: pg_stat_replication on a primary (bytes via
//     pg_wal_lsn_diff, time via replay_lag), now() -
//     pg_last_xact_replay_timestamp() on a standby (0 when all received WAL
//     is replayed), every Target.ReplicaDSNs entry measured from inside, and
//     replication slots. WARNING above degraded_lag_ms (1000), CRITICAL above
//     critical_lag_ms (5000) or when a configured replica is unreachable.
//     Threshold breaches do not fail the task: the measurement succeeded and
//     the alerts carry the verdict (details.status is the worst state).
//   - performance_analysis: top_n statements of pg_stat_statements (created
//     when the library is preloaded and the target allows it), lock waits with blocking chains from
//     pg_blocking_pids, transactions older than long_txn_seconds. Query texts
//     have their literals replaced by '?'.
//   - mvcc_cleanup: VACUUM (ANALYZE) of tables past dead_tuple_threshold, and
//     VACUUM (FREEZE, ANALYZE) of those past xid_age_threshold, in parallel
//     (parallelism, default 2), one session each. SHARE UPDATE EXCLUSIVE.
//   - statistics_update: ANALYZE of tables with stale statistics, parallel.
//     SHARE UPDATE EXCLUSIVE.
//   - storage_compaction: plain VACUUM of tables with dead tuples; with
//     full=true, VACUUM (FULL, ANALYZE) of tables of 1 MiB or more with 20 %
//     or more waste (ACCESS EXCLUSIVE for the rewrite): the catalog
//     estimate first, pgstattuple_approx only for tables it puts at 5 % or
//     more.
//   - index_rebuild, index_reorganize: REINDEX INDEX CONCURRENTLY of btree
//     indexes of min_size_bytes (default 1 MiB) or more at or above
//     high_threshold_pct (default 30; nothing is measured at 0). Cheap
//     first, in Ola Hallengren's tiers: every candidate's bloat is
//     estimated from catalog statistics, and only those at or above
//     low_threshold_pct (default 5) are measured exactly with pgstatindex;
//     those measured between the two tiers are reported (moderate_tier),
//     not rebuilt (index_reorganize runs the same online rebuild, and a
//     rebuild costs as much whatever the bloat). Tables in parallel,
//     largest first, indexes of one table in turn, or one REINDEX TABLE
//     CONCURRENTLY when every index of the table is chosen (unless
//     rebuild_unit=index: one statement per index, throttled between
//     them). SHARE UPDATE EXCLUSIVE. When a rebuild fails or
//     is cancelled the invalid _ccnew copies it leaves are dropped with DROP
//     INDEX CONCURRENTLY.
//   - orphan_cleanup: DROP INDEX CONCURRENTLY of invalid indexes (not while
//     an index build runs on their table), and removal of this driver's
//     stale scratch restores (marker untouched for an hour), abandoned DR
//     drill instances (marker untouched for 24 hours; their server is
//     stopped first) and unfinished backups.
//   - vector_reindex: REINDEX INDEX CONCURRENTLY of hnsw and ivfflat indexes
//     when the vector extension is installed; otherwise "no vector indexes".
//   - backup_verification: first the drill's scratch preflight (the
//     scratch directory can be created, is reachable by the OS user of the
//     server binaries, and has 1.5 × the databases' size free; else a
//     permanent driver.KindMisconfigured naming the directory and user),
//     then pg_basebackup (method native or pg_basebackup,
//     checked with pg_verifybackup) or pg_dump from an exported snapshot,
//     into Target.BackupDir; restored into a throwaway instance on a private
//     Unix socket under Target.ScratchDir with a configuration of its own
//     (archiving off, no production paths); verified with amcheck and row
//     counts per table against the source; torn down; recorded with
//     History.RecordBackup; older backups pruned to keep_backups. A backup
//     that does not verify is a permanent driver.KindVerificationFailed.
//     With Target.WALArchiveDir set, the WAL chain from the latest verified
//     base backup's start segment (backup_label) to the server's current
//     segment is checked in that directory, following .history files
//     across timelines: OK, WARNING (only the newest segments not archived
//     yet while the archiver works) or FAILURE (a gap, with the missing
//     ranges), in the summary and details.wal_chain; FAILURE is a permanent
//     driver.KindVerificationFailed. pg_verifybackup runs when the backup
//     has a backup_manifest.
//     Binaries come from Target.BinDir (else the server's major version
//     under /usr/lib/postgresql, $THEMIS_PG_BINDIR, PATH) and run as
//     Target.OSUser (as "postgres" when it is empty and the worker is root).
//     No password appears on a command line or in an environment: the DSN
//     is passed as libpq environment variables without its password, which
//     reaches the program through a 0600 passfile (PGPASSFILE) removed when
//     it exits; children inherit only PATH, TZ, TMPDIR and the locale.
//   - capacity_trend_analysis: a size_bytes sample, a least-squares trend
//     over lookback_days (package forecast) and the runway to the quota;
//     HIGH below runway_alert_days (30), CRITICAL at the quota.
//   - baseline_update: probe queries timed (median of ProbeRuns) against the
//     stored baseline; WARNING per probe slower than regression_pct (50 %)
//     and RegressionFloor; the new timings become the baseline.
//   - disaster_recovery_drill is not a Run task: drills are a workflow of
//     their own, for which the driver implements driver.Driller (below).
//
// The driver also implements driver.Prober (Probe): version, standby or
// primary, size against the quota, worst replica lag and the age of the
// newest verified backup, from a few read-only catalog queries.
//
// # DR drills (driver.Driller)
//
//   - Strategies (docs/DR_DRILL.md, "PostgreSQL strategies"; drill_strategy.go):
//     the request's, else Target.DrillStrategy, else backup_restore when a
//     verified pg_basebackup backup taken before the failure instant exists
//     (the history store's newest verified backup, else the newest verified
//     marker in backup_dir), else replica_clone. Scratch.RestoredFrom ends
//     with the strategy and why it was chosen.
//   - DrillPreflight (read-only): the target must be the primary (a standby
//     is Misconfigured: the canary is written there); wal_level,
//     archive_mode and the archiver's state are noted; the strategy is
//     chosen and its source checked: for backup_restore the base backup,
//     a readable Target.WALArchiveDir and its WAL chain from that backup
//     (a gap is VerificationFailed); for replica_clone the first
//     Target.ReplicaDSNs standby that is reachable, in recovery and able to
//     serve pg_basebackup (wal senders, REPLICATION), else the primary;
//     binaries must match the server's major version; the scratch
//     directory needs 1.5 × the size of the cluster's databases free
//     (statfs).
//   - CanaryWrite: CREATE TABLE IF NOT EXISTS public.themis_drill_canary
//     (drill_id, seq, written_at timestamptz) and INSERT ... ON CONFLICT DO
//     NOTHING, autocommit, lock_timeout 5 s: the only write a drill makes
//     to production. CanaryCleanup deletes the drill's rows and drops the
//     table once it is empty, in one transaction (ACCESS EXCLUSIVE on the
//     canary table only).
//   - DrillRestore by replica_clone: a fresh pg_basebackup -X stream of the
//     source into <scratch_dir>/drill-<sanitised id>/data (tablespaces
//     mapped inside), started with a configuration of its own (archive_mode
//     off, no WAL senders, no primary_conninfo, no TCP listener: only a
//     Unix socket in a directory private to the server's OS account,
//     trusted) in archive recovery that stops at the copy's consistent
//     point (recovery_target = 'immediate') and promotes; so a copy of a
//     standby holds what the standby had replayed, and a lagging standby
//     shows as a real RPO. When the copy's WAL ends exactly at that point,
//     it is recovered to the end of its WAL (the same point).
//   - DrillRestore by backup_restore (drill_backup_restore.go): the WAL
//     chain from the chosen base backup to the server's current segment is
//     checked first (a gap is a permanent VerificationFailed naming the
//     missing range, before anything is made); the backup's data directory
//     is copied into the drill's directory and started like a clone, but
//     with restore_command copying from Target.WALArchiveDir,
//     recovery_target_timeline = latest and recovery_target_time = the
//     failure instant (inclusive, then promote); without a WAL archive it
//     stops at the backup's consistent point. An archive holding no commit
//     after the failure instant makes PostgreSQL refuse the unreached
//     target: the copy is then recovered to the end of the archive (the
//     same data).
//   - Both record RestoredBytes and CopyMs (the copy), ReplayMs (start-up,
//     replay, promotion), and from the scratch server's log WALBytes (redo
//     start to redo end) and WALRange (the first and last segment
//     replayed). The restore is keyed by the drill id: a marker file
//     records state, port, source and these figures; a restored instance is
//     returned as it is, an unfinished attempt's leftovers are removed
//     first, and a failed or cancelled restore removes what it made.
//   - DrillVerify: in the scratch instance only, amcheck (bt_index_check
//     with heapallindexed on every btree index, verify_heapam on 14+), row
//     counts of every table (the canary table apart), the drill's canary
//     rows and their newest written_at, then SELECT 1 (ServingAt).
//     Corruption, or a copy amcheck cannot check, is IntegrityOK false
//     with the problems listed.
//   - DrillCleanup: pg_ctl stop -m immediate; a server pg_ctl cannot stop,
//     its children and any pg_basebackup of the drill are signalled only
//     when /proc shows a PostgreSQL binary working on the drill's data
//     directory (a stale pid file's pid is left alone); then the drill's
//     directory is removed. Nothing outside the scratch directory is
//     touched; nothing left is success.
//
// Scratch instances use no pools of the driver; Close needs no drill
// clean-up and does not stop them (DrillCleanup and orphan_cleanup do).
//
// # Sessions, timeouts, cancellation
//
// Every lock-taking statement runs on a session (a pool connection) on
// which SET lock_timeout and SET statement_timeout were issued from the
// task's lock_timeout_ms and statement_timeout_ms options (validated
// integers; 0 or absent means Options.LockTimeout, 10 s, and
// Options.StatementTimeout, 2 h per statement). The settings are reset
// before the connection returns to the pool. Identifiers reach SQL only
// through pgx.Identifier.Sanitize, values only as bind parameters; utility
// statements (VACUUM, ANALYZE, REINDEX, DROP INDEX CONCURRENTLY) go through
// Exec without arguments, outside any transaction.
//
// When ctx is cancelled pgx sends the server a cancel request at once (the
// pool is built with pgconn.CancelRequestContextWatcherHandler), so the
// statement stops server-side; if the server does not answer within 10 s
// the socket is closed and the backend is cancelled by pid from another
// connection. Run then returns ctx.Err().
//
// # Dry runs, window budgets, the command log
//
// A dry run (driver.Request.DryRun; the driver plans its heavy tasks,
// PlansDryRun) reads the catalog and measures exactly as a real run does,
// then records each statement that would change the target — everything
// a session execs (VACUUM, ANALYZE, REINDEX, DROP INDEX, CREATE
// EXTENSION, the amcheck calls) — in Result.Plan with its object, reason,
// figures and predicted duration, instead of sending it; no extension is
// created and backup_verification plans its command lines (plan.go).
//
// A window budget (driver.Request.Budget) is honoured where units start
// (forEachSession; budget.go): none starts at or after StopStartingAt, nor
// one predicted (command log, driver.UnitHistory) to end after it; one
// still running at HardStopAt is cancelled server-side. Units left are in
// Result.UnitsLeft and the task's results as skipped (window_closed,
// time_limit, or "would not fit: ..."), the task succeeds, and the next
// run takes Budget.Carried first.
//
// Every statement is reported to the task's command log (package
// driver/commandlog), with its object: read from a maintenance statement's
// text, or set by the task when the statement only passes it as an
// argument (the amcheck calls).
//
// Per-relation tasks heartbeat after each relation with a checkpoint of the
// relations done (schema.name) and their results; a retried attempt skips
// them. A relation whose lock is not granted within lock_timeout is left
// undone and the task returns a retryable error naming it once the others
// are done, so the retry does only what is left.
//
// # Errors
//
// Classification is by SQLSTATE (pgerrcode): data_corrupted and
// index_corrupted are permanent IntegrityViolation; authentication, unknown
// database, insufficient privilege, undefined objects and other SQL-level
// mistakes are permanent Misconfigured; lock_not_available,
// query_canceled (our statement_timeout), deadlocks, serialization failures,
// connection failures, shutdowns and resource exhaustion are plain
// (retryable) errors.
package postgres
