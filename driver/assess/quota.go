package assess

import "github.com/themis-maintenance/themis/domain"

// Threshold says whether a quota level applies from its threshold on or
// only above it.
type Threshold bool

const (
	// Reached: a level applies once pct reaches its threshold (pct >= t).
	Reached Threshold = true
	// Exceeded: a level applies only once pct is past its threshold (pct > t).
	Exceeded Threshold = false
)

// QuotaLevel is the quota_check alert ladder for pct percent of the quota
// used: CRITICAL at or over 100 %, HIGH from half-way between alertPct and
// 100 %, WARNING from alertPct, "" below. t says whether a level starts at
// its threshold (Reached) or just above it (Exceeded); CRITICAL always
// starts at 100 %.
func QuotaLevel(pct, alertPct float64, t Threshold) string {
	past := func(threshold float64) bool {
		if t == Reached {
			return pct >= threshold
		}
		return pct > threshold
	}
	switch {
	case pct >= 100:
		return domain.AlertCritical
	case past(alertPct + (100-alertPct)/2):
		return domain.AlertHigh
	case past(alertPct):
		return domain.AlertWarning
	}
	return ""
}
