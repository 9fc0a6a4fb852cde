package history

import (
	"testing"
	"time"
)

// Manual pauses on both backends: set, replace, read, expire, clear.
func TestTargetThrottles(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ backend, s *Store) {
		ctx := t.Context()
		now := time.Now().UTC().Truncate(time.Millisecond)
		if _, ok, err := s.TargetThrottle(ctx, "orders", now); err != nil || ok {
			t.Fatalf("none yet: %v %v", ok, err)
		}
		th := TargetThrottle{Target: "orders", Until: now.Add(time.Hour), Reason: "freeze", CreatedBy: "alice", CreatedAt: now}
		if err := s.SetTargetThrottle(ctx, th); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.TargetThrottle(ctx, "orders", now)
		if err != nil || !ok || got != th {
			t.Fatalf("got %+v %v %v, want %+v", got, ok, err, th)
		}
		if _, ok, _ := s.TargetThrottle(ctx, "other", now); ok {
			t.Fatal("another target is paused")
		}
		// Past its end it is not in force.
		if _, ok, _ := s.TargetThrottle(ctx, "orders", now.Add(2*time.Hour)); ok {
			t.Fatal("expired pause in force")
		}
		// A new pause replaces the old one.
		th.Until, th.Reason = now.Add(2*time.Hour), "longer"
		if err := s.SetTargetThrottle(ctx, th); err != nil {
			t.Fatal(err)
		}
		until, reason, ok, err := s.ManualPause(ctx, "orders", now)
		if err != nil || !ok || !until.Equal(th.Until) || reason != "longer" {
			t.Fatalf("ManualPause %v %q %v %v", until, reason, ok, err)
		}
		if cleared, err := s.ClearTargetThrottle(ctx, "orders"); err != nil || !cleared {
			t.Fatalf("clear %v %v", cleared, err)
		}
		if cleared, err := s.ClearTargetThrottle(ctx, "orders"); err != nil || cleared {
			t.Fatalf("second clear %v %v", cleared, err)
		}
		// Setting a pause deletes the expired ones.
		if err := s.SetTargetThrottle(ctx, TargetThrottle{Target: "old", Until: now.Add(-time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetTargetThrottle(ctx, TargetThrottle{Target: "orders", Until: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s.queryRow(ctx, `SELECT count(*) FROM target_throttles`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("rows %d %v, want 1 (the expired one pruned)", n, err)
		}
	})
}
