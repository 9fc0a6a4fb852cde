package historytest

import (
	"context"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/driver"
)

func TestMemory(t *testing.T) {
	ctx := context.Background()
	m := New()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_ = m.RecordSamples(ctx, driver.Sample{Target: "a", Metric: "size", At: base.Add(time.Hour), Value: 2},
		driver.Sample{Target: "a", Metric: "size", At: base, Value: 1},
		driver.Sample{Target: "b", Metric: "size", At: base, Value: 9})
	got, _ := m.Samples(ctx, "a", "size", base)
	if len(got) != 2 || got[0].Value != 1 || got[1].Value != 2 {
		t.Errorf("Samples = %+v, want a's two, oldest first", got)
	}
	if b, _ := m.Baseline(ctx, "a"); b == nil || len(b) != 0 {
		t.Errorf("empty baseline = %v, want an empty map", b)
	}
	vals := map[string]float64{"probe": 3}
	_ = m.SaveBaseline(ctx, "a", vals)
	vals["probe"] = 99 // the store keeps its own copy
	if b, _ := m.Baseline(ctx, "a"); b["probe"] != 3 {
		t.Errorf("baseline = %v", b)
	}
	if _, ok, _ := m.LatestBackup(ctx, "a"); ok {
		t.Error("LatestBackup on an empty store")
	}
	_ = m.RecordBackup(ctx, driver.BackupRecord{Target: "a", Path: "/1", Verified: true})
	_ = m.RecordBackup(ctx, driver.BackupRecord{Target: "a", Path: "/2", Verified: false})
	if b, ok, _ := m.LatestBackup(ctx, "a"); !ok || b.Path != "/1" {
		t.Errorf("LatestBackup = %+v, %v; want the verified /1", b, ok)
	}
	if all := m.Backups(); len(all) != 2 || all[1].Path != "/2" {
		t.Errorf("Backups = %+v", all)
	}
}
