package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/themis-maintenance/themis/driver"
)

func TestProbeReportsSizeAndQuota(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "p.db")
	if err := SeedDemo(ctx, path); err != nil {
		t.Fatal(err)
	}
	d := NewWithOptions(Options{})
	th, err := d.Probe(ctx, driver.Target{Name: "p", Driver: Name, DSN: path, QuotaBytes: 100 << 20}, openHistory(t))
	if err != nil {
		t.Fatal(err)
	}
	if !th.Reachable || th.Version == "" || th.SizeBytes <= 0 || th.QuotaUsedPct <= 0 || th.LastVerifiedBackupAgeS != -1 {
		t.Fatalf("probe = %+v", th)
	}
	if _, err := d.Probe(ctx, driver.Target{Name: "gone", DSN: filepath.Join(t.TempDir(), "missing.db")}, nil); err == nil {
		t.Fatal("probing a missing file succeeded")
	}
}
