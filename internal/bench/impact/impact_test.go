package impact

import (
	"bufio"
	"bytes"
	"context"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseTxnLogAndForeground(t *testing.T) {
	// client_id transaction_no time script_no time_epoch time_us schedule_lag
	log := `0 1 16264 0 1796206393 817803 141
0 2 8156 0 1796206393 829010 134
1 1 2000 0 1796206394 100000 10
1 2 skipped 0 1796206394 200000 10
2 1 30000 0 1796206395 500000 5
short line
`
	txns, err := parseTxnLog(bufio.NewScanner(strings.NewReader(log)))
	if err != nil {
		t.Fatal(err)
	}
	if len(txns) != 4 {
		t.Fatalf("parsed %d transactions, want 4 (skipped and short lines left out)", len(txns))
	}
	if txns[0].latency != 16264*time.Microsecond || !txns[0].end.Equal(time.Unix(1796206393, 817803000)) {
		t.Errorf("first transaction %+v", txns[0])
	}
	from, to := time.Unix(1796206393, 0), time.Unix(1796206395, 0)
	fg := foregroundIn(txns, from, to)
	if fg.Transactions != 3 || fg.TPS != 1.5 {
		t.Errorf("window: %+v, want 3 transactions at 1.5 tps (the last completed after it)", fg)
	}
	if fg.P50Ms != 8.156 || fg.P99Ms != 16.264 || fg.MaxMs != 16.264 {
		t.Errorf("percentiles: %+v", fg)
	}
	if empty := foregroundIn(txns, to.Add(time.Hour), to.Add(2*time.Hour)); empty.Transactions != 0 || empty.P99Ms != 0 || empty.TPS != 0 {
		t.Errorf("empty window: %+v", empty)
	}
}

func TestLagIn(t *testing.T) {
	t0 := time.Unix(1000, 0)
	every := 200 * time.Millisecond
	samples := []lagSample{
		{at: t0.Add(-time.Second), primaryMs: 9000, standbys: 1, standbyOK: true}, // before the window
		{at: t0, primaryMs: 100, primaryBytes: 10, standbys: 1, standbyMs: 50, standbyOK: true},
		{at: t0.Add(every), primaryMs: 700, primaryBytes: 5000, standbys: 1, standbyMs: 900, standbyOK: true},
		{at: t0.Add(2 * every), primaryMs: 0, standbys: 0, standbyOK: false},
	}
	l := lagIn(samples, 1, t0, t0.Add(time.Second), every, 500)
	if l.Samples != 3 || l.MaxMs != 700 || l.MaxStandbyMs != 900 || l.MaxBytes != 5000 || l.OverMs != 200 || l.Missing != 2 {
		t.Errorf("lag %+v", l)
	}
	if l.MaxLagMs() != 900 {
		t.Errorf("MaxLagMs = %v", l.MaxLagMs())
	}
}

func TestThrottleEvents(t *testing.T) {
	type ev struct {
		Kind   string `json:"kind"`
		Reason string `json:"reason"`
	}
	d := map[string]any{"throttle_events": []ev{
		{"throttled", "replica lag 812 ms > 500 ms (standby walreceiver)"},
		{"throttled", "replica lag 640 ms > 500 ms (standby walreceiver)"},
		{"throttled", "active backends 4 > 3; replica lag 900 ms > 500 ms (replica_dsns[0])"},
	}, "throttle_events_total": 7}
	n, reasons := throttleEvents(d)
	if n != 7 {
		t.Errorf("events = %d, want 7", n)
	}
	want := []string{"throttled: replica lag > 500 ms (standby walreceiver)", "throttled: active backends > 3; replica lag > 500 ms (replica_dsns[0])"}
	if strings.Join(reasons, "|") != strings.Join(want, "|") {
		t.Errorf("reasons = %q, want %q", reasons, want)
	}
}

func TestWriteText(t *testing.T) {
	rep := &Report{Server: "15.18", CPUs: 2, Clients: 4, Threads: 2, Rate: 200, MaxLagMs: 500, MaxActive: 3, Intensity: 1, Jobs: 2, SampleMs: 200,
		Dataset: Dataset{DatabaseBytes: 1 << 30, Tables: 64, Indexes: 192, Scale: 10},
		Sides: []Side{
			{Name: sideQuiet, WindowSeconds: 30, Foreground: Foreground{TPS: 200, P50Ms: 2, P99Ms: 10}},
			{Name: sideOurs, MaintenanceSeconds: 60, ThrottledMs: 5000, Steps: []Step{{Name: "ours mvcc_cleanup", Seconds: 40, ThrottledMs: 5000, Waits: 3,
				Reasons: []string{"throttled: replica lag > 500 ms"}}, {Name: "ours index_rebuild", Seconds: 20}},
				Foreground: Foreground{TPS: 199, P50Ms: 2.5, P99Ms: 11}, Lag: Lag{MaxMs: 400, MaxStandbyMs: 450}},
			{Name: sideNative, MaintenanceSeconds: 50, Steps: []Step{{Name: "native vacuumdb", Seconds: 35}, {Name: "native reindexdb", Seconds: 15}},
				Foreground: Foreground{TPS: 190, P50Ms: 3, P99Ms: 30}, Lag: Lag{MaxMs: 2000, MaxBytes: 300 << 20}},
		}}
	rep.compare()
	if rep.Ratios.OursP99VsQuiet != 1.1 || rep.Ratios.OursTimeVsNative != 1.2 || rep.Ratios.OursLagVsMax != 0.9 || rep.Ratios.NativeLagVsMax != 4 {
		t.Errorf("ratios %+v", rep.Ratios)
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"quiet (30 s)", "ours", "native", "1.10×", "0.90×", "4.00×", "1.20×", "300.00 MiB", "throttled 5.0 s in 3 waits", "replica lag > 500 ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"ours_time_vs_native": 1.2`) {
		t.Errorf("JSON lacks the ratios:\n%s", b.String())
	}
}

func TestMedianSide(t *testing.T) {
	mk := func(p99, lag, maint float64, reason string) Side {
		return Side{Name: sideOurs, MaintenanceSeconds: maint, Foreground: Foreground{P99Ms: p99, TPS: 200}, Lag: Lag{MaxMs: lag, Missing: 1},
			Steps: []Step{{Name: "ours mvcc_cleanup", Seconds: maint / 2, Reasons: []string{reason}}, {Name: "ours index_rebuild", Seconds: maint / 2}}}
	}
	m := medianSide([]Side{mk(10, 900, 60, "a"), mk(30, 100, 80, "b"), mk(20, 500, 70, "a")})
	if m.Foreground.P99Ms != 20 || m.Lag.MaxMs != 500 || m.MaintenanceSeconds != 70 || m.Lag.Missing != 3 || len(m.Runs) != 3 {
		t.Errorf("median side %+v", m)
	}
	if m.Steps[0].Seconds != 35 || strings.Join(m.Steps[0].Reasons, ",") != "a,b" {
		t.Errorf("median steps %+v", m.Steps)
	}
	if one := medianSide([]Side{mk(1, 2, 3, "x")}); one.Runs != nil || one.Foreground.P99Ms != 1 {
		t.Errorf("one round: %+v", one)
	}
}

// TestSmoke runs every side once on a tiny database and checks that the
// report's figures are finite; no timing is asserted.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs PostgreSQL and about a minute")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var log bytes.Buffer
	rep, err := Run(ctx, Config{SizeBytes: 12 << 20, Tables: 4, Scale: 1, Rate: 100, BaselineSeconds: 3, WarmupSeconds: 1, TailSeconds: 1,
		Log: &log})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log.String())
	}
	if len(rep.Sides) != 3 {
		t.Fatalf("%d sides", len(rep.Sides))
	}
	for _, s := range rep.Sides {
		fg := s.Foreground
		for name, v := range map[string]float64{"tps": fg.TPS, "p50": fg.P50Ms, "p99": fg.P99Ms, "lag": s.Lag.MaxLagMs(), "window": s.WindowSeconds} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				t.Errorf("%s: %s = %v", s.Name, name, v)
			}
		}
		if fg.Transactions == 0 || s.Lag.Samples == 0 {
			t.Errorf("%s: %d transactions, %d lag samples", s.Name, fg.Transactions, s.Lag.Samples)
		}
		if s.Name != sideQuiet && (len(s.Steps) != 2 || s.MaintenanceSeconds <= 0) {
			t.Errorf("%s: steps %+v, maintenance %v s", s.Name, s.Steps, s.MaintenanceSeconds)
		}
	}
	for name, v := range map[string]float64{"p99": rep.Ratios.OursP99VsQuiet, "lag": rep.Ratios.OursLagVsMax, "time": rep.Ratios.OursTimeVsNative} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("ratio %s = %v", name, v)
		}
	}
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", b.String())
}

func TestConfigSides(t *testing.T) {
	if got := (Config{}).withDefaults().Sides; strings.Join(got, ",") != "quiet,ours,native" {
		t.Errorf("default sides %q", got)
	}
	for _, c := range []struct {
		sides []string
		err   string
	}{
		{[]string{"quiet", "ours"}, ""},
		{[]string{"native"}, ""},
		{[]string{"quiet", "loud"}, `side "loud": quiet, ours or native`},
		{[]string{"ours", "ours"}, `side "ours" listed twice`},
	} {
		err := Config{Sides: c.sides}.withDefaults().validate()
		if (err == nil) != (c.err == "") || (err != nil && err.Error() != c.err) {
			t.Errorf("sides %q: error %v, want %q", c.sides, err, c.err)
		}
	}
}

func TestCPUTimes(t *testing.T) {
	a, err := parseCPULine("cpu  100 5 50 1000 20 3 2 10 0 0\n")
	if err != nil || a.busy != 170 || a.total != 1190 || !a.ok {
		t.Fatalf("parse: %+v %v", a, err)
	}
	b, _ := parseCPULine("cpu  150 5 80 1100 20 3 2 10 0 0")
	// 80 of 180 ticks busy on a 2-CPU machine: 0.89 CPUs.
	if got := cpusBusy(a, b, 2); math.Abs(got-160.0/180) > 1e-9 {
		t.Errorf("cpusBusy = %v", got)
	}
	if got := cpusBusy(cpuTimes{}, b, 2); got != 0 {
		t.Errorf("without a first reading: %v, want 0", got)
	}
	for _, bad := range []string{"intr 1 2 3", "cpu 1 2 3", "cpu 1 2 x 4 5 6 7 8"} {
		if _, err := parseCPULine(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if runtime.GOOS == "linux" && !readCPUTimes().ok {
		t.Error("/proc/stat not read on Linux")
	}
}
