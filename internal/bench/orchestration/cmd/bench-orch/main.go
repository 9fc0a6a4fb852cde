// Command bench-orch is `make bench`: it starts a Temporal dev server, a
// `themisctl worker` and a `themisctl api` as processes, measures the
// orchestration against the bare Temporal SDK on the same server, and
// prints one table (package orchestration).
//
//	go run ./internal/bench/orchestration/cmd/bench-orch -themisctl bin/themisctl -health-bin bin/themisctl-bench-health
//	BENCH_DURATION=5s go run ./internal/bench/orchestration/cmd/bench-orch -themisctl bin/themisctl -runs 10 -schedules 100 -jobs 200
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/themis-maintenance/themis/internal/bench/orchestration"
)

func main() {
	cfg := orchestration.DefaultConfig()
	fs := flag.NewFlagSet("bench-orch", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := orchestration.Run(ctx, cfg)
	if rep != nil {
		if werr := rep.WriteText(os.Stdout); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-orch:", err)
		os.Exit(1)
	}
	if len(rep.Failed) > 0 {
		os.Exit(1)
	}
}
