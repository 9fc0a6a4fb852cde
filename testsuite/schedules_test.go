package testsuite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/themis-maintenance/themis/domain"
)

// The four default schedules are created disabled, once, however often the
// API starts; their entry lives in the Temporal Schedule.
func TestDefaultSchedulesAreIdempotent(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	ctx := context.Background()
	forgetDefaultsInstalled(t, e)
	for i := 0; i < 3; i++ {
		require.NoError(t, e.Service.EnsureDefaultSchedules(ctx, "demo"))
	}
	var byName map[string]int
	require.Eventually(t, func() bool {
		all, err := e.Service.ListSchedules(ctx)
		if err != nil {
			return false
		}
		byName = map[string]int{}
		for _, s := range all.Schedules {
			byName[s.Name]++
		}
		return byName["Quarterly Maintenance"] == 1
	}, 30*time.Second, 200*time.Millisecond, "the schedule list catches up")
	// Installed as the service installs them: without what SQLite cannot run.
	for _, d := range domain.DefaultSchedules("demo", "sqlite", domain.SupportedBy(e.Deps.Registry.Capabilities(), "sqlite")) {
		require.Equal(t, 1, byName[d.Spec.Name], d.Spec.Name)
		got, err := e.Service.GetSchedule(ctx, d.ID)
		require.NoError(t, err)
		require.False(t, got.Enabled, "%s is created disabled", d.Spec.Name)
		require.Zero(t, got.NextRunMs, "a paused schedule has no next run")
		require.Equal(t, d.Spec.Tasks, got.Tasks)
		require.Equal(t, d.Spec.CronExpression, got.CronExpression)
	}
}

// Create, duplicate, patch, enable, disable and delete go to the Temporal
// Schedule and read back from it.
func TestScheduleLifecycle(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	ctx := context.Background()
	sc := e.CreateSchedule("Lifecycle", domain.TaskQuotaCheck)
	require.Equal(t, "test", sc.CreatedBy)
	require.NotZero(t, sc.CreatedAtMs)

	dup := domain.NewScheduleSpec("demo")
	dup.Name, dup.Tasks = sc.Name, []domain.TaskType{domain.TaskMetricsCollection}
	_, err := e.Service.CreateSchedule(ctx, dup, "test")
	require.True(t, errors.Is(err, domain.ErrConflict), "duplicate name: %v", err)

	up, err := e.Service.UpdateSchedule(ctx, sc.ID, "bob", func(s *domain.ScheduleSpec) error {
		s.Frequency, s.CronExpression, s.Timezone, s.Enabled = domain.FrequencyCustom, "*/30 * * * *", "Europe/Berlin", true
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, "*/30 * * * *", up.CronExpression)
	require.Equal(t, "bob", up.UpdatedBy)
	require.Equal(t, "test", up.CreatedBy, "created_by survives updates")
	require.True(t, up.Enabled)
	// The Schedule computes its next action asynchronously; poll for it.
	require.Eventually(t, func() bool {
		got, err := e.Service.GetSchedule(ctx, sc.ID)
		if err != nil || got.NextRunMs == 0 {
			return false
		}
		next := time.UnixMilli(got.NextRunMs)
		return next.After(time.Now()) && next.Before(time.Now().Add(31*time.Minute))
	}, 30*time.Second, 200*time.Millisecond, "next_run_ms is the Schedule's real next action")

	down, err := e.Service.UpdateSchedule(ctx, sc.ID, "bob", func(s *domain.ScheduleSpec) error { s.Enabled = false; return nil })
	require.NoError(t, err)
	require.False(t, down.Enabled)
	require.Zero(t, down.NextRunMs)

	_, err = e.Service.UpdateSchedule(ctx, sc.ID, "bob", func(s *domain.ScheduleSpec) error { s.Tasks = []domain.TaskType{"bogus"}; return nil })
	var ve *domain.ValidationError
	require.True(t, errors.As(err, &ve), "invalid update is a validation error: %v", err)
	still, err := e.Service.GetSchedule(ctx, sc.ID)
	require.NoError(t, err)
	require.Equal(t, []domain.TaskType{domain.TaskQuotaCheck}, still.Tasks, "a rejected update changes nothing")

	require.NoError(t, e.Service.DeleteSchedule(ctx, sc.ID, "test"))
	_, err = e.Service.GetSchedule(ctx, sc.ID)
	require.True(t, errors.Is(err, domain.ErrNotFound), "%v", err)
}
