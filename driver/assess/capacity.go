package assess

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/internal/forecast"
)

// MinTrendSpan is the least time the size samples must cover before a
// slope means anything: a slope over a few seconds of samples says nothing
// about days.
const MinTrendSpan = time.Hour

// CapacityOptions parameterise Capacity.
type CapacityOptions struct {
	// Metric is the history metric of the size samples (the driver's
	// MetricSizeBytes). Required.
	Metric string
	// LookbackDays is how far back samples are fitted.
	LookbackDays int64
	// RunwayAlertDays raises HIGH under this runway, CRITICAL at a quarter
	// of it or less.
	RunwayAlertDays int64
	// Details are engine-specific details added to the result's (the
	// PostgreSQL driver's "database").
	Details map[string]any
	// Now is the instant of the new sample; zero means time.Now().UTC().
	Now time.Time
	// Progress, when set, receives the heartbeats of the steps (10 %
	// record, 40 % read, 70 % fit).
	Progress func(pct float64, note string)
}

// Capacity is capacity_trend_analysis once the driver has measured the
// current size of target: it records current as a sample of o.Metric, reads
// the samples of the last o.LookbackDays, fits a least-squares line
// (forecast.Fit) and forecasts the runway to quota. A HIGH alert when the
// runway is under o.RunwayAlertDays, CRITICAL at a quarter of that or less
// (an exhausted quota included). Too few samples, or samples spanning less
// than MinTrendSpan, is a success whose summary says a trend needs more. No
// quota (quota <= 0) reports the trend without a runway. Errors are the
// history store's.
func Capacity(ctx context.Context, h driver.History, target string, current, quota int64, o CapacityOptions) (driver.Result, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now().UTC()
	}
	progress := o.Progress
	if progress == nil {
		progress = func(float64, string) {}
	}
	progress(10, "record size sample")
	if err := h.RecordSamples(ctx, driver.Sample{Target: target, Metric: o.Metric, At: now, Value: float64(current)}); err != nil {
		return driver.Result{}, fmt.Errorf("record size sample: %w", err)
	}
	progress(40, "read size samples")
	samples, err := h.Samples(ctx, target, o.Metric, now.Add(-time.Duration(o.LookbackDays)*24*time.Hour))
	if err != nil {
		return driver.Result{}, fmt.Errorf("read size samples: %w", err)
	}
	details := map[string]any{
		"samples": len(samples), "lookback_days": o.LookbackDays, "current_bytes": current,
		"quota_bytes": quota, "runway_alert_days": o.RunwayAlertDays,
	}
	for k, v := range o.Details {
		details[k] = v
	}
	points := make([]forecast.Point, len(samples))
	for i, s := range samples {
		points[i] = forecast.Point{At: s.At, Value: s.Value}
	}
	progress(70, "fit trend")
	trend, err := forecast.Fit(points)
	if errors.Is(err, forecast.ErrTooFewSamples) || errors.Is(err, forecast.ErrNoTimeSpread) {
		details["trend"] = false
		return driver.Result{
			Summary: fmt.Sprintf("not enough samples (%d) for a trend over the last %d days; current size %s recorded",
				len(samples), o.LookbackDays, BytesHuman(current)),
			Details: details,
		}, nil
	}
	if err != nil {
		return driver.Result{}, err
	}
	if trend.Span < MinTrendSpan {
		details["trend"] = false
		return driver.Result{
			Summary: fmt.Sprintf("not enough samples for a trend: %d samples span only %s (at least %s needed); current size %s recorded",
				len(samples), trend.Span.Round(time.Second), MinTrendSpan, BytesHuman(current)),
			Details: details,
		}, nil
	}
	spanDays := trend.Span.Hours() / 24
	details["trend"] = true
	details["slope_bytes_per_day"] = math.Round(trend.SlopePerDay)
	details["r2"] = Round3(trend.R2)
	details["span_days"] = Round1(spanDays)
	details["growing"] = trend.Growing()
	details["forecast_30d_bytes"] = math.Round(float64(current) + 30*trend.SlopePerDay)
	verb := "growing"
	if !trend.Growing() {
		verb = "not growing:"
	}
	growth := fmt.Sprintf("%s %s/day over %d samples in %.1f days (r² %.2f)",
		verb, BytesHuman(int64(math.Round(trend.SlopePerDay))), len(samples), spanDays, trend.R2)
	if quota <= 0 {
		details["runway_days"] = nil
		return driver.Result{Summary: growth + "; no quota configured, so no runway", Details: details}, nil
	}
	runway := forecast.Runway(float64(current), float64(quota), trend.SlopePerDay)
	if math.IsInf(runway, 1) {
		details["runway_days"] = nil
		return driver.Result{
			Summary: fmt.Sprintf("%s; %s of %s quota used, runway unlimited while not growing", growth, BytesHuman(current), BytesHuman(quota)),
			Details: details,
		}, nil
	}
	details["runway_days"] = Round1(runway)
	full := now.Add(time.Duration(runway * 24 * float64(time.Hour)))
	details["projected_full_at_ms"] = full.UnixMilli()
	summary := fmt.Sprintf("%s; %s of %s quota used, runway %.1f days (full around %s)",
		growth, BytesHuman(current), BytesHuman(quota), runway, full.UTC().Format("2006-01-02"))
	var alerts []domain.Alert
	if level := RunwayLevel(runway, o.RunwayAlertDays); level != "" {
		alerts = append(alerts, domain.Alert{Level: level, Subject: "capacity runway",
			Message: fmt.Sprintf("quota of %s reached in %.1f days at %s/day (alert under %d days)",
				BytesHuman(quota), runway, BytesHuman(int64(trend.SlopePerDay)), o.RunwayAlertDays)})
		summary += ": " + level
	}
	return driver.Result{Summary: summary, Details: details, Alerts: alerts}, nil
}

// RunwayLevel is the alert level of a runway of runwayDays: CRITICAL at a
// quarter of alertDays or less, HIGH under alertDays, "" otherwise.
func RunwayLevel(runwayDays float64, alertDays int64) string {
	limit := float64(alertDays)
	if runwayDays < limit {
		if runwayDays <= limit/4 {
			return domain.AlertCritical
		}
		return domain.AlertHigh
	}
	return ""
}
