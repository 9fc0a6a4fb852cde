package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
)

func TestBaselineUpdate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t)

	// First run: timings saved, nothing to compare.
	res := h.run(domain.TaskBaselineUpdate, nil)
	if !strings.Contains(res.Summary, "no earlier baseline") || len(res.Alerts) != 0 {
		t.Errorf("first run: %q %v", res.Summary, res.Alerts)
	}
	saved, err := h.hist.Baseline(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	for _, probe := range []string{"schema_scan", "count.events", "scan.events", "count.orders", "scan.order_items"} {
		if v, ok := saved[probe]; !ok || v <= 0 {
			t.Errorf("baseline[%s] = %v, %v", probe, v, ok)
		}
	}
	if len(saved) != 9 {
		t.Errorf("baseline has %d probes, want 9: %v", len(saved), saved)
	}

	// A stored baseline far faster than reality is a regression for every
	// probe (with the noise floor lowered to 1 µs for the test); a far
	// slower one is none.
	h.d = NewWithOptions(Options{RegressionFloor: time.Microsecond})
	fast := map[string]float64{}
	slow := map[string]float64{}
	for probe := range saved {
		fast[probe] = 0.0001
		slow[probe] = 1e6
	}
	fast["dropped_probe"] = 0.0001
	if err := h.hist.SaveBaseline(ctx, "demo", fast); err != nil {
		t.Fatal(err)
	}
	res = h.run(domain.TaskBaselineUpdate, domain.TaskOptions{"regression_pct": 50.0})
	regs := res.Details["regressions"].([]regression)
	if len(regs) != 9 || len(res.Alerts) != 9 {
		t.Fatalf("regressions = %d, alerts = %d, want 9: %q", len(regs), len(res.Alerts), res.Summary)
	}
	if res.Alerts[0].Level != domain.AlertWarning || !strings.HasPrefix(res.Alerts[0].Subject, "probe ") {
		t.Errorf("alert = %+v", res.Alerts[0])
	}
	// The new timings replaced the baseline (the dropped probe is gone).
	saved, _ = h.hist.Baseline(ctx, "demo")
	if _, ok := saved["dropped_probe"]; ok || saved["count.events"] <= 0.0001 {
		t.Errorf("baseline not replaced: %v", saved)
	}

	if err := h.hist.SaveBaseline(ctx, "demo", slow); err != nil {
		t.Fatal(err)
	}
	res = h.run(domain.TaskBaselineUpdate, nil)
	if len(res.Alerts) != 0 || !strings.Contains(res.Summary, "no regression") {
		t.Errorf("faster than baseline: %q %v", res.Summary, res.Alerts)
	}
}
