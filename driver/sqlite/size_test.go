package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

func TestQuotaCheck(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	usage, err := readDiskUsage(h.target.DSN)
	if err != nil {
		t.Fatal(err)
	}
	used := usage.total()

	res := h.run(domain.TaskQuotaCheck, nil)
	if !strings.Contains(res.Summary, "no quota configured") || len(res.Alerts) != 0 {
		t.Errorf("no quota: %q %v", res.Summary, res.Alerts)
	}
	// While the task has the WAL-mode database open, SQLite's shared-memory
	// file exists too, and counts.
	if res.Details["file_bytes"] != usage.File || res.Details["used_bytes"].(int64) < used ||
		res.Details["used_bytes"] != usage.File+res.Details["wal_bytes"].(int64)+res.Details["shm_bytes"].(int64) {
		t.Errorf("usage details = %v, file %d", res.Details, usage.File)
	}

	for _, tc := range []struct {
		name  string
		quota int64
		opts  domain.TaskOptions
		level string
	}{
		{"plenty of room", used * 4, nil, ""},
		{"over 80 %", used * 100 / 85, nil, domain.AlertWarning},
		{"over 90 %", used * 100 / 95, nil, domain.AlertHigh},
		{"over quota", used / 2, nil, domain.AlertCritical},
		{"custom alert_pct", used * 2, domain.TaskOptions{"alert_pct": 40.0}, domain.AlertWarning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.target.QuotaBytes = tc.quota
			res := h.run(domain.TaskQuotaCheck, tc.opts)
			got := ""
			if len(res.Alerts) == 1 {
				got = res.Alerts[0].Level
			} else if len(res.Alerts) > 1 {
				t.Fatalf("alerts = %v", res.Alerts)
			}
			if got != tc.level {
				t.Errorf("alert level = %q, want %q (%s)", got, tc.level, res.Summary)
			}
			if res.Details["quota_bytes"] != tc.quota {
				t.Errorf("details = %v", res.Details)
			}
		})
	}
}

func TestMetricsCollectionWritesSamples(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	start := time.Now().Add(-time.Second)
	res := h.run(domain.TaskMetricsCollection, nil)
	rows := res.Details["rows"].(map[string]int64)
	if rows["events"] != demoEvents/2 || rows["customers"] != demoCustomers {
		t.Errorf("rows = %v", rows)
	}
	ctx := context.Background()
	for metric, want := range map[string]float64{
		"rows.events":       float64(demoEvents / 2),
		"rows.customers":    demoCustomers,
		MetricTableCount:    4,
		MetricIndexCount:    8,
		MetricSizeBytes:     float64(res.Details["size_bytes"].(int64)),
		MetricPageCount:     float64(res.Details["page_count"].(int64)),
		MetricFreelistCount: float64(res.Details["freelist_count"].(int64)),
	} {
		got, err := h.hist.Samples(ctx, "demo", metric, start)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Value != want {
			t.Errorf("%s samples = %+v, want one of %v", metric, got, want)
		}
	}

	// A retried attempt reuses the row counts its checkpoint holds.
	hb := &heartbeats{}
	req := h.req(domain.TaskMetricsCollection, nil, hb)
	req.Checkpoint = []byte(`{"done":["customers","events"],"results":{"customers":1,"events":2}}`)
	res, err := h.d.Run(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	rows = res.Details["rows"].(map[string]int64)
	if rows["customers"] != 1 || rows["events"] != 2 || rows["orders"] == 0 {
		t.Errorf("resumed rows = %v", rows)
	}
	for _, n := range hb.notes() {
		if strings.Contains(n, "count rows of customers") {
			t.Errorf("checkpointed table counted again: %q", n)
		}
	}

	// Without a history store the task cannot do its job.
	req = h.req(domain.TaskMetricsCollection, nil, nil)
	req.History = nil
	if _, err := h.d.Run(ctx, req); permanentKind(err) != driver.KindMisconfigured {
		t.Errorf("without history: err = %v", err)
	}
}

func TestCapacityTrend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t)
	usage, err := readDiskUsage(h.target.DSN)
	if err != nil {
		t.Fatal(err)
	}
	current := float64(usage.total())

	// First run: one sample, no trend, said so.
	res := h.run(domain.TaskCapacityTrendAnalysis, nil)
	if !strings.Contains(res.Summary, "not enough samples (1)") || res.Details["trend"] != false {
		t.Errorf("one sample: %q", res.Summary)
	}

	// Synthetic history: growing 1 MiB a day for 20 days up to today's size,
	// and a stray sample older than the lookback that must be ignored.
	const perDay = 1 << 20
	now := time.Now()
	var samples []driver.Sample
	for d := 20; d >= 1; d-- {
		samples = append(samples, driver.Sample{Target: "demo", Metric: MetricSizeBytes,
			At: now.Add(-time.Duration(d) * 24 * time.Hour), Value: current - float64(d*perDay)})
	}
	samples = append(samples, driver.Sample{Target: "demo", Metric: MetricSizeBytes, At: now.Add(-200 * 24 * time.Hour), Value: 1e12})
	if err := h.hist.RecordSamples(ctx, samples...); err != nil {
		t.Fatal(err)
	}

	h.target.QuotaBytes = int64(current) + 10*perDay // 10 days left
	res = h.run(domain.TaskCapacityTrendAnalysis, nil)
	slope := res.Details["slope_bytes_per_day"].(float64)
	if slope < 0.97*perDay || slope > 1.03*perDay {
		t.Errorf("slope = %v, want about %d (%s)", slope, perDay, res.Summary)
	}
	runway, _ := res.Details["runway_days"].(float64)
	if runway < 9 || runway > 11 {
		t.Errorf("runway = %v, want about 10 days", res.Details["runway_days"])
	}
	if len(res.Alerts) != 1 || res.Alerts[0].Level != domain.AlertHigh {
		t.Errorf("alerts = %v, want one HIGH (10 days < 30)", res.Alerts)
	}
	if n := res.Details["samples"]; n != 22 { // 20 synthetic + 2 recorded by the task
		t.Errorf("samples used = %v, want 22", n)
	}

	// A lower alert threshold raises nothing; runway under a quarter of it is CRITICAL.
	res = h.run(domain.TaskCapacityTrendAnalysis, domain.TaskOptions{"runway_alert_days": int64(5)})
	if len(res.Alerts) != 0 {
		t.Errorf("alerts at 5 days = %v", res.Alerts)
	}
	res = h.run(domain.TaskCapacityTrendAnalysis, domain.TaskOptions{"runway_alert_days": int64(60)})
	if len(res.Alerts) != 1 || res.Alerts[0].Level != domain.AlertCritical {
		t.Errorf("alerts at 60 days = %v, want CRITICAL", res.Alerts)
	}

	// No quota: trend reported, no runway.
	h.target.QuotaBytes = 0
	res = h.run(domain.TaskCapacityTrendAnalysis, nil)
	if res.Details["runway_days"] != nil || !strings.Contains(res.Summary, "no quota configured") {
		t.Errorf("no quota: %q %v", res.Summary, res.Details["runway_days"])
	}
}

func TestCapacityTrendNotGrowing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t)
	usage, _ := readDiskUsage(h.target.DSN)
	now := time.Now()
	for d := 10; d >= 1; d-- {
		if err := h.hist.RecordSamples(ctx, driver.Sample{Target: "demo", Metric: MetricSizeBytes,
			At: now.Add(-time.Duration(d) * 24 * time.Hour), Value: float64(usage.total() + int64(d)*200_000)}); err != nil {
			t.Fatal(err)
		}
	}
	h.target.QuotaBytes = usage.total() * 2
	res := h.run(domain.TaskCapacityTrendAnalysis, nil)
	if res.Details["growing"] != false || res.Details["runway_days"] != nil || len(res.Alerts) != 0 {
		t.Errorf("shrinking database: %q %v", res.Summary, res.Details)
	}
	if !strings.Contains(res.Summary, "runway unlimited") {
		t.Errorf("summary = %q", res.Summary)
	}
}
