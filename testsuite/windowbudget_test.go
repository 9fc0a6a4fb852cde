package testsuite

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// A budget that runs out mid-run on a real PostgreSQL primary, through the
// dev server: a schedule with time_limit_minutes=1 vacuums a few of its 20
// tables, then a manual pause of the target holds its pacer until the
// limit has passed; the job succeeds with the rest recorded as left. The
// next run of the schedule starts with exactly those (carried through the
// shared history store) and vacuums exactly them.
func TestWindowBudgetLeavesTheRestForTheNextRun(t *testing.T) {
	primary := pgcluster.Start(t, pgcluster.Options{})
	seed := primary.Seed(t, "postgres", pgcluster.SeedOptions{Prefix: "win", Tables: 20, Rows: 2000})
	e := NewEnv(t, EnvOptions{ExtraTargets: []config.TargetConfig{{
		Name: "orders", Driver: "postgres", DSN: primary.DSN("postgres"), QuotaBytes: 1 << 30,
		BackupDir: reachableDir(t), ScratchDir: reachableDir(t),
	}}, CommandLog: true})
	ctx := context.Background()
	require.Eventually(t, func() bool { // dead tuples reach the statistics
		return primary.DeadTuples(t, "postgres", seed.Tables[len(seed.Tables)-1]) > 0
	}, 10*time.Second, 100*time.Millisecond)

	spec := domain.NewScheduleSpec("orders")
	spec.Name = "Budget " + time.Now().Format("150405.000")
	spec.Tasks = []domain.TaskType{domain.TaskMVCCCleanup}
	spec.Enabled, spec.EnforceWindow, spec.TimeLimitMinutes = false, false, 1
	spec.TaskOptions = map[domain.TaskType]domain.TaskOptions{domain.TaskMVCCCleanup: {
		"parallelism": 1, "dead_tuple_threshold": 1, "intensity": 0.02,
	}}
	sc, err := e.Service.CreateSchedule(ctx, spec, "test")
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Service.DeleteSchedule(ctx, sc.ID, "test") })
	admin := e.Token(api.ScopeAdmin)
	t.Cleanup(func() { e.call("DELETE", "/targets/orders/throttle", admin, nil, nil) })

	first, err := e.Service.RunSchedule(ctx, sc.ID, true, "test")
	require.NoError(t, err)
	e.WaitJob(first.ID, time.Minute, func(j domain.Job) bool { return j.Tasks[0].ProgressPct >= 15 || j.State.Terminal() })
	require.Equal(t, http.StatusOK, e.call("POST", "/targets/orders/throttle", admin, map[string]any{"for": "10m", "reason": "test: hold the rest"}, nil))
	first = e.WaitJob(first.ID, 3*time.Minute, Terminal)
	task := first.Tasks[0]
	require.Equal(t, domain.StateSucceeded, first.State, first.ErrorMessage)
	require.Equal(t, "time_limit", task.Details["stopped_by"], task.ResultSummary)
	left := stringList(task.Details["units_left"])
	done := vacuumed(task.Details)
	t.Logf("first run: %s; vacuumed %d, left %d", task.ResultSummary, len(done), len(left))
	require.NotEmpty(t, left, "the time limit left tables")
	require.NotEmpty(t, done, "tables were vacuumed before the pause")
	all := slices.Sorted(slices.Values(append(slices.Clone(done), left...)))
	require.Equal(t, slices.Sorted(slices.Values(seed.Tables)), all, "every table was either vacuumed or left, none twice")

	require.Equal(t, http.StatusOK, e.call("DELETE", "/targets/orders/throttle", admin, nil, nil))
	var second domain.Job
	require.Eventually(t, func() bool { // once the first job's workflow has closed
		second, err = e.Service.RunSchedule(ctx, sc.ID, true, "test")
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "second run: %v", err)
	second = e.WaitJob(second.ID, 3*time.Minute, Terminal)
	task = second.Tasks[0]
	require.Equal(t, domain.StateSucceeded, second.State, second.ErrorMessage)
	t.Logf("second run: %s", task.ResultSummary)
	require.Equal(t, left, stringList(task.Details["units_carried"]), "the next run starts with what was left, in order")
	require.Equal(t, slices.Sorted(slices.Values(left)), slices.Sorted(slices.Values(vacuumed(task.Details))), "the next run vacuums exactly the rest")
	require.Empty(t, task.Details["units_left"])
	e.RecordHistory(first.ID, "maintenance_time_limit")
}

// stringList reads a JSON array of strings from a task's details.
func stringList(v any) []string {
	var out []string
	items, _ := v.([]any)
	for _, it := range items {
		if s, ok := it.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// vacuumed lists the tables an mvcc_cleanup's details say it vacuumed.
func vacuumed(details map[string]any) []string {
	var out []string
	tables, _ := details["tables"].([]any)
	for _, tb := range tables {
		m, _ := tb.(map[string]any)
		if name, _ := m["table"].(string); name != "" && m["skipped"] == nil {
			out = append(out, name)
		}
	}
	return out
}
