package assess

import "github.com/themis-maintenance/themis/domain"

// QuotaLevel is the quota_check alert ladder for pct percent of the quota
// used, the same on every engine: WARNING above alertPct (the contract's
// "quota > 80 %"), HIGH above half-way between alertPct and 100 %, CRITICAL
// at or over 100 %, "" otherwise.
func QuotaLevel(pct, alertPct float64) string {
	switch {
	case pct >= 100:
		return domain.AlertCritical
	case pct > alertPct+(100-alertPct)/2:
		return domain.AlertHigh
	case pct > alertPct:
		return domain.AlertWarning
	}
	return ""
}
