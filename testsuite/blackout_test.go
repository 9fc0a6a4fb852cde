package testsuite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver/sqlite"
	"github.com/themis-maintenance/themis/internal/config"
)

// A target in a release freeze on the real dev server: the Schedule's own
// run starts and is skipped at once, saying which blackout; next_run_ms
// skips the frozen days; GET /targets shows the blackout; a forced run
// (admin only) goes through.
func TestBlackoutSkipsScheduledRuns(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "frozen.db")
	require.NoError(t, sqlite.SeedDemo(ctx, db))
	now := time.Now().UTC()
	end := now.Truncate(time.Hour).Add(72 * time.Hour)
	e := NewEnv(t, EnvOptions{ExtraTargets: []config.TargetConfig{{
		Name: "frozen", Driver: "sqlite", DSN: db,
		Blackouts: []config.BlackoutConfig{{Name: "release freeze", From: now.Add(-time.Hour), To: end}},
	}}})

	spec := domain.NewScheduleSpec("frozen")
	spec.Name, spec.Tasks, spec.EnforceWindow = "Frozen", []domain.TaskType{domain.TaskQuotaCheck}, false
	spec.Frequency, spec.CronExpression = domain.FrequencyCustom, "0 * * * *"
	sc, err := e.Service.CreateSchedule(ctx, spec, "test")
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Service.DeleteSchedule(ctx, sc.ID, "test") })
	require.True(t, sc.Enabled)
	got, err := e.Service.GetSchedule(ctx, sc.ID)
	require.NoError(t, err)
	require.Equal(t, end.UnixMilli(), got.NextRunMs, "next_run_ms is the first hourly run after the freeze")

	targets := e.Service.Targets()
	var frozen bool
	for _, ti := range targets {
		if ti.Name == "frozen" {
			frozen = ti.Blackout != nil && ti.Blackout.Name == "release freeze" && ti.Blackout.EndMs == end.UnixMilli()
		}
	}
	require.True(t, frozen, "GET /targets shows the blackout in force: %+v", targets)

	// The Schedule's own run: skipped by the blackout.
	require.NoError(t, e.Client.ScheduleClient().GetHandle(ctx, sc.ID).Trigger(ctx, client.ScheduleTriggerOptions{}))
	var jobID string
	require.Eventually(t, func() bool {
		got, err := e.Service.GetSchedule(ctx, sc.ID)
		jobID = got.LastJobID
		return err == nil && jobID != ""
	}, 30*time.Second, 200*time.Millisecond)
	job := e.WaitJob(jobID, time.Minute, Terminal)
	require.Equal(t, domain.StateSkipped, job.State)
	require.Contains(t, job.ResultSummary, `blackout "release freeze"`)
	require.Equal(t, domain.StateSkipped, job.Tasks[0].State)
	e.RecordHistory(jobID, "maintenance_blackout_skipped")

	// A forced run goes through it.
	require.Eventually(t, func() bool { // once the skipped job's workflow has closed
		job, err = e.Service.RunSchedule(ctx, sc.ID, true, "admin")
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "forced run: %v", err)
	job = e.WaitJob(job.ID, time.Minute, Terminal)
	require.Equal(t, domain.StateSucceeded, job.State, job.ErrorMessage)
}
