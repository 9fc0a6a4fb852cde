package forecast

import (
	"errors"
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d float64) time.Time { return t0.Add(time.Duration(d * float64(day))) }

func near(a, b, eps float64) bool { return math.Abs(a-b) <= eps }

func TestFit(t *testing.T) {
	tests := []struct {
		name       string
		points     []Point
		wantSlope  float64
		wantInter  float64
		wantR2     float64
		r2Eps      float64
		wantErr    error
		wantOrigin time.Time
	}{
		{
			name:    "no points",
			wantErr: ErrTooFewSamples,
		},
		{
			name:    "one point",
			points:  []Point{{at(0), 5}},
			wantErr: ErrTooFewSamples,
		},
		{
			name:    "same instant",
			points:  []Point{{at(1), 5}, {at(1), 7}},
			wantErr: ErrNoTimeSpread,
		},
		{
			name:      "exact growth of 1 GiB a day",
			points:    []Point{{at(0), 10 << 30}, {at(1), 11 << 30}, {at(2), 12 << 30}, {at(3), 13 << 30}},
			wantSlope: 1 << 30, wantInter: 10 << 30, wantR2: 1,
			wantOrigin: at(0),
		},
		{
			name:      "unsorted input",
			points:    []Point{{at(3), 7}, {at(1), 3}, {at(0), 1}, {at(2), 5}},
			wantSlope: 2, wantInter: 1, wantR2: 1,
			wantOrigin: at(0),
		},
		{
			name:      "flat",
			points:    []Point{{at(0), 42}, {at(5), 42}, {at(10), 42}},
			wantSlope: 0, wantInter: 42, wantR2: 1,
			wantOrigin: at(0),
		},
		{
			name:      "shrinking",
			points:    []Point{{at(0), 100}, {at(10), 50}},
			wantSlope: -5, wantInter: 100, wantR2: 1,
			wantOrigin: at(0),
		},
		{
			// y = 1, 3, 2, 4 at x = 0..3: slope 0.8, intercept 1.3, r² = 0.64.
			name:      "noisy",
			points:    []Point{{at(0), 1}, {at(1), 3}, {at(2), 2}, {at(3), 4}},
			wantSlope: 0.8, wantInter: 1.3, wantR2: 0.64, r2Eps: 1e-9,
			wantOrigin: at(0),
		},
		{
			name:      "hourly samples",
			points:    []Point{{at(0), 0}, {at(1.0 / 24), 1}, {at(2.0 / 24), 2}},
			wantSlope: 24, wantInter: 0, wantR2: 1,
			wantOrigin: at(0),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := Fit(tc.points)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			eps := 1e-6 * math.Max(1, math.Abs(tc.wantInter))
			if !near(tr.SlopePerDay, tc.wantSlope, eps) {
				t.Errorf("slope = %v, want %v", tr.SlopePerDay, tc.wantSlope)
			}
			if !near(tr.Intercept, tc.wantInter, eps) {
				t.Errorf("intercept = %v, want %v", tr.Intercept, tc.wantInter)
			}
			r2Eps := tc.r2Eps
			if r2Eps == 0 {
				r2Eps = 1e-9
			}
			if !near(tr.R2, tc.wantR2, r2Eps) {
				t.Errorf("r2 = %v, want %v", tr.R2, tc.wantR2)
			}
			if !tr.Origin.Equal(tc.wantOrigin) {
				t.Errorf("origin = %v, want %v", tr.Origin, tc.wantOrigin)
			}
			if tr.N != len(tc.points) {
				t.Errorf("n = %d, want %d", tr.N, len(tc.points))
			}
		})
	}
}

func TestTrendAt(t *testing.T) {
	tr, err := Fit([]Point{{at(0), 100}, {at(2), 300}})
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.At(at(5)); !near(got, 600, 1e-9) {
		t.Errorf("At(5d) = %v, want 600", got)
	}
	if !tr.Growing() {
		t.Error("Growing() = false for a positive slope")
	}
	if tr.Span != 2*day {
		t.Errorf("span = %v, want 48h", tr.Span)
	}
}

func TestRunway(t *testing.T) {
	tests := []struct {
		name                  string
		current, limit, slope float64
		want                  float64
	}{
		{"no limit", 100, 0, 10, NoLimit},
		{"negative limit", 100, -5, 10, NoLimit},
		{"already over", 120, 100, 10, 0},
		{"exactly at", 100, 100, 10, 0},
		{"over and shrinking", 120, 100, -10, 0},
		{"flat", 50, 100, 0, math.Inf(1)},
		{"shrinking", 50, 100, -1, math.Inf(1)},
		{"growing", 50, 100, 10, 5},
		{"slow growth", 0, 1 << 30, 1 << 20, 1024},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Runway(tc.current, tc.limit, tc.slope)
			if math.IsInf(tc.want, 1) {
				if !math.IsInf(got, 1) {
					t.Fatalf("Runway = %v, want +Inf", got)
				}
				return
			}
			if !near(got, tc.want, 1e-9) {
				t.Fatalf("Runway = %v, want %v", got, tc.want)
			}
		})
	}
}
