// Package testsuite holds the real-component harness of Themis Maintenance
// and its end-to-end tests: a Temporal dev server from ./bin (started once
// per test binary), workers and the API wired as in production on
// throwaway SQLite targets in t.TempDir(), and (package pgcluster)
// throwaway PostgreSQL clusters. Nothing is skipped for lack of a
// service: the harness starts what it needs.
package testsuite
