// Command bench-restore restores a generated database by each DR drill
// strategy and prints the restore times beside a plain cp -a of the same
// data directory (the floor). See package internal/bench/restore.
//
//	go run ./internal/bench/restore/cmd/bench-restore -size 1GB
//
// The size defaults to $BENCH_RESTORE_SIZE, else 1GB; -size 100MB is a
// quick run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/themis-maintenance/themis/internal/bench/benchcmd"
	"github.com/themis-maintenance/themis/internal/bench/pgbench"
	"github.com/themis-maintenance/themis/internal/bench/restore"
)

func main() {
	defSize := os.Getenv("BENCH_RESTORE_SIZE")
	if defSize == "" {
		defSize = "1GB"
	}
	var (
		size    = flag.String("size", defSize, "database size (binary units: 1GB = 1 GiB; default $BENCH_RESTORE_SIZE, else 1GB)")
		writes  = flag.Int("write-seconds", 20, "seconds of pgbench writes after the base backup (WAL to replay)")
		runs    = flag.Int("runs", 3, "measured runs of each side (the floor, each strategy); the median counts")
		standby = flag.Bool("standby", true, "give the primary a streaming standby (the replica_clone source)")
		verify  = flag.Bool("verify", true, "verify each restored instance (amcheck, row counts, canary): RTO and RPO")
		binDir  = flag.String("bindir", "", "PostgreSQL bin directory (default: $THEMIS_PG_BINDIR, newest /usr/lib/postgresql/*/bin, PATH)")
		keep    = flag.Bool("keep", false, "leave the cluster and directories afterwards")
		asJSON  = flag.Bool("json", false, "print the report as JSON")
		quiet   = flag.Bool("q", false, "no progress lines on stderr")
	)
	flag.Parse()
	sz, err := pgbench.ParseSize(*size)
	if err != nil || sz <= 0 {
		fmt.Fprintf(os.Stderr, "bench-restore: -size %q: want a positive size such as 100MB or 1GB\n", *size)
		os.Exit(2)
	}
	if *runs < 1 || *runs > 20 {
		fmt.Fprintln(os.Stderr, "bench-restore: -runs must be between 1 and 20")
		os.Exit(2)
	}
	if *writes < 1 {
		fmt.Fprintln(os.Stderr, "bench-restore: -write-seconds must be at least 1")
		os.Exit(2)
	}
	cfg := restore.Config{SizeBytes: sz, WriteSeconds: *writes, Runs: *runs, Standby: *standby, Verify: *verify, BinDir: *binDir, Keep: *keep, Log: os.Stderr}
	if *quiet {
		cfg.Log = nil
	}
	benchcmd.Main("bench-restore", *asJSON, func(ctx context.Context) (*restore.Report, error) { return restore.Run(ctx, cfg) })
}
