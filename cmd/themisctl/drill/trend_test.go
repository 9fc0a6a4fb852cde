package drill

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/domain"
)

func TestTrend(t *testing.T) {
	e := newTEnv(t, true)
	e.srv.Fake.SeedDrill(domain.Drill{ID: "drill-orders-1", Target: "orders", State: domain.DrillPassed, StartedAtMs: 1000,
		Measured: true, Passed: true, RTOMs: 30_000, RPOMs: 2_000, RTOObjectiveMs: 60_000, RPOObjectiveMs: 5_000,
		Strategy: domain.DrillStrategyBackupRestore, RestoreMBps: 123.4})
	e.srv.Fake.SeedDrill(domain.Drill{ID: "drill-orders-2", Target: "orders", State: domain.DrillFailed, StartedAtMs: 2000,
		Measured: true, RTOMs: 90_000, RPOMs: 1_000, RTOObjectiveMs: 60_000, RPOObjectiveMs: 5_000})
	if err := execute(NewCmdTrend(e.f, nil), "orders"); err != nil {
		t.Fatal(err)
	}
	out := e.out.String()
	for _, want := range []string{"✓ 30s", "✗ 1m30s", "|", "█", "2 drill(s), 2 measured, 1 passed", "backup_restore", "123.4 MB/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("trend output lacks %q:\n%s", want, out)
		}
	}
	if i, j := strings.Index(out, "✓ 30s"), strings.Index(out, "✗ 1m30s"); i > j {
		t.Errorf("not oldest first:\n%s", out)
	}

	e = newTEnv(t, false)
	e.srv.Fake.SeedDrill(domain.Drill{ID: "drill-orders-1", Target: "orders", State: domain.DrillPassed, StartedAtMs: 1000, Measured: true})
	if err := execute(NewCmdTrend(e.f, nil), "orders", "-o", "json"); err != nil {
		t.Fatal(err)
	}
	var tr domain.DrillTrend
	if err := json.Unmarshal(e.out.Bytes(), &tr); err != nil || tr.Drills != 1 || tr.Points[0].DrillID != "drill-orders-1" {
		t.Errorf("json trend %v %+v", err, tr)
	}

	for _, bad := range [][]string{{}, {"orders", "--limit", "0"}, {"a", "b"}} {
		if err := execute(NewCmdTrend(argvFactory(), nil), bad...); !isUsage(err) {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
	e = newTEnv(t, false)
	if err := execute(NewCmdTrend(e.f, nil), "nowhere"); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("unknown target: %v", err)
	}
}
