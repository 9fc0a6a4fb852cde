package assess

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

const gib = 1 << 30

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// sizes returns a store holding daily size samples of target "t" for the
// days before now: value(d days ago) = current - d*perDay.
func sizes(t *testing.T, current, perDay float64, days int) driver.History {
	t.Helper()
	h := openHistory(t)
	for d := days; d >= 1; d-- {
		record(t, h, driver.Sample{Target: "t", Metric: "size_bytes", At: now.Add(-time.Duration(d) * 24 * time.Hour), Value: current - float64(d)*perDay})
	}
	return h
}

func record(t *testing.T, h driver.History, s ...driver.Sample) {
	t.Helper()
	if err := h.RecordSamples(context.Background(), s...); err != nil {
		t.Fatal(err)
	}
}

func opts() CapacityOptions {
	return CapacityOptions{Metric: "size_bytes", LookbackDays: 90, RunwayAlertDays: 30, Now: now}
}

func TestCapacityNotEnoughSamples(t *testing.T) {
	ctx := context.Background()
	h := openHistory(t)
	var notes []string
	o := opts()
	o.Details = map[string]any{"database": "app"}
	o.Progress = func(pct float64, note string) { notes = append(notes, note) }
	res, err := Capacity(ctx, h, "t", 20*gib, 40*gib, o)
	if err != nil {
		t.Fatal(err)
	}
	if want := "not enough samples (1) for a trend over the last 90 days; current size 20.0 GiB recorded"; res.Summary != want {
		t.Errorf("summary %q, want %q", res.Summary, want)
	}
	if res.Details["trend"] != false || res.Details["samples"] != 1 || res.Details["database"] != "app" ||
		res.Details["current_bytes"] != int64(20*gib) || res.Details["quota_bytes"] != int64(40*gib) ||
		res.Details["lookback_days"] != int64(90) || res.Details["runway_alert_days"] != int64(30) || len(res.Alerts) != 0 {
		t.Errorf("details %v alerts %v", res.Details, res.Alerts)
	}
	recorded, err := h.Samples(ctx, "t", "size_bytes", time.Time{})
	if err != nil || len(recorded) != 1 || !recorded[0].At.Equal(now) || recorded[0].Value != 20*gib {
		t.Errorf("recorded %+v %v", recorded, err)
	}
	if strings.Join(notes, "|") != "record size sample|read size samples|fit trend" {
		t.Errorf("progress %q", notes)
	}

	// Two samples half an hour apart: a slope, but over too short a time.
	o = opts()
	o.Now = now.Add(30 * time.Minute)
	res, err = Capacity(ctx, h, "t", 20*gib, 40*gib, o)
	if err != nil {
		t.Fatal(err)
	}
	if want := "not enough samples for a trend: 2 samples span only 30m0s (at least 1h0m0s needed); current size 20.0 GiB recorded"; res.Summary != want || res.Details["trend"] != false {
		t.Errorf("short span: %q %v", res.Summary, res.Details)
	}
}

func TestCapacityRunway(t *testing.T) {
	for _, c := range []struct {
		name    string
		quota   int64
		summary string
		runway  any
		level   string
		message string
	}{
		{"no quota", 0, "growing 1.0 GiB/day over 11 samples in 10.0 days (r² 1.00); no quota configured, so no runway", nil, "", ""},
		{"plenty of room", 60 * gib, "growing 1.0 GiB/day over 11 samples in 10.0 days (r² 1.00); 20.0 GiB of 60.0 GiB quota used, runway 40.0 days (full around 2026-04-10)", 40.0, "", ""},
		{"under the alert", 40 * gib, "growing 1.0 GiB/day over 11 samples in 10.0 days (r² 1.00); 20.0 GiB of 40.0 GiB quota used, runway 20.0 days (full around 2026-03-21): HIGH", 20.0,
			domain.AlertHigh, "quota of 40.0 GiB reached in 20.0 days at 1.0 GiB/day (alert under 30 days)"},
		{"under a quarter", 25 * gib, "growing 1.0 GiB/day over 11 samples in 10.0 days (r² 1.00); 20.0 GiB of 25.0 GiB quota used, runway 5.0 days (full around 2026-03-06): CRITICAL", 5.0,
			domain.AlertCritical, "quota of 25.0 GiB reached in 5.0 days at 1.0 GiB/day (alert under 30 days)"},
		{"exhausted", 10 * gib, "growing 1.0 GiB/day over 11 samples in 10.0 days (r² 1.00); 20.0 GiB of 10.0 GiB quota used, runway 0.0 days (full around 2026-03-01): CRITICAL", 0.0,
			domain.AlertCritical, "quota of 10.0 GiB reached in 0.0 days at 1.0 GiB/day (alert under 30 days)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := sizes(t, 20*gib, gib, 10)
			res, err := Capacity(context.Background(), h, "t", 20*gib, c.quota, opts())
			if err != nil {
				t.Fatal(err)
			}
			if res.Summary != c.summary {
				t.Errorf("summary\n%q, want\n%q", res.Summary, c.summary)
			}
			d := res.Details
			if d["trend"] != true || d["growing"] != true || d["slope_bytes_per_day"] != float64(gib) || d["r2"] != 1.0 ||
				d["span_days"] != 10.0 || d["forecast_30d_bytes"] != float64(50*gib) || d["runway_days"] != c.runway {
				t.Errorf("details %v", d)
			}
			if _, ok := d["projected_full_at_ms"]; ok != (c.runway != nil) {
				t.Errorf("projected_full_at_ms present %t with runway %v", ok, c.runway)
			}
			switch {
			case c.level == "" && len(res.Alerts) != 0:
				t.Errorf("alerts %+v, want none", res.Alerts)
			case c.level != "" && (len(res.Alerts) != 1 || res.Alerts[0] != domain.Alert{Level: c.level, Subject: "capacity runway", Message: c.message}):
				t.Errorf("alerts %+v, want one %s: %q", res.Alerts, c.level, c.message)
			}
		})
	}
}

func TestCapacityNotGrowing(t *testing.T) {
	h := sizes(t, 20*gib, -gib, 10)
	record(t, h, driver.Sample{Target: "t", Metric: "size_bytes", At: now.Add(-100 * 24 * time.Hour), Value: 1}, // outside the lookback
		driver.Sample{Target: "other", Metric: "size_bytes", At: now.Add(-time.Hour), Value: 1}) // another target
	res, err := Capacity(context.Background(), h, "t", 20*gib, 60*gib, opts())
	if err != nil {
		t.Fatal(err)
	}
	want := "not growing: -1.0 GiB/day over 11 samples in 10.0 days (r² 1.00); 20.0 GiB of 60.0 GiB quota used, runway unlimited while not growing"
	if res.Summary != want || res.Details["runway_days"] != nil || res.Details["growing"] != false || len(res.Alerts) != 0 {
		t.Errorf("shrinking: %q %v %v", res.Summary, res.Details, res.Alerts)
	}
	if _, ok := res.Details["projected_full_at_ms"]; ok {
		t.Errorf("projected_full_at_ms without a runway: %v", res.Details)
	}
}

func TestCapacityHistoryErrors(t *testing.T) {
	boom := errors.New("boom")
	_, err := Capacity(context.Background(), failingHistory{History: openHistory(t), recordErr: boom}, "t", 1, 2, opts())
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "record size sample: ") {
		t.Errorf("record error: %v", err)
	}
	_, err = Capacity(context.Background(), failingHistory{History: openHistory(t), readErr: boom}, "t", 1, 2, opts())
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "read size samples: ") {
		t.Errorf("read error: %v", err)
	}
}

func TestCapacityDefaultsNow(t *testing.T) {
	o := opts()
	o.Now = time.Time{}
	h := openHistory(t)
	before := time.Now().Add(-time.Millisecond)
	if _, err := Capacity(context.Background(), h, "t", 1, 2, o); err != nil {
		t.Fatal(err)
	}
	got, err := h.Samples(context.Background(), "t", "size_bytes", time.Time{})
	if err != nil || len(got) != 1 || got[0].At.Before(before.Truncate(time.Millisecond)) || got[0].At.After(time.Now()) {
		t.Errorf("sample %+v (%v), want one taken now", got, err)
	}
}

func TestRunwayLevel(t *testing.T) {
	for _, c := range []struct {
		runway float64
		alert  int64
		want   string
	}{
		{40, 30, ""}, {30, 30, ""}, {29.9, 30, domain.AlertHigh}, {7.6, 30, domain.AlertHigh},
		{7.5, 30, domain.AlertCritical}, {0, 30, domain.AlertCritical}, {0, 0, ""}, {0.2, 1, domain.AlertCritical},
	} {
		if got := RunwayLevel(c.runway, c.alert); got != c.want {
			t.Errorf("RunwayLevel(%v, %d) = %q, want %q", c.runway, c.alert, got, c.want)
		}
	}
}
