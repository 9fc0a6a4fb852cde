package assess

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/domain"
)

func TestCompareBaseline(t *testing.T) {
	old := map[string]float64{"a": 10, "b": 10, "c": 10, "d": 0, "e": 1, "f": -1, "gone": 5}
	cur := map[string]float64{
		"a":   16,  // +60 %, +6 ms: regression
		"b":   14,  // +40 %: under 50 %
		"c":   9,   // faster
		"d":   6,   // from 0: regression, immeasurably slower
		"e":   3,   // +200 % but only +2 ms: noise
		"f":   50,  // negative baseline: not compared
		"new": 100, // no baseline
	}
	got := CompareBaseline(old, cur, 50, 5)
	var names []string
	for _, r := range got {
		names = append(names, r.Probe)
	}
	if strings.Join(names, ",") != "a,d" {
		t.Fatalf("regressions = %+v, want a and d", got)
	}
	if got[0] != (Regression{Probe: "a", BaselineMs: 10, CurrentMs: 16, SlowerPct: 60}) {
		t.Errorf("a = %+v", got[0])
	}
	if got[1].SlowerPct != ImmeasurablySlower {
		t.Errorf("d = %+v, want slower_pct %v", got[1], float64(ImmeasurablySlower))
	}
	if CompareBaseline(old, map[string]float64{"a": 10}, 50, 5) != nil {
		t.Error("no regression should be nil")
	}
}

func TestBaseline(t *testing.T) {
	o := BaselineOptions{RegressionPct: 50, FloorMs: 2, ProbeRuns: 5}
	cur := map[string]float64{"round_trip": 0.2, "scan": 30, "count": 12}

	res := Baseline(map[string]float64{}, cur, o)
	if want := "3 probes timed (median of 5 runs) and saved as the new baseline; no earlier baseline to compare with"; res.Summary != want || len(res.Alerts) != 0 {
		t.Errorf("first: %q %v", res.Summary, res.Alerts)
	}
	// regressions is an empty list, never null, in JSON.
	b, _ := json.Marshal(res.Details)
	if !strings.Contains(string(b), `"regressions":[]`) {
		t.Errorf("details %s", b)
	}
	for _, k := range []string{"probes_ms", "previous_ms", "regressions", "regression_pct", "regression_floor_ms", "probe_runs"} {
		if _, ok := res.Details[k]; !ok {
			t.Errorf("detail %s missing: %v", k, res.Details)
		}
	}

	res = Baseline(map[string]float64{"round_trip": 0.2, "scan": 30, "count": 12}, cur, o)
	if want := "3 probes timed (median of 5 runs) and saved as the new baseline; no regression over 50 % against the previous baseline"; res.Summary != want || len(res.Alerts) != 0 {
		t.Errorf("steady: %q %v", res.Summary, res.Alerts)
	}

	// round_trip: +400 % but only +0.8 ms (under the floor); scan and count regressed.
	res = Baseline(map[string]float64{"round_trip": 0.04, "scan": 10, "count": 4}, cur, o)
	if want := "3 probes timed (median of 5 runs) and saved as the new baseline; 2 regressed by more than 50 % (and 2 ms)"; res.Summary != want {
		t.Errorf("regressed: %q", res.Summary)
	}
	wantAlerts := []domain.Alert{
		{Level: domain.AlertWarning, Subject: "probe count", Message: "12.00 ms against a baseline of 4.00 ms (regression threshold 50 %)"},
		{Level: domain.AlertWarning, Subject: "probe scan", Message: "30.00 ms against a baseline of 10.00 ms (regression threshold 50 %)"},
	}
	if len(res.Alerts) != 2 || res.Alerts[0] != wantAlerts[0] || res.Alerts[1] != wantAlerts[1] {
		t.Errorf("alerts %+v, want %+v", res.Alerts, wantAlerts)
	}
	regs := res.Details["regressions"].([]Regression)
	if len(regs) != 2 || regs[0].Probe != "count" || regs[0].SlowerPct != 200 || regs[1].Probe != "scan" {
		t.Errorf("regressions %+v", regs)
	}
}
