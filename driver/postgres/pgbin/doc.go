// Package pgbin runs PostgreSQL server binaries (initdb, pg_ctl,
// pg_basebackup, pg_dump, pg_restore, ...) on the local machine: it locates
// the binary directory, resolves the operating-system user the binaries must
// run as (initdb and postgres refuse to run as root, so a root process runs
// them as "postgres"), picks free loopback ports, and turns a connection
// string into libpq environment variables so that no password ever appears
// on a command line.
//
// It is shared by the postgres driver (backup verification, DR drills) and by
// testsuite/pgcluster (throwaway clusters for tests and benchmarks).
package pgbin
