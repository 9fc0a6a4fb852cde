package assess

import (
	"testing"

	"github.com/themis-maintenance/themis/domain"
)

func TestQuotaLevel(t *testing.T) {
	for _, c := range []struct {
		pct, alertPct     float64
		reached, exceeded string
	}{
		{10, 80, "", ""},
		{79.9, 80, "", ""},
		{80, 80, domain.AlertWarning, ""}, // at the threshold: only Reached alerts
		{85, 80, domain.AlertWarning, domain.AlertWarning},
		{90, 80, domain.AlertHigh, domain.AlertWarning}, // half-way to full
		{95, 80, domain.AlertHigh, domain.AlertHigh},
		{100, 80, domain.AlertCritical, domain.AlertCritical},
		{250, 80, domain.AlertCritical, domain.AlertCritical},
		{40, 40, domain.AlertWarning, ""},
		{70, 40, domain.AlertHigh, domain.AlertWarning},
		{100, 100, domain.AlertCritical, domain.AlertCritical},
	} {
		if got := QuotaLevel(c.pct, c.alertPct, Reached); got != c.reached {
			t.Errorf("QuotaLevel(%v, %v, Reached) = %q, want %q", c.pct, c.alertPct, got, c.reached)
		}
		if got := QuotaLevel(c.pct, c.alertPct, Exceeded); got != c.exceeded {
			t.Errorf("QuotaLevel(%v, %v, Exceeded) = %q, want %q", c.pct, c.alertPct, got, c.exceeded)
		}
	}
}
