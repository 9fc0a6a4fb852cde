package health_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/health"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func module(t *testing.T, rep health.Report, name string) health.Module {
	t.Helper()
	m, ok := rep.Module(name)
	if !ok {
		t.Fatalf("no module %q in %+v", name, rep.Modules)
	}
	return m
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestPanickingProbeIsUnknownWithThePanic(t *testing.T) {
	reg := health.NewRegistry()
	must(t, reg.RegisterProbe("fine", func(context.Context) health.Signal {
		return health.Signal{Status: health.OK, Message: "all good"}
	}))
	must(t, reg.RegisterProbe("boom", func(context.Context) health.Signal {
		var m map[string]int
		m["x"] = 1 // nil map write
		return health.Signal{Status: health.OK}
	}))
	must(t, reg.RegisterProbe("err", func(context.Context) health.Signal {
		panic(errors.New("disk on fire"))
	}))
	r := health.NewRunner(health.RunnerOptions{Timeout: time.Second, Logger: quiet()}, reg)
	rep := r.Check(context.Background())

	if m := module(t, rep, "boom"); m.Status != health.Unknown || !strings.Contains(m.Message, "probe panicked: assignment to entry in nil map") || m.CheckedAt.IsZero() {
		t.Errorf("boom: %+v", m)
	}
	if m := module(t, rep, "err"); m.Status != health.Unknown || m.Message != "probe panicked: disk on fire" {
		t.Errorf("err: %+v", m)
	}
	if m := module(t, rep, "fine"); m.Status != health.OK || m.Message != "all good" {
		t.Errorf("fine: %+v", m)
	}
	if rep.Overall != health.Degraded {
		t.Errorf("overall %s, want degraded (unknown counts as degraded)", rep.Overall)
	}
	// The runner survives the panic: a later round runs the probes again.
	rep = r.Check(context.Background())
	if m := module(t, rep, "boom"); m.Status != health.Unknown {
		t.Errorf("second round boom: %+v", m)
	}
}

func TestHangingProbeIsUnknownAndNeverBlocksReport(t *testing.T) {
	reg := health.NewRegistry()
	release := make(chan struct{})
	var calls atomic.Int32
	must(t, reg.RegisterProbe("hang", func(context.Context) health.Signal {
		calls.Add(1)
		<-release // ignores its context
		return health.Signal{Status: health.OK}
	}))
	must(t, reg.RegisterProbe("quick", func(context.Context) health.Signal {
		return health.Signal{Status: health.OK, Message: "fast"}
	}))
	const timeout = 300 * time.Millisecond
	r := health.NewRunner(health.RunnerOptions{Interval: 50 * time.Millisecond, Timeout: timeout, Logger: quiet()}, reg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)

	// While the probe hangs, Report answers at once.
	start := time.Now()
	for i := 0; i < 100; i++ {
		rep := r.Report()
		if m := module(t, rep, "hang"); m.Status != health.Unknown {
			t.Fatalf("hang before its timeout: %+v", m)
		}
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("100 reports took %s while a probe hangs", d)
	}

	// Within the timeout (plus its grace), the probe is Unknown for not
	// answering, and quick is unaffected.
	deadline := time.Now().Add(timeout + timeout/10 + 500*time.Millisecond)
	var rep health.Report
	for {
		rep = r.Report()
		if m := module(t, rep, "hang"); strings.HasPrefix(m.Message, "did not answer within 300ms") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hang not reported as timed out by %s after start: %+v", timeout, rep.Modules)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if m := module(t, rep, "hang"); m.Status != health.Unknown || m.CheckedAt.IsZero() {
		t.Errorf("hang: %+v", m)
	}
	if m := module(t, rep, "quick"); m.Status != health.OK || m.Message != "fast" {
		t.Errorf("quick: %+v", m)
	}
	if rep.Overall != health.Degraded {
		t.Errorf("overall %s, want degraded", rep.Overall)
	}

	// Later rounds do not pile up calls of the hung probe.
	time.Sleep(300 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Errorf("hung probe called %d times while its first call runs", n)
	}
	if m := module(t, r.Report(), "hang"); !strings.Contains(m.Message, "has not returned") {
		t.Errorf("hang message in later rounds: %q", m.Message)
	}

	// Once it returns, the next round calls it again and it is healthy.
	close(release)
	deadline = time.Now().Add(2 * time.Second)
	for module(t, r.Report(), "hang").Status != health.OK {
		if time.Now().After(deadline) {
			t.Fatalf("released probe still %+v", module(t, r.Report(), "hang"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if rep := r.Report(); rep.Overall != health.OK {
		t.Errorf("overall after release %s", rep.Overall)
	}
}

func TestProbeHonouringItsContextReportsItsOwnVerdict(t *testing.T) {
	reg := health.NewRegistry()
	must(t, reg.RegisterProbe("slow-db", func(ctx context.Context) health.Signal {
		<-ctx.Done()
		return health.Signal{Status: health.Critical, Message: "unreachable: " + ctx.Err().Error()}
	}))
	r := health.NewRunner(health.RunnerOptions{Timeout: time.Second, Logger: quiet()}, reg)
	rep := r.Check(context.Background())
	if m := module(t, rep, "slow-db"); m.Status != health.Critical || m.Message != "unreachable: context deadline exceeded" {
		t.Errorf("slow-db: %+v", m)
	}
	if rep.Overall != health.Critical {
		t.Errorf("overall %s", rep.Overall)
	}
}

func TestOverallStatus(t *testing.T) {
	cases := []struct {
		in   []health.Status
		want health.Status
	}{
		{nil, health.Unknown},
		{[]health.Status{health.OK}, health.OK},
		{[]health.Status{health.OK, health.Unknown}, health.Degraded},
		{[]health.Status{health.Unknown, health.Unknown}, health.Degraded},
		{[]health.Status{health.Degraded, health.OK}, health.Degraded},
		{[]health.Status{health.Unknown, health.Critical, health.Degraded}, health.Critical},
		{[]health.Status{health.Critical, health.OK}, health.Critical},
	}
	for _, c := range cases {
		if got := health.Worst(c.in...); got != c.want {
			t.Errorf("Worst(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestReportBeforeAnyRoundAndBadSignals(t *testing.T) {
	reg := health.NewRegistry()
	must(t, reg.RegisterProbe("a", func(context.Context) health.Signal { return health.Signal{Message: "forgot the status"} }))
	must(t, reg.RegisterProbe("b", func(context.Context) health.Signal {
		return health.Signal{Status: "green", Message: strings.Repeat("x", 2000), Details: map[string]any{"k": 1}}
	}))
	r := health.NewRunner(health.RunnerOptions{Logger: quiet()}, reg)
	rep := r.Report()
	if !rep.CheckedAt.IsZero() || rep.Overall != health.Degraded || len(rep.Modules) != 2 || rep.Modules[0].Message != "not checked yet" {
		t.Fatalf("before any round: %+v", rep)
	}
	rep = r.Check(context.Background())
	if rep.CheckedAt.IsZero() {
		t.Error("CheckedAt not set")
	}
	if m := rep.Modules[0]; m.Status != health.Unknown || m.Message != "probe returned no status: forgot the status" {
		t.Errorf("a: %+v", m)
	}
	if m := rep.Modules[1]; m.Status != health.Unknown || !strings.HasPrefix(m.Message, `probe returned status "green": xxx`) ||
		len([]rune(m.Message)) > 501 || m.Details["k"] != 1 {
		t.Errorf("b: status %s, %d runes, details %v", m.Status, len([]rune(m.Message)), m.Details)
	}
	if got := health.NewRunner(health.RunnerOptions{}).Report(); got.Overall != health.Unknown || len(got.Modules) != 0 {
		t.Errorf("no probes: %+v", got)
	}
}

func TestRunnerReadsSeveralRegistries(t *testing.T) {
	builtin, ext := health.NewRegistry(), health.NewRegistry()
	ok := func(context.Context) health.Signal { return health.Signal{Status: health.OK} }
	must(t, builtin.RegisterProbe("temporal", ok))
	must(t, ext.RegisterProbe("replica-consistency", ok))
	r := health.NewRunner(health.RunnerOptions{Logger: quiet()}, builtin, ext)
	rep := r.Check(context.Background())
	if len(rep.Modules) != 2 || rep.Modules[0].Name != "temporal" || rep.Modules[1].Name != "replica-consistency" || rep.Overall != health.OK {
		t.Fatalf("%+v", rep)
	}
	// Registered after the runner was made: seen from the next round on.
	must(t, ext.RegisterProbe("late", ok))
	if m := module(t, r.Report(), "late"); m.Status != health.Unknown {
		t.Errorf("late before a round: %+v", m)
	}
	if m := module(t, r.Check(context.Background()), "late"); m.Status != health.OK {
		t.Errorf("late after a round: %+v", m)
	}
	// The same name in two registries: neither runs, the clash shows.
	var called atomic.Bool
	must(t, ext.RegisterProbe("temporal", func(context.Context) health.Signal {
		called.Store(true)
		return health.Signal{Status: health.OK}
	}))
	rep = r.Check(context.Background())
	if m := module(t, rep, "temporal"); m.Status != health.Unknown || !strings.Contains(m.Message, "two probes") || called.Load() {
		t.Errorf("clash: %+v (called %v)", m, called.Load())
	}
	if len(rep.Modules) != 3 {
		t.Errorf("modules %+v", rep.Modules)
	}
	// Unregistered: gone from the report.
	ext.Unregister("late")
	if rep := r.Check(context.Background()); len(rep.Modules) != 2 {
		t.Errorf("after unregister: %+v", rep.Modules)
	}
}

func TestProbeRegisteredWhileRunningIsCalledAtOnce(t *testing.T) {
	reg := health.NewRegistry()
	must(t, reg.RegisterProbe("first", func(context.Context) health.Signal { return health.Signal{Status: health.OK} }))
	r := health.NewRunner(health.RunnerOptions{Interval: time.Hour, Logger: quiet()}, reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor := func(name string, want health.Status) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for {
			rep := r.Report()
			for _, m := range rep.Modules {
				if m.Name == name && m.Status == want {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not %s: %+v", name, want, rep.Modules)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("first", health.OK)
	var calls atomic.Int32
	must(t, reg.RegisterProbe("audit", func(context.Context) health.Signal {
		calls.Add(1)
		return health.Signal{Status: health.Critical, Message: "not writable"}
	}))
	// Called well before the next round (an hour away), and only the new
	// probe is called.
	waitFor("audit", health.Critical)
	if n := calls.Load(); n != 1 {
		t.Errorf("audit called %d times", n)
	}
}

func TestSlowProbeWithinItsTimeoutIsNotReportedOverdue(t *testing.T) {
	reg := health.NewRegistry()
	must(t, reg.RegisterProbe("slow", func(ctx context.Context) health.Signal {
		time.Sleep(150 * time.Millisecond)
		return health.Signal{Status: health.OK, Message: "slow but fine"}
	}))
	// Rounds every 20 ms find the 150 ms call still running.
	r := health.NewRunner(health.RunnerOptions{Interval: 20 * time.Millisecond, Timeout: time.Second, Logger: quiet()}, reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(600 * time.Millisecond)
	sawOK := false
	for time.Now().Before(deadline) {
		m := module(t, r.Report(), "slow")
		if strings.Contains(m.Message, "did not answer") {
			t.Fatalf("reported overdue within its timeout: %+v", m)
		}
		sawOK = sawOK || m.Status == health.OK
		time.Sleep(5 * time.Millisecond)
	}
	if !sawOK {
		t.Error("never reported OK")
	}
}

func TestUnhealthyProbeIsRecheckedSooner(t *testing.T) {
	reg := health.NewRegistry()
	var calls atomic.Int32
	must(t, reg.RegisterProbe("workers", func(context.Context) health.Signal {
		if calls.Add(1) < 3 {
			return health.Signal{Status: health.Critical, Message: "no worker polls yet"}
		}
		return health.Signal{Status: health.OK, Message: "polling"}
	}))
	r := health.NewRunner(health.RunnerOptions{Interval: time.Hour, Recheck: 50 * time.Millisecond, Logger: quiet()}, reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(2 * time.Second)
	for module(t, r.Report(), "workers").Status != health.OK {
		if time.Now().After(deadline) {
			t.Fatalf("not rechecked: %+v after %d calls", module(t, r.Report(), "workers"), calls.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Healthy now: the next call is an hour away.
	time.Sleep(200 * time.Millisecond)
	if n := calls.Load(); n != 3 {
		t.Errorf("%d calls, want 3", n)
	}
}
