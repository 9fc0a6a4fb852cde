// Package pgcluster starts throwaway PostgreSQL clusters for tests and
// benchmarks: initdb into a fresh directory under os.TempDir (as the
// "postgres" OS user when the process is root), a free loopback port,
// pg_stat_statements preloaded, WAL archiving into a per-cluster archive
// directory, streaming replicas made with pg_basebackup, and helpers to run
// SQL, seed realistic bloated data and corrupt index pages on purpose.
//
// Start ties a cluster to a test: it is stopped (pg_ctl stop -m immediate)
// and its directory removed when the test ends, passed or failed.
// StartCluster and (*Cluster).Stop do the same for programs without a
// testing.TB (benchmarks, demos). Clusters left behind by a killed test
// process are reaped by the next Start.
//
// Nothing here is skipped when PostgreSQL is "not configured": the binaries
// are found (THEMIS_PG_BINDIR, else the newest /usr/lib/postgresql/*/bin,
// else PATH) and a missing installation is a test failure.
package pgcluster
