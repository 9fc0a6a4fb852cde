// Package cluster starts Themis Maintenance as operators run it at scale,
// as real separate processes on loopback: one file-backed Temporal dev
// server, several `themisctl worker` and `themisctl api` processes built
// from ./cmd/themisctl and sharing one YAML configuration, and throwaway
// PostgreSQL clusters (primary + streaming replica) from package pgcluster.
//
// Each process writes its output to a log file under the test's temporary
// directory; the logs are printed when the test fails. Every process is
// killed when the test ends (t.Cleanup, which also runs after a panic), and
// dies with the test binary (PR_SET_PDEATHSIG) if the binary itself is
// killed.
//
// The themisctl binary is built once per test binary run by Main, which a
// package's TestMain calls.
package cluster
