package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/themis-maintenance/themis/activities"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

func TestBudgetIsTheWindowOrTheTimeLimit(t *testing.T) {
	windowEnd := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)

	// A scheduled run in an enforced window: units stop at its close.
	env, f := newEnv(t, inWindowTime)
	env.ExecuteWorkflow(MaintenanceWorkflowName, input(domain.TaskMVCCCleanup))
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, f.inputs, 1)
	b := f.inputs[0].Budget
	require.True(t, b.StopStartingAt.Equal(windowEnd), "stop starting at %s", b.StopStartingAt)
	require.True(t, b.HardStopAt.Equal(windowEnd))
	require.Equal(t, driver.StoppedWindowClosed, b.StoppedBy)
	require.False(t, f.inputs[0].DryRun)

	// A time limit before the window's end comes first; the hard stop is
	// still the window's end.
	env, f = newEnv(t, inWindowTime)
	in := input(domain.TaskMVCCCleanup)
	in.Spec.TimeLimitMinutes = 30
	env.ExecuteWorkflow(MaintenanceWorkflowName, in)
	require.NoError(t, env.GetWorkflowError())
	b = f.inputs[0].Budget
	require.True(t, b.StopStartingAt.Equal(inWindowTime.Add(30*time.Minute)), "stop starting at %s", b.StopStartingAt)
	require.True(t, b.HardStopAt.Equal(windowEnd))
	require.Equal(t, driver.StoppedTimeLimit, b.StoppedBy)

	// A forced run ignores the window: only the time limit bounds it.
	env, f = newEnv(t, time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	in.Forced = true
	env.ExecuteWorkflow(MaintenanceWorkflowName, in)
	require.NoError(t, env.GetWorkflowError())
	b = f.inputs[0].Budget
	require.True(t, b.StopStartingAt.Equal(time.Date(2026, 11, 22, 12, 30, 0, 0, time.UTC)))
	require.True(t, b.HardStopAt.IsZero())

	// Forced without a limit: no budget at all.
	env, f = newEnv(t, time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	in.Spec.TimeLimitMinutes = 0
	env.ExecuteWorkflow(MaintenanceWorkflowName, in)
	require.NoError(t, env.GetWorkflowError())
	require.False(t, f.inputs[0].Budget.Bounded())
}

func TestTaskAfterTheWindowClosedIsSkipped(t *testing.T) {
	env, f := newEnv(t, inWindowTime)
	// The first task's units fill the window: it ends at 07:00, past the
	// window's close at 06:00, leaving units for the next run.
	env.OnActivity(string(domain.TaskMVCCCleanup), mock.Anything, mock.Anything).After(4*time.Hour).Return(activities.TaskOutput{
		Summary: "vacuumed 3 of 10 tables; 7 left for the next run (window_closed)", Attempt: 1,
		Details: map[string]any{"units_left": []string{"public.t4"}, "stopped_by": driver.StoppedWindowClosed},
	}, nil)
	env.ExecuteWorkflow(MaintenanceWorkflowName, input(domain.TaskMVCCCleanup, domain.TaskStatisticsUpdate))
	require.NoError(t, env.GetWorkflowError())
	job := result(t, env)
	require.Equal(t, domain.StateSucceeded, job.Tasks[0].State)
	require.Equal(t, domain.StateSkipped, job.Tasks[1].State)
	require.Equal(t, "skipped: window_closed: the maintenance window closed at 2026-11-22T06:00:00Z", job.Tasks[1].ResultSummary)
	require.Empty(t, f.calls, "the mock answered the first task; the second never started")
}

func TestDryRunPlansWhatTheDriverCanPlan(t *testing.T) {
	// Outside the window, in a blackout: a dry run runs anyway, and takes
	// no slot of the target.
	env, f := newEnv(t, time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	f.blackouts = []domain.Blackout{{Name: "freeze", From: inWindowTime, To: inWindowTime.Add(48 * time.Hour)}}
	f.behave[domain.TaskMetricsCollection] = func(context.Context, int32) (activities.TaskOutput, error) {
		return activities.TaskOutput{Skipped: "dry run: metrics_collection only reads the target, so there is nothing to plan", Attempt: 1}, nil
	}
	f.behave[domain.TaskIndexRebuild] = func(context.Context, int32) (activities.TaskOutput, error) {
		return activities.TaskOutput{Skipped: "dry run: the sqlite driver cannot plan index_rebuild without doing it", Attempt: 1}, nil
	}
	in := input(domain.TaskMetricsCollection, domain.TaskMVCCCleanup, domain.TaskIndexRebuild, domain.TaskDisasterRecoveryDrill)
	in.DryRun = true
	env.ExecuteWorkflow(MaintenanceWorkflowName, in)
	require.NoError(t, env.GetWorkflowError())
	job := result(t, env)
	require.True(t, job.DryRun)
	require.Equal(t, domain.StateSucceeded, job.State)
	require.Equal(t, []domain.TaskType{domain.TaskMetricsCollection, domain.TaskMVCCCleanup, domain.TaskIndexRebuild}, f.calls, "the drill is not asked")
	for _, in := range f.inputs {
		require.True(t, in.DryRun)
		require.False(t, in.Budget.Bounded(), "a dry run has no budget")
	}
	require.Empty(t, f.lock.requests, "a dry run takes no slot of the target")
	require.Equal(t, domain.StateSkipped, job.Tasks[0].State)
	require.Equal(t, "skipped: dry run: metrics_collection only reads the target, so there is nothing to plan", job.Tasks[0].ResultSummary)
	require.Equal(t, domain.StateSucceeded, job.Tasks[1].State)
	require.Equal(t, domain.StateSkipped, job.Tasks[2].State)
	require.Equal(t, "skipped: dry run: the sqlite driver cannot plan index_rebuild without doing it", job.Tasks[2].ResultSummary)
	require.Equal(t, domain.StateSkipped, job.Tasks[3].State)
	require.Contains(t, job.Tasks[3].ResultSummary, "a DR drill is never simulated")
}
