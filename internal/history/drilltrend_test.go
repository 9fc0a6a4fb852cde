package history

import (
	"encoding/json"
	"testing"
	"time"
)

func TestTargetDrillReports(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ backend, s *Store) {
		ctx := t.Context()
		for _, r := range []struct{ id, target string }{{"o1", "orders"}, {"b1", "billing"}, {"o2", "orders"}, {"o3", "orders"}} {
			if err := s.SaveDrillReport(ctx, r.id, r.target, json.RawMessage(`{"id":"`+r.id+`"}`)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond)
		}
		got, err := s.TargetDrillReports(ctx, "orders", 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != "o3" || got[1].ID != "o2" {
			t.Errorf("newest two of orders: %+v", got)
		}
		none, err := s.TargetDrillReports(ctx, "nowhere", 0)
		if err != nil || none == nil || len(none) != 0 {
			t.Errorf("no reports: %v %+v", err, none)
		}
	})
}
