package history

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver/commandlog"
)

func TestUnitDurationsAndLastGoodChecks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ backend, s *Store) {
		ctx := context.Background()
		base := time.Now().Add(-time.Hour).UnixMilli()
		var cmds []commandlog.Command
		add := func(job string, attempt int, task, obj string, ms int64, errText string) {
			start := base + int64(len(cmds))*1000
			cmds = append(cmds, commandlog.Command{JobID: job, Target: "db1", Task: task, Attempt: attempt, Object: obj,
				Statement: "x", StartMs: start, EndMs: start + ms, DurationMs: ms, Error: errText})
		}
		// public.a: runs of 100, 300 and 200 ms (one of them two statements
		// of 150 ms), and a failed attempt that does not count.
		add("j1", 1, "mvcc_cleanup", "public.a", 100, "")
		add("j2", 1, "mvcc_cleanup", "public.a", 150, "")
		add("j2", 1, "mvcc_cleanup", "public.a", 150, "")
		add("j3", 1, "mvcc_cleanup", "public.a", 200, "")
		add("j4", 1, "mvcc_cleanup", "public.a", 5000, "canceling statement due to user request")
		add("j4", 1, "mvcc_cleanup", "public.b", 40, "")
		add("j4", 1, "mvcc_cleanup", "", 9, "") // a catalog read: no object
		// Checks: public.a by both tasks, public.b with an error.
		add("j5", 1, "consistency_check", "public.a", 10, "")
		add("j6", 1, "full_checkdb", "public.a", 10, "")
		add("j6", 1, "full_checkdb", "public.b", 10, "corrupt")
		add("j7", 1, "statistics_update", "public.c", 10, "")
		for i := range 12 { // only the newest 10 runs of public.d count
			add("k"+string(rune('a'+i)), 1, "mvcc_cleanup", "public.d", int64(1000+i*1000), "")
		}
		if err := s.RecordCommands(ctx, cmds); err != nil {
			t.Fatal(err)
		}
		// j5 and j6 checked without error, but j6's task found corruption
		// and failed: only j5's relations count as checked.
		for job, state := range map[string]domain.JobState{"j5": domain.StateSucceeded, "j6": domain.StateFailed} {
			task := domain.TaskConsistencyCheck
			if job == "j6" {
				task = domain.TaskFullCheckDB
			}
			if err := s.RecordTaskResult(ctx, TaskRecord{JobID: job, Target: "db1", Task: task, State: state,
				StartedAt: time.UnixMilli(base), FinishedAt: time.UnixMilli(base + 60_000)}); err != nil {
				t.Fatal(err)
			}
		}
		d, err := s.UnitDurations(ctx, "db1", domain.TaskMVCCCleanup)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]time.Duration{"public.a": 200 * time.Millisecond, "public.b": 40 * time.Millisecond, "public.d": 8 * time.Second}
		if len(d) != len(want) {
			t.Fatalf("unit durations %v, want %v", d, want)
		}
		for k, v := range want {
			if d[k] != v {
				t.Fatalf("unit durations %v, want %v", d, want)
			}
		}
		checks, err := s.LastGoodChecks(ctx, "db1", []domain.TaskType{domain.TaskConsistencyCheck, domain.TaskFullCheckDB})
		if err != nil {
			t.Fatal(err)
		}
		keys := make([]string, 0, len(checks))
		for k := range checks {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, []string{"public.a"}) || checks["public.a"].UnixMilli() != cmds[7].EndMs {
			t.Fatalf("last good checks %v", checks)
		}
		if none, _ := s.UnitDurations(ctx, "db2", domain.TaskMVCCCleanup); len(none) != 0 {
			t.Fatalf("another target: %v", none)
		}
	})
}

func TestCarriedUnits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ backend, s *Store) {
		ctx := context.Background()
		if _, ok, err := s.LoadCarriedUnits(ctx, "weekly", "db1", "mvcc_cleanup"); ok || err != nil {
			t.Fatalf("nothing carried yet: ok=%t err=%v", ok, err)
		}
		c := CarriedUnits{ScheduleID: "weekly", Target: "db1", Task: "mvcc_cleanup", Units: []string{"public.b", "public.a"}, StoppedBy: "window_closed", JobID: "j1"}
		if err := s.SaveCarriedUnits(ctx, c); err != nil {
			t.Fatal(err)
		}
		c.Units, c.JobID = []string{"public.c"}, "j2"
		if err := s.SaveCarriedUnits(ctx, c); err != nil { // replaces
			t.Fatal(err)
		}
		got, ok, err := s.LoadCarriedUnits(ctx, "weekly", "db1", "mvcc_cleanup")
		if err != nil || !ok || !slices.Equal(got.Units, []string{"public.c"}) || got.JobID != "j2" || got.StoppedBy != "window_closed" {
			t.Fatalf("carried %+v ok=%t err=%v", got, ok, err)
		}
		if _, ok, _ := s.LoadCarriedUnits(ctx, "daily", "db1", "mvcc_cleanup"); ok {
			t.Fatal("another schedule carries nothing")
		}
		c.Units, c.JobID = nil, "j3" // a run that left nothing clears it
		if err := s.SaveCarriedUnits(ctx, c); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.LoadCarriedUnits(ctx, "weekly", "db1", "mvcc_cleanup"); ok {
			t.Fatal("cleared by a run that left nothing")
		}
	})
}
