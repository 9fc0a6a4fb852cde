package assess

import (
	"fmt"
	"sort"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// ImmeasurablySlower is the SlowerPct of a probe whose baseline was 0 ms:
// JSON cannot carry +Inf.
const ImmeasurablySlower = 1e9

// Regression is a probe slower than its baseline.
type Regression struct {
	Probe      string  `json:"probe"`
	BaselineMs float64 `json:"baseline_ms"`
	CurrentMs  float64 `json:"current_ms"`
	SlowerPct  float64 `json:"slower_pct"`
}

// CompareBaseline returns the probes of current that are slower than in
// baseline by more than pct percent and by more than floorMs milliseconds,
// sorted by name; nil when there are none. Probes missing from either side,
// and negative baselines, are not compared.
func CompareBaseline(baseline, current map[string]float64, pct, floorMs float64) []Regression {
	var out []Regression
	for name, now := range current {
		old, ok := baseline[name]
		if !ok || old < 0 || !(now > old*(1+pct/100) && now-old > floorMs) {
			continue
		}
		slower := float64(ImmeasurablySlower)
		if old > 0 {
			slower = Round1(100 * (now - old) / old)
		}
		out = append(out, Regression{Probe: name, BaselineMs: old, CurrentMs: now, SlowerPct: slower})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Probe < out[j].Probe })
	return out
}

// BaselineOptions parameterise Baseline.
type BaselineOptions struct {
	// RegressionPct is how much slower (percent) a probe must be to regress.
	RegressionPct float64
	// FloorMs is the least slow-down in milliseconds that counts (timer noise).
	FloorMs float64
	// ProbeRuns is how often each probe ran (the median was kept).
	ProbeRuns int
}

// Baseline is the result of baseline_update once the driver has timed its
// probes (current, probe name → median ms) and read the stored baseline
// (previous): a WARNING alert per probe that regressed (CompareBaseline),
// the summary, and the details probes_ms, previous_ms, regressions,
// regression_pct, regression_floor_ms and probe_runs. The driver then saves
// current as the new baseline and may add details of its own.
func Baseline(previous, current map[string]float64, o BaselineOptions) driver.Result {
	regs := CompareBaseline(previous, current, o.RegressionPct, o.FloorMs)
	var alerts []domain.Alert
	for _, g := range regs {
		alerts = append(alerts, domain.Alert{Level: domain.AlertWarning, Subject: "probe " + g.Probe,
			Message: fmt.Sprintf("%.2f ms against a baseline of %.2f ms (regression threshold %.0f %%)", g.CurrentMs, g.BaselineMs, o.RegressionPct)})
	}
	summary := fmt.Sprintf("%d probes timed (median of %d runs) and saved as the new baseline", len(current), o.ProbeRuns)
	switch {
	case len(previous) == 0:
		summary += "; no earlier baseline to compare with"
	case len(regs) == 0:
		summary += fmt.Sprintf("; no regression over %.0f %% against the previous baseline", o.RegressionPct)
	default:
		summary += fmt.Sprintf("; %d regressed by more than %.0f %% (and %.0f ms)", len(regs), o.RegressionPct, o.FloorMs)
	}
	if regs == nil {
		regs = []Regression{}
	}
	return driver.Result{
		Summary: summary,
		Details: map[string]any{
			"probes_ms": current, "previous_ms": previous, "regressions": regs,
			"regression_pct": o.RegressionPct, "regression_floor_ms": o.FloorMs, "probe_runs": o.ProbeRuns,
		},
		Alerts: alerts,
	}
}
