// Package pgbench compares this project's PostgreSQL maintenance tasks with
// the native client tools doing the same work on the same database, to
// measure the orchestration overhead of the driver (goal: ours/native ≤ 1.05).
//
// # What is measured
//
// A throwaway cluster (testsuite/pgcluster: fsync=off,
// synchronous_commit=off, autovacuum=off) gets a generated database of
// Config.Tables tables totalling at least Config.SizeBytes, built in
// parallel with generate_series: rows loaded, three btree indexes built,
// then DeletePct of the rows deleted and UpdatePct updated on an indexed
// column in one transaction (dead heap tuples, dead and split index
// entries), ANALYZE. Every table is large enough for each of its indexes to
// reach the 1 MiB the rebuild task requires. The server is then shut down
// cleanly and its data directory copied; before every measured side the copy
// is restored (statistics included, so n_dead_tup survives), synced to disk
// and the server started with empty shared buffers. Each side of a pair thus
// starts from the same bytes; the order (ours first, native first)
// alternates between runs.
//
// Pairs, each side at the same parallelism N where the task has one:
//
//   - mvcc_cleanup (parallelism=N, dead_tuple_threshold=1,
//     xid_age_threshold=2e9: every table with a dead tuple, no FREEZE) vs
//     vacuumdb -j N --analyze with one -t per table ours selects;
//   - full_checkdb (parallelism=N) vs pg_amcheck -j N --heapallindexed
//     --parent-check;
//   - consistency_check (parallelism=N) vs pg_amcheck -j N -i '*' (indexes
//     only, bt_index_check);
//   - index_rebuild (parallelism=N, high_threshold_pct=0: every btree index of
//     1 MiB or more) vs reindexdb --concurrently -j N: with -i per index when
//     reindexdb is 17 or later, with -t per table before that (reindexdb up to
//     16 refuses -j with -i), which rebuilds the same indexes when every
//     index of those tables qualifies, plus their (empty) TOAST indexes.
//
// "Ours" is driver.Driver.Run called in-process with a no-op progress
// callback and an in-memory history store, from a driver created for the
// run (pool creation included): the task's engine work plus the driver's
// orchestration (catalog listing, sessions and their SET/RESET, per-relation
// bookkeeping, bloat measurement), without Temporal. With Config.Temporal the
// ours side instead runs as a one-task job of the project's
// MaintenanceWorkflow on a local Temporal dev server with an in-process
// worker, and the report adds the Temporal share (wall time minus
// driver.Run time).
//
// Native tools run as the server's OS user through pgbin with libpq PG*
// environment variables; nothing secret is on a command line.
//
// # Sessions idle
//
// The wall-time ratio also moves with the server work itself (VACUUM of
// the same bytes takes ±5 % from run to run on a small machine). So
// pg_stat_statements (PostgreSQL 14+, installed in the snapshot, reset
// before each side) gives the time each side spent inside its top-level
// statements; wall time minus that time over N sessions, as a share of the
// wall time, is what the client adds: start-up, catalog reads,
// per-relation round trips and bookkeeping, and the tail when fewer than N
// relations are left. It is reported per side beside the ratio.
//
// # Shared machines
//
// While each side runs, the CPU time of the whole machine (/proc/stat:
// user, system and steal), of the cluster (postmaster, its children, reaped
// children), of this process tree and of kernel threads (writeback of what
// the side dirtied) is sampled, with no backend alive at either sample; the
// rest is "other CPU": other processes and other virtual machines (steal).
// Before each side the benchmark waits (up to Config.QuietWait) for a 2 s
// window with under QuietPct of other CPU; a side during which other CPU
// exceeded NoisyPct is measured again from a fresh restore (up to
// Config.Retries times): the first attempt under NoisyPct is kept, else the
// one with the least other CPU, whatever its time. Runs that stay noisy are
// marked in the report.
package pgbench
