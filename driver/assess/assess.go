// Package assess holds the engine-independent half of the tasks that every
// driver implements: a driver measures (file sizes, pg_database_size, probe
// timings) and assess judges the measurement and words the result, so that
// capacity_trend_analysis, quota_check and baseline_update report the same
// summaries, detail keys and alert levels on every engine. It also holds
// the number formatting those results share.
package assess

import (
	"fmt"
	"math"
)

// BytesHuman formats a byte count with binary units: "512 B", "1.5 KiB",
// "3.0 GiB"; negative counts keep their sign.
func BytesHuman(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit || m <= -unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Round1 rounds to one decimal (half away from zero) for reports.
func Round1(f float64) float64 { return math.Round(f*10) / 10 }

// Round3 rounds to three decimals (half away from zero) for reports.
func Round3(f float64) float64 { return math.Round(f*1000) / 1000 }
