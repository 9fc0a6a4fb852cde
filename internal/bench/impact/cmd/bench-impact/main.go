// Command bench-impact measures what maintenance costs a pgbench workload
// on a primary with a streaming standby: mvcc_cleanup and index_rebuild by
// this project with throttling on, vacuumdb and reindexdb --concurrently,
// and pgbench alone. See package internal/bench/impact.
//
//	go run ./internal/bench/impact/cmd/bench-impact -size 1GB
//
// The size defaults to $BENCH_IMPACT_SIZE, else 1GB; -size 100MB is a quick
// run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/themis-maintenance/themis/internal/bench/benchcmd"
	"github.com/themis-maintenance/themis/internal/bench/impact"
	"github.com/themis-maintenance/themis/internal/bench/pgbench"
)

func main() {
	defSize := os.Getenv("BENCH_IMPACT_SIZE")
	if defSize == "" {
		defSize = "1GB"
	}
	var (
		size      = flag.String("size", defSize, "maintained database size (binary units: 1GB = 1 GiB; default $BENCH_IMPACT_SIZE, else 1GB)")
		tables    = flag.Int("tables", 64, "tables the maintained database is spread over (throttling acts between tables and indexes)")
		jobs      = flag.Int("jobs", 2, "parallelism of both sides (parallelism=, vacuumdb/reindexdb -j)")
		rjobs     = flag.Int("rebuild-jobs", 1, "ours: index_rebuild's parallelism (0: -jobs)")
		clients   = flag.Int("clients", 4, "pgbench -c")
		threads   = flag.Int("threads", 2, "pgbench -j")
		rate      = flag.Int("rate", 200, "pgbench -R, transactions per second (0: no limit)")
		scale     = flag.Int("scale", 10, "pgbench scale of the foreground database")
		sides     = flag.String("sides", "quiet,ours,native", "the sides measured, comma-separated, in the first round's order (a ratio without both its sides prints as -)")
		runs      = flag.Int("runs", 1, "rounds of the sides (the order rotating); each figure is the median of its rounds")
		baseline  = flag.Int("baseline-seconds", 30, "length of the quiet baseline (pgbench alone)")
		warmup    = flag.Int("warmup-seconds", 5, "pgbench runs this long before each window opens")
		tail      = flag.Int("tail-seconds", 5, "lag is sampled this long after each window closes")
		sampleMs  = flag.Int("sample-ms", 200, "lag sampling interval, ms")
		maxLag    = flag.Int64("max-lag-ms", 500, "ours: max_lag_ms")
		maxActive = flag.Int64("max-active", 0, "ours: max_active_backends (0: clients − 1; -1: off)")
		intensity = flag.Float64("intensity", 1, "ours: intensity (0.01–1; 1: no pacing sleep)")
		costDelay = flag.Float64("cost-delay-ms", 2, "ours: mvcc_cleanup's cost_delay_ms (VACUUM paced as autovacuum, 0–100; 0: none)")
		parallel  = flag.Int64("parallel-workers", 0, "ours: parallel_workers, the sessions' max_parallel_maintenance_workers (0–64; -1: the server's setting)")
		unit      = flag.String("rebuild-unit", "index", "ours: index_rebuild's rebuild_unit (table: one REINDEX TABLE per table whose indexes are all chosen; index: one per index, throttled between them)")
		binDir    = flag.String("bindir", "", "PostgreSQL bin directory (default: $THEMIS_PG_BINDIR, newest /usr/lib/postgresql/*/bin, PATH)")
		keep      = flag.Bool("keep", false, "leave the cluster and directories afterwards")
		asJSON    = flag.Bool("json", false, "print the report as JSON")
		quiet     = flag.Bool("q", false, "no progress lines on stderr")
	)
	flag.Parse()
	sz, err := pgbench.ParseSize(*size)
	if err != nil || sz <= 0 {
		fmt.Fprintf(os.Stderr, "bench-impact: -size %q: want a positive size such as 100MB or 1GB\n", *size)
		os.Exit(2)
	}
	for _, c := range []struct {
		name      string
		v, lo, hi int
	}{
		{"-tables", *tables, 1, 10000}, {"-jobs", *jobs, 1, 16}, {"-rebuild-jobs", *rjobs, 0, 16}, {"-clients", *clients, 1, 32}, {"-threads", *threads, 1, 32},
		{"-rate", *rate, 0, 1_000_000}, {"-scale", *scale, 1, 10000}, {"-runs", *runs, 1, 20}, {"-baseline-seconds", *baseline, 1, 3600},
		{"-warmup-seconds", *warmup, 1, 600}, {"-tail-seconds", *tail, 1, 600}, {"-sample-ms", *sampleMs, 10, 10000},
	} {
		if c.v < c.lo || c.v > c.hi {
			fmt.Fprintf(os.Stderr, "bench-impact: %s must be between %d and %d\n", c.name, c.lo, c.hi)
			os.Exit(2)
		}
	}
	if *maxLag < 1 || *intensity < 0.01 || *intensity > 1 || *maxActive < -1 {
		fmt.Fprintln(os.Stderr, "bench-impact: -max-lag-ms must be at least 1, -intensity between 0.01 and 1, -max-active at least -1")
		os.Exit(2)
	}
	r := *rate
	if r == 0 {
		r = -1 // Config: negative is no limit
	}
	cfg := impact.Config{SizeBytes: sz, Tables: *tables, Jobs: *jobs, RebuildJobs: *rjobs, Clients: *clients, Threads: *threads, Rate: r, Scale: *scale, Runs: *runs,
		BaselineSeconds: *baseline, WarmupSeconds: *warmup, TailSeconds: *tail, SampleInterval: time.Duration(*sampleMs) * time.Millisecond,
		Sides: strings.Split(*sides, ","), MaxLagMs: *maxLag, MaxActive: *maxActive, Intensity: *intensity, CostDelayMs: *costDelay, RebuildUnit: *unit, BinDir: *binDir, Keep: *keep, Log: os.Stderr}
	if *parallel < -1 || *parallel > 64 {
		fmt.Fprintln(os.Stderr, "bench-impact: -parallel-workers must be between -1 and 64")
		os.Exit(2)
	}
	if *parallel >= 0 {
		cfg.ParallelWorkers = parallel
	}
	if *quiet {
		cfg.Log = nil
	}
	benchcmd.Main("bench-impact", *asJSON, func(ctx context.Context) (*impact.Report, error) { return impact.Run(ctx, cfg) })
}
