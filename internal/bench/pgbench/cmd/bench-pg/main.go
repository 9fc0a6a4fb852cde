// Command bench-pg compares this project's PostgreSQL maintenance tasks with
// the native tools (vacuumdb, pg_amcheck, reindexdb) on a generated database
// in a throwaway cluster, and prints a table of medians and ratios.
//
//	go run ./bench/pgbench/cmd/bench-pg -tables 200 -size 1GB -j 2 -runs 3
//
// See package bench/pgbench for what is matched and measured.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/themis-maintenance/themis/internal/bench/benchcmd"
	"github.com/themis-maintenance/themis/internal/bench/pgbench"
)

func main() {
	var (
		tables   = flag.Int("tables", 200, "number of generated tables")
		size     = flag.String("size", "1GB", "minimum database size (binary units: 1GB = 1 GiB)")
		jobs     = flag.Int("j", 2, "parallelism N of both sides")
		runs     = flag.Int("runs", 3, "measured runs per pair (order alternates: ours first, then native first)")
		keep     = flag.Bool("keep", false, "leave the cluster running afterwards (reaped by the next pgcluster start)")
		pairs    = flag.String("pairs", strings.Join(pgbench.AllPairs, ","), "pairs to run, comma-separated")
		delPct   = flag.Int("delete-pct", 30, "percentage of rows deleted (dead tuples)")
		updPct   = flag.Int("update-pct", 20, "percentage of rows updated on an indexed column (dead tuples, index bloat)")
		genConns = flag.Int("gen-conns", 0, "connections generating tables (default: CPUs, at least 2)")
		sb       = flag.String("shared-buffers", "256MB", "shared_buffers of the cluster")
		binDir   = flag.String("bindir", "", "PostgreSQL bin directory (default: $THEMIS_PG_BINDIR, newest /usr/lib/postgresql/*/bin, PATH)")
		temporal = flag.Bool("temporal", false, "run ours as a one-task MaintenanceWorkflow job on a local Temporal dev server")
		tbin     = flag.String("temporal-bin", "", "temporal CLI for -temporal (default: $THEMIS_TEMPORAL_BIN, PATH, ./bin/temporal)")
		quietW   = flag.Duration("quiet-wait", time.Minute, "before each measured side, wait up to this long for other processes to use under 10 % of the CPU (0: do not wait)")
		retries  = flag.Int("retries", 2, "re-measure a side up to this many times when other processes took more than 20 % of the CPU during it")
		asJSON   = flag.Bool("json", false, "print the report as JSON instead of a table")
		quiet    = flag.Bool("q", false, "no progress lines on stderr")
	)
	flag.Parse()
	sz, err := pgbench.ParseSize(*size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-pg:", err)
		os.Exit(2)
	}
	cfg := pgbench.Config{
		Tables: *tables, SizeBytes: sz, Jobs: *jobs, Runs: *runs, Keep: *keep,
		DeletePct: *delPct, UpdatePct: *updPct, GenConns: *genConns,
		QuietWait: *quietW, Retries: *retries,
		SharedBuffers: *sb, BinDir: *binDir, Temporal: *temporal, TemporalBin: *tbin, Log: os.Stderr,
	}
	for _, p := range strings.Split(*pairs, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.Pairs = append(cfg.Pairs, p)
		}
	}
	if *quietW == 0 {
		cfg.QuietWait = -1
	}
	if *retries == 0 {
		cfg.Retries = -1
	}
	if *quiet {
		cfg.Log = nil
	}
	benchcmd.Main("bench-pg", *asJSON, func(ctx context.Context) (*pgbench.Report, error) { return pgbench.Run(ctx, cfg) })
}
