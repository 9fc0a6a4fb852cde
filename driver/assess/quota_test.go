package assess

import (
	"testing"

	"github.com/themis-maintenance/themis/domain"
)

func TestQuotaLevel(t *testing.T) {
	for _, c := range []struct {
		pct, alertPct float64
		want          string
	}{
		{10, 80, ""},
		{79.9, 80, ""},
		{80, 80, ""}, // "> 80 %": at the threshold is not yet an alert
		{80.1, 80, domain.AlertWarning},
		{90, 80, domain.AlertWarning}, // half-way to full is still WARNING
		{90.1, 80, domain.AlertHigh},
		{99.9, 80, domain.AlertHigh},
		{100, 80, domain.AlertCritical},
		{250, 80, domain.AlertCritical},
		{40, 40, ""},
		{70, 40, domain.AlertWarning},
		{70.5, 40, domain.AlertHigh},
		{100, 100, domain.AlertCritical},
	} {
		if got := QuotaLevel(c.pct, c.alertPct); got != c.want {
			t.Errorf("QuotaLevel(%v, %v) = %q, want %q", c.pct, c.alertPct, got, c.want)
		}
	}
}
