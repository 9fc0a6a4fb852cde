package testsuite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/themis-maintenance/themis/domain"
)

// A forced run of the daily task list on the real dev server: three task
// activities on the SQLite target, job succeeded, results recorded.
func TestForcedRunSucceeds(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	sc := e.CreateSchedule("Daily", domain.TaskMetricsCollection, domain.TaskFragmentationMonitoring, domain.TaskQuotaCheck)
	require.False(t, sc.Enabled)
	require.Equal(t, "0 2 * * *", sc.CronExpression)

	start := time.Now()
	job, err := e.Service.RunSchedule(context.Background(), sc.ID, true, "test")
	require.NoError(t, err)
	require.Equal(t, domain.StateRunning, job.State)
	job = e.WaitJob(job.ID, time.Minute, Terminal)
	t.Logf("forced run of 3 tasks: %s end to end", time.Since(start))

	require.Equal(t, domain.StateSucceeded, job.State, "error: %s", job.ErrorMessage)
	require.True(t, job.Forced)
	require.Equal(t, "test", job.TriggeredBy)
	require.Len(t, job.Tasks, 3)
	for _, tr := range job.Tasks {
		require.Equal(t, domain.StateSucceeded, tr.State, "%s: %s", tr.TaskType, tr.ErrorMessage)
		require.NotEmpty(t, tr.ResultSummary)
		require.Equal(t, 1, tr.Attempt)
	}
	require.Greater(t, job.DurationMs, int64(0))
	e.RecordHistory(job.ID, "maintenance_succeeded")

	// last_run_* come from visibility, which is eventually consistent.
	require.Eventually(t, func() bool {
		got, err := e.Service.GetSchedule(context.Background(), sc.ID)
		return err == nil && got.LastJobID == job.ID && got.LastRunState == domain.StateSucceeded
	}, 30*time.Second, 200*time.Millisecond, "last_run_* show the manual run")
}

// The Temporal Schedule's own action starts the workflow with the entry it
// carries; outside the window the job is skipped without running a task.
func TestScheduleActionStartsJob(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	sc := e.CreateSchedule("Triggered", domain.TaskQuotaCheck)
	now := time.Now().UTC().Hour()
	// A one-hour window that excludes the current hour.
	start := (now + 2) % 24
	sc2, err := e.Service.UpdateSchedule(context.Background(), sc.ID, "test", func(s *domain.ScheduleSpec) error {
		s.WindowStartHour, s.WindowEndHour, s.Enabled = start, (start+1)%24, true
		return nil
	})
	require.NoError(t, err)
	require.True(t, sc2.Enabled)
	require.Eventually(t, func() bool {
		got, err := e.Service.GetSchedule(context.Background(), sc.ID)
		return err == nil && got.NextRunMs > time.Now().UnixMilli()
	}, 30*time.Second, 200*time.Millisecond, "next_run_ms comes from the Temporal Schedule")

	require.NoError(t, e.Client.ScheduleClient().GetHandle(context.Background(), sc.ID).Trigger(context.Background(), client.ScheduleTriggerOptions{}))
	var jobID string
	require.Eventually(t, func() bool {
		got, err := e.Service.GetSchedule(context.Background(), sc.ID)
		if err == nil && got.LastJobID != "" {
			jobID = got.LastJobID
			return true
		}
		return false
	}, 30*time.Second, 200*time.Millisecond)
	job := e.WaitJob(jobID, time.Minute, Terminal)
	require.Equal(t, domain.StateSkipped, job.State)
	require.False(t, job.Forced)
	require.Equal(t, "schedule", job.TriggeredBy)
	require.Equal(t, domain.StateSkipped, job.Tasks[0].State)
	e.RecordHistory(job.ID, "maintenance_skipped")
}

// Heartbeats are visible while a task runs, and cancelling the job reaches
// the running task through its heartbeat: the job ends cancelled mid-task.
func TestCancelLongTaskMidway(t *testing.T) {
	e := NewEnv(t, EnvOptions{StepDelay: 700 * time.Millisecond})
	sc := e.CreateSchedule("Cancel", domain.TaskIndexRebuild, domain.TaskQuotaCheck)
	job, err := e.Service.RunSchedule(context.Background(), sc.ID, true, "test")
	require.NoError(t, err)

	running := e.WaitJob(job.ID, time.Minute, func(j domain.Job) bool {
		return j.Tasks[0].State == domain.StateRunning && j.Tasks[0].ProgressPct > 0
	})
	t.Logf("heartbeat progress seen: %.1f%% (%v)", running.Tasks[0].ProgressPct, running.Tasks[0].Details["progress_note"])

	_, err = e.Service.CancelJob(context.Background(), job.ID, "test")
	require.NoError(t, err)
	done := e.WaitJob(job.ID, 30*time.Second, Terminal)
	require.Equal(t, domain.StateCancelled, done.State)
	require.Equal(t, domain.StateCancelled, done.Tasks[0].State)
	require.Equal(t, domain.StateCancelled, done.Tasks[1].State)
	require.Less(t, done.Tasks[0].ProgressPct, 100.0)
	e.RecordHistory(job.ID, "maintenance_cancelled")

	_, err = e.Service.CancelJob(context.Background(), job.ID, "test")
	require.True(t, errors.Is(err, domain.ErrConflict), "cancelling a finished job is a conflict: %v", err)
}

// A worker stopped mid-task: the task is retried on a new worker and
// resumes from its last heartbeat checkpoint instead of starting over.
func TestWorkerRestartResumesFromCheckpoint(t *testing.T) {
	e := NewEnv(t, EnvOptions{StepDelay: 500 * time.Millisecond, HeartbeatTimeout: 3 * time.Second})
	sc := e.CreateSchedule("Resume", domain.TaskIndexRebuild)
	job, err := e.Service.RunSchedule(context.Background(), sc.ID, true, "test")
	require.NoError(t, err)

	mid := e.WaitJob(job.ID, time.Minute, func(j domain.Job) bool { return j.Tasks[0].ProgressPct >= 30 })
	t.Logf("stopping the worker at %.0f%%", mid.Tasks[0].ProgressPct)
	e.StopWorker()
	e.StartWorker()

	done := e.WaitJob(job.ID, 2*time.Minute, Terminal)
	require.Equal(t, domain.StateSucceeded, done.State, "error: %s", done.ErrorMessage)
	task := done.Tasks[0]
	require.GreaterOrEqual(t, task.Attempt, 2, "the task ran again after the worker stopped")
	t.Logf("resumed task details: %v", task.Details)
	resumed, _ := task.Details["already_done"].(float64)
	require.Greater(t, resumed, 0.0, "the second attempt skipped work the first had checkpointed")
	e.RecordHistory(job.ID, "maintenance_resumed")
}
