package orchestration

import (
	"math"
	"slices"
	"time"
)

// durations is a sample of latencies.
type durations []time.Duration

// quantile is the nearest-rank q-quantile (0 < q ≤ 1); 0 for an empty
// sample.
func (d durations) quantile(q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := int(math.Ceil(q*float64(len(s)))) - 1
	rank = max(0, min(rank, len(s)-1))
	return s[rank]
}

func (d durations) p50() time.Duration { return d.quantile(0.50) }
func (d durations) p99() time.Duration { return d.quantile(0.99) }

// ms renders a duration in milliseconds with a precision that suits it.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
