package testsuite

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/themis-maintenance/themis/domain"
)

// Predicted durations on the real dev server: after one run of a task, the
// next job carries the task's expected duration (from the history store),
// which job watch turns into an ETA. The second run is not forced, so it
// also takes the blackout check (none configured) first.
func TestJobCarriesPredictedDurations(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	ctx := context.Background()
	spec := domain.NewScheduleSpec("demo")
	spec.Name, spec.Enabled, spec.EnforceWindow = "Predicted", false, false
	spec.Tasks = []domain.TaskType{domain.TaskQuotaCheck, domain.TaskMetricsCollection}
	sc, err := e.Service.CreateSchedule(ctx, spec, "test")
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Service.DeleteSchedule(ctx, sc.ID, "test") })

	first, err := e.Service.RunSchedule(ctx, sc.ID, true, "test")
	require.NoError(t, err)
	first = e.WaitJob(first.ID, time.Minute, Terminal)
	require.Equal(t, domain.StateSucceeded, first.State, first.ErrorMessage)
	require.Zero(t, first.Tasks[0].PredictedMs, "nothing to go by on the first run")

	var second domain.Job
	require.Eventually(t, func() bool { // once the first job's workflow has closed
		second, err = e.Service.RunSchedule(ctx, sc.ID, false, "test")
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "second run: %v", err)
	second = e.WaitJob(second.ID, time.Minute, Terminal)
	require.Equal(t, domain.StateSucceeded, second.State, second.ErrorMessage)
	for i, tr := range second.Tasks {
		// The activity's own run time, recorded by the worker: more than
		// nothing, at most the task's time in the job (which adds the
		// dispatch through Temporal).
		ran := first.Tasks[i].FinishedAtMs - first.Tasks[i].StartedAtMs
		require.Positive(t, tr.PredictedMs, "%s has a prediction", tr.TaskType)
		require.LessOrEqual(t, tr.PredictedMs, ran, "%s predicted from the first run (%d ms in the job)", tr.TaskType, ran)
	}
	e.RecordHistory(second.ID, "maintenance_predicted")
}
