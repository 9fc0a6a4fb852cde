package history

import (
	"context"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
)

func TestPredictTaskDurations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ backend, s *Store) {
		ctx := context.Background()
		base := time.Now().Add(-24 * time.Hour)
		rec := func(job string, task domain.TaskType, state domain.JobState, d time.Duration, at time.Duration) {
			t.Helper()
			start := base.Add(at)
			if err := s.RecordTaskResult(ctx, TaskRecord{JobID: job, Target: "db", Task: task, State: state,
				StartedAt: start, FinishedAt: start.Add(d)}); err != nil {
				t.Fatal(err)
			}
		}
		for i, d := range []time.Duration{10, 30, 20, 1000, 25} {
			rec("j"+string(rune('a'+i)), domain.TaskMVCCCleanup, domain.StateSucceeded, d*time.Second, time.Duration(i)*time.Hour)
		}
		rec("jf", domain.TaskMVCCCleanup, domain.StateFailed, time.Hour, 6*time.Hour)
		rec("jq", domain.TaskQuotaCheck, domain.StateSucceeded, 200*time.Millisecond, time.Hour)
		got, err := s.PredictTaskDurations(ctx, "db", []domain.TaskType{domain.TaskMVCCCleanup, domain.TaskQuotaCheck, domain.TaskIndexRebuild})
		if err != nil {
			t.Fatal(err)
		}
		if got[domain.TaskMVCCCleanup] != 25_000 || got[domain.TaskQuotaCheck] != 200 || len(got) != 2 {
			t.Fatalf("predictions %v, want mvcc 25000 (median of the successful runs), quota 200, nothing for index_rebuild", got)
		}
	})
}
