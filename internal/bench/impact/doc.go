// Package impact measures what maintenance costs the foreground workload
// (`make bench-impact`, docs/MAINTENANCE_SCHEDULE.md "Throttling and
// pacing"): a rate-limited pgbench read/write workload runs against a
// primary with a streaming standby while mvcc_cleanup and index_rebuild run
// over a generated, bloated database, once by this project with throttling
// on and once by the native tools, beside a quiet baseline (pgbench alone).
//
// # Set-up
//
// A throwaway primary (testsuite/pgcluster: fsync off, synchronous_commit
// off; here autovacuum and WAL archiving off) gets two databases:
//
//   - app, the foreground's: pgbench -i -s Config.Scale;
//   - bench, the maintenance's: Config.Tables tables of
//     pgcluster.SeedContext (three btree indexes each, autovacuum disabled
//     on them, 30 % of the rows deleted and 20 % updated on an indexed
//     column), topped up until the database reaches Config.SizeBytes.
//
// The primary is then shut down cleanly and its data directory copied.
// Before each side the copy is put back (cp -a) and a fresh streaming
// standby made with pg_basebackup (pgcluster.StartReplicaContext), so the
// three sides start from the same bytes and face the same work.
//
// # Sides
//
//   - quiet: pgbench alone for Config.BaselineSeconds;
//   - ours: driver.Run of the postgres driver, in-process, with a
//     driver.Target for the primary whose ReplicaDSNs names the standby:
//     mvcc_cleanup (parallelism=Jobs, dead_tuple_threshold=1,
//     xid_age_threshold=2e9) then index_rebuild (parallelism=Jobs,
//     high_threshold_pct=0, min_size_bytes=0), both with max_lag_ms,
//     max_active_backends and intensity from Config;
//   - native: vacuumdb -j Jobs --analyze with one -t per generated table,
//     then reindexdb --concurrently -j Jobs with one -t per table (reindexdb
//     up to 16 refuses -j with -i): the same tables and indexes (REINDEX
//     TABLE CONCURRENTLY rebuilds the TOAST index too, and so does ours, which
//     uses REINDEX TABLE when every index of a table is chosen).
//
// pgbench (built-in tpcb-like script, -c Clients -j Threads -R Rate, its own
// application_name) starts Config.WarmupSeconds before the measured window
// and writes a per-transaction log (--log); it is stopped by terminating
// its backends, which ends it cleanly with its logs flushed. The window is
// the maintenance (first statement to last) for ours and native and
// BaselineSeconds for quiet; TPS is the transactions completed in the window
// over its length, p50 and p99 their latencies (with -R measured from each
// transaction's scheduled start, so queueing counts). Replica lag is sampled
// every Config.SampleInterval from the window's start until
// Config.TailSeconds after its end, both as the primary sees it
// (pg_stat_replication.replay_lag and the replay position's distance from
// the current WAL position) and from inside the standby (now() −
// pg_last_xact_replay_timestamp() while received WAL is not yet replayed,
// the pacer's own reading). Config.Sides picks the sides (all three by
// default); with Config.Runs above 1 they run in that many rounds, the order rotating, and each figure of a side is the
// median of its rounds. Figures are printed, never asserted; the ratios
// against the targets (ours p99 ≤ 1.2 × quiet, ours lag ≤ max_lag_ms, ours
// time ≤ 1.5 × native) are printed beside them.
package impact
