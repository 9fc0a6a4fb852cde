package domain

import (
	"testing"
	"time"
)

func TestJobRemaining(t *testing.T) {
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	j := Job{State: StateRunning, Tasks: []TaskRun{
		{State: StateSucceeded, PredictedMs: 1000},
		{State: StateRunning, StartedAtMs: now.Add(-time.Minute).UnixMilli(), PredictedMs: (5 * time.Minute).Milliseconds()},
		{State: StatePending, PredictedMs: (10 * time.Minute).Milliseconds()},
		{State: StateSkipped},
	}}
	if d, ok := j.Remaining(now); !ok || d != 14*time.Minute {
		t.Fatalf("remaining %v %v, want 14m", d, ok)
	}
	j.Tasks[1].StartedAtMs = now.Add(-time.Hour).UnixMilli() // overran its prediction
	if d, ok := j.Remaining(now); !ok || d != 10*time.Minute {
		t.Fatalf("overrun: %v %v, want 10m", d, ok)
	}
	j.Tasks[2].PredictedMs = 0
	if _, ok := j.Remaining(now); ok {
		t.Fatal("a task without prediction: unknown")
	}
	j.State = StateSucceeded
	if _, ok := j.Remaining(now); ok {
		t.Fatal("an ended job has no ETA")
	}
}
