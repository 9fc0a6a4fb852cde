package replicaconsistency

import (
	"context"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/health"
)

// The probe's thresholds: ok up to 1000 ms, degraded above, critical above
// 5000 ms, critical when the lag is unknown; and thresholds of one's own.
func TestJudge(t *testing.T) {
	p, err := NewProbe(func(context.Context) ([]driver.Target, error) { return nil, nil }, ProbeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ms := func(n int64) *int64 { return &n }
	for _, c := range []struct {
		lag  *int64
		want health.Status
	}{
		{ms(0), health.OK}, {ms(500), health.OK}, {ms(1000), health.OK}, {ms(1001), health.Degraded},
		{ms(1500), health.Degraded}, {ms(5000), health.Degraded}, {ms(5001), health.Critical},
		{ms(6000), health.Critical}, {nil, health.Critical},
	} {
		if got := p.Judge(c.lag); got != c.want {
			t.Errorf("Judge(%v) = %s, want %s", c.lag, got, c.want)
		}
	}

	strict, err := NewProbe(p.targets, ProbeOptions{DegradedLag: 100 * time.Millisecond, CriticalLag: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := strict.Judge(ms(500)); got != health.Degraded {
		t.Errorf("strict Judge(500) = %s, want degraded", got)
	}
	if got := strict.Judge(ms(1500)); got != health.Critical {
		t.Errorf("strict Judge(1500) = %s, want critical", got)
	}
	if _, err := NewProbe(p.targets, ProbeOptions{DegradedLag: 5 * time.Second, CriticalLag: time.Second}); err == nil {
		t.Error("NewProbe accepted a critical threshold below the degraded one")
	}
}

// With no PostgreSQL target (the dev stack's SQLite demo), the probe is OK
// and says why.
func TestProbeWithoutReplicas(t *testing.T) {
	p, err := NewProbe(func(context.Context) ([]driver.Target, error) {
		return []driver.Target{{Name: "demo", Driver: "sqlite", DSN: "demo.db"}}, nil
	}, ProbeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sig := p.Check(context.Background())
	if sig.Status != health.OK || sig.Message != "no PostgreSQL target has replicas" {
		t.Errorf("signal %+v", sig)
	}
}

// A comparison's verdict: the replica must show a state the primary had.
func TestVerdict(t *testing.T) {
	a, b, c := fingerprint{Rows: 10, Checksum: "a"}, fingerprint{Rows: 11, Checksum: "b"}, fingerprint{Rows: 10, Checksum: "c"}
	for _, tc := range []struct {
		p1, r, p2 fingerprint
		want      string
	}{
		{a, a, a, tableConsistent},
		{a, a, b, tableConsistent}, // the replica had not seen the later write
		{a, b, b, tableConsistent}, // it had
		{a, c, a, tableMismatch},   // same count, other rows
		{a, b, a, tableMismatch},
		{a, c, b, tableBusy},
	} {
		if got := verdict(tc.p1, tc.r, tc.p2); got != tc.want {
			t.Errorf("verdict(%v, %v, %v) = %s, want %s", tc.p1, tc.r, tc.p2, got, tc.want)
		}
	}
}
