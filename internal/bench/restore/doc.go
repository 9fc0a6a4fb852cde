// Package restore measures the DR drill's restore strategies against the
// physical limit of the disk (`make bench-restore`, docs/DR_DRILL.md).
//
// A throwaway primary (testsuite/pgcluster: WAL archiving into its archive
// directory, fsync off) gets a generated database of Config.SizeBytes
// (pgbench -i with server-side generation, scale = size / 15 MiB), a
// streaming standby (Config.Standby), and a base backup taken and verified
// by the driver's backup_verification task, recorded in an in-memory
// history store. Then more writes (pgbench -T Config.WriteSeconds) go to
// the archive, and each strategy restores through driver.Driller exactly
// as a drill does: canary rows, the failure instant, DrillRestore,
// DrillVerify (amcheck, row counts, the newest canary row), DrillCleanup.
//
//   - backup_restore: the verified base backup copied and the archived WAL
//     replayed to the failure instant (a canary row written after it and a
//     WAL switch put a later commit into the archive, as production and
//     archive_timeout would);
//   - replica_clone: a fresh pg_basebackup of the standby (of the primary
//     without one), promoted.
//
// The floor is a plain `cp -a` of the base backup's data directory into
// the same scratch directory (the same disk), timed in the same run. The
// floor and both strategies are measured Config.Runs times, in rounds
// whose order rotates; each side's median run counts, and every side
// starts after a sync, so no earlier side's writeback competes with it. Each
// row gives the restore time (DrillRestore's wall time, and its copy and
// replay parts from driver.Scratch), the bytes restored and WAL bytes
// replayed, the rate (restored bytes / restore time) and the ratio of the
// restore time to the floor's, plus the drill's RTO (failure instant →
// verified and serving) and RPO (failure instant − newest canary row).
//
// No side syncs what it wrote (pg_basebackup --no-sync, the driver's copy
// and cp -a alike), and on a machine with more memory than
// data every side reads from the page cache: the floor is the copy speed
// of this machine's file system, which is what a restore competes with.
package restore
