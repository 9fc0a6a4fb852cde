// Command themisctl-bench-health is themisctl with extra health probes, for
// the GET /health row of `make bench`: it registers
// $BENCH_HEALTH_EXTRA_PROBES probes (default 14) with health.RegisterProbe
// before running the normal command tree, all answering OK at once but one,
// "bench-hanging", which never returns (it ignores its context, as a probe
// stuck in a system call would).
//
//	go build -o bin/themisctl-bench-health ./internal/bench/orchestration/cmd/themisctl-bench-health
//	BENCH_HEALTH_EXTRA_PROBES=14 bin/themisctl-bench-health api --config themis.yaml
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/themis-maintenance/themis/cmd/themisctl/root"
	"github.com/themis-maintenance/themis/health"
	"github.com/themis-maintenance/themis/internal/bench/orchestration"
)

func main() {
	n := 14
	if v := os.Getenv(orchestration.ExtraProbesEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "%s=%q: want a number of probes ≥ 1\n", orchestration.ExtraProbesEnv, v)
			os.Exit(2)
		}
	}
	must(health.RegisterProbe(orchestration.HangingProbe, func(context.Context) health.Signal {
		select {} // never answers
	}))
	for i := 1; i < n; i++ {
		must(health.RegisterProbe(fmt.Sprintf("bench-ok-%02d", i), func(context.Context) health.Signal {
			return health.Signal{Status: health.OK, Message: "bench probe"}
		}))
	}
	os.Exit(root.MainWith(nil))
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
