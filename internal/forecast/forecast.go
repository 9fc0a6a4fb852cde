package forecast

import (
	"errors"
	"math"
	"time"
)

// Errors returned by Fit.
var (
	// ErrTooFewSamples: fewer than two points; no line can be fitted.
	ErrTooFewSamples = errors.New("forecast: at least two samples are needed for a trend")
	// ErrNoTimeSpread: all points share one instant, so the slope is undefined.
	ErrNoTimeSpread = errors.New("forecast: samples do not span any time")
)

// NoLimit is the runway Runway returns when there is no limit (limit <= 0).
const NoLimit = -1.0

const day = 24 * time.Hour

// Point is one measurement: a value observed at an instant.
type Point struct {
	At    time.Time
	Value float64
}

// Trend is a least-squares line value = Intercept + SlopePerDay·days(t − Origin).
type Trend struct {
	// Origin is the instant of the earliest point; x is measured in days from it.
	Origin time.Time
	// Intercept is the fitted value at Origin.
	Intercept float64
	// SlopePerDay is the fitted growth per day (negative when shrinking).
	SlopePerDay float64
	// R2 is the coefficient of determination in [0, 1]; 1 when the points
	// lie exactly on the line (including the case of all-equal values).
	R2 float64
	// N is the number of points fitted.
	N int
	// Span is the time between the earliest and the latest point.
	Span time.Duration
}

// At returns the fitted value at t.
func (tr Trend) At(t time.Time) float64 {
	return tr.Intercept + tr.SlopePerDay*days(t.Sub(tr.Origin))
}

// Growing reports whether the trend increases over time.
func (tr Trend) Growing() bool { return tr.SlopePerDay > 0 }

func days(d time.Duration) float64 { return float64(d) / float64(day) }

// Fit returns the ordinary least-squares line through points, with time in
// days. Points need not be sorted. It returns ErrTooFewSamples for fewer than
// two points and ErrNoTimeSpread when they all share one instant.
func Fit(points []Point) (Trend, error) {
	n := len(points)
	if n < 2 {
		return Trend{N: n}, ErrTooFewSamples
	}
	origin, last := points[0].At, points[0].At
	for _, p := range points[1:] {
		if p.At.Before(origin) {
			origin = p.At
		}
		if p.At.After(last) {
			last = p.At
		}
	}
	if !last.After(origin) {
		return Trend{N: n, Origin: origin}, ErrNoTimeSpread
	}
	// Two-pass algorithm (means first) for numerical stability with large
	// values such as byte counts.
	var mx, my float64
	for _, p := range points {
		mx += days(p.At.Sub(origin))
		my += p.Value
	}
	mx /= float64(n)
	my /= float64(n)
	var sxx, sxy, syy float64
	for _, p := range points {
		dx := days(p.At.Sub(origin)) - mx
		dy := p.Value - my
		sxx += dx * dx
		sxy += dx * dy
		syy += dy * dy
	}
	slope := sxy / sxx
	intercept := my - slope*mx
	var ssRes float64
	for _, p := range points {
		r := p.Value - (intercept + slope*days(p.At.Sub(origin)))
		ssRes += r * r
	}
	r2 := 1.0
	if syy > 0 {
		r2 = math.Max(0, math.Min(1, 1-ssRes/syy))
	}
	return Trend{
		Origin: origin, Intercept: intercept, SlopePerDay: slope,
		R2: r2, N: n, Span: last.Sub(origin),
	}, nil
}

// Runway returns the days until current grows to limit at slopePerDay.
// Sentinels:
//   - NoLimit (-1) when limit <= 0 (no limit configured);
//   - 0 when current is already at or over the limit;
//   - +Inf (math.Inf(1)) when the value is not growing (slopePerDay <= 0).
//
// +Inf does not encode as JSON: callers that report the runway should test
// math.IsInf first.
func Runway(current, limit, slopePerDay float64) float64 {
	switch {
	case limit <= 0:
		return NoLimit
	case current >= limit:
		return 0
	case slopePerDay <= 0:
		return math.Inf(1)
	}
	return (limit - current) / slopePerDay
}
