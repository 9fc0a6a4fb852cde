package domain

import "testing"

func TestDrillTrend(t *testing.T) {
	d := func(id string, start, rto, rpo int64, measured bool, state DrillState) DrillTrendPoint {
		return TrendPoint(Drill{ID: id, StartedAtMs: start, RTOMs: rto, RPOMs: rpo, Measured: measured, State: state,
			RTOObjectiveMs: 60_000, RPOObjectiveMs: 5_000})
	}
	tr := NewDrillTrend("orders", []DrillTrendPoint{
		d("c", 3, 90_000, 1_000, true, DrillFailed),
		d("a", 1, 30_000, 2_000, true, DrillPassed),
		d("b", 2, 0, 0, false, DrillAborted),
		d("d", 4, 40_000, 9_000, true, DrillFailed),
	})
	if tr.Points[0].DrillID != "a" || tr.Points[3].DrillID != "d" {
		t.Fatalf("not oldest first: %+v", tr.Points)
	}
	if tr.Drills != 4 || tr.Measured != 3 || tr.Passed != 1 {
		t.Errorf("counts %d/%d/%d", tr.Drills, tr.Measured, tr.Passed)
	}
	if tr.RTOMedianMs != 40_000 || tr.RTOMaxMs != 90_000 || tr.RPOMedianMs != 2_000 || tr.RPOMaxMs != 9_000 {
		t.Errorf("rto %d/%d rpo %d/%d", tr.RTOMedianMs, tr.RTOMaxMs, tr.RPOMedianMs, tr.RPOMaxMs)
	}
	if p := tr.Points[2]; p.RTOMet || !p.RPOMet {
		t.Errorf("c: rto met %t rpo met %t", p.RTOMet, p.RPOMet)
	}
	if p := tr.Points[1]; p.RTOMet || p.RPOMet {
		t.Errorf("an unmeasured drill meets nothing: %+v", p)
	}
	if e := NewDrillTrend("x", nil); e.Points == nil || e.Drills != 0 || e.RTOMaxMs != 0 {
		t.Errorf("empty trend %+v", e)
	}
}
