package testsuite

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
)

// A dry run of a schedule on the SQLite demo target through the API: the
// same workflow runs, each task its driver plans reports its statements
// and executes none (the database file is unchanged, and the command log
// holds nothing of the job), a read-only task and the drill are skipped
// saying why, and force with dry_run is 400.
func TestDryRunThroughTheAPI(t *testing.T) {
	e := NewEnv(t, EnvOptions{CommandLog: true})
	sc := e.CreateSchedule("Dry", domain.TaskMetricsCollection, domain.TaskStatisticsUpdate, domain.TaskStorageCompaction, domain.TaskDisasterRecoveryDrill)
	db := e.Config.Targets[0].DSN
	before, err := os.ReadFile(db)
	require.NoError(t, err)

	var p api.Problem
	require.Equal(t, http.StatusBadRequest, e.callProblem("POST", "/schedules/"+sc.ID+"/run", e.Token(api.ScopeAdmin),
		map[string]any{"force": true, "dry_run": true}, &p))
	require.Equal(t, "dry_run", p.Field)

	var job domain.Job
	// The drill in the schedule makes running it on demand admin-only.
	require.Equal(t, http.StatusAccepted, e.call("POST", "/schedules/"+sc.ID+"/run", e.Token(api.ScopeAdmin),
		map[string]any{"dry_run": true, "wait": "60s"}, &job))
	require.True(t, job.DryRun)
	job = e.WaitJob(job.ID, time.Minute, Terminal)
	require.Equal(t, domain.StateSucceeded, job.State, job.ErrorMessage)
	require.True(t, job.DryRun)

	metrics, stats, compact, drill := job.Tasks[0], job.Tasks[1], job.Tasks[2], job.Tasks[3]
	require.Equal(t, domain.StateSkipped, metrics.State)
	require.Equal(t, "skipped: dry run: metrics_collection only reads the target, so there is nothing to plan", metrics.ResultSummary)
	require.Equal(t, domain.StateSkipped, drill.State)
	require.Contains(t, drill.ResultSummary, "a DR drill is never simulated")
	for _, tr := range []domain.TaskRun{stats, compact} {
		require.Equal(t, domain.StateSucceeded, tr.State, tr.ErrorMessage)
		require.Contains(t, tr.ResultSummary, "dry run: would", tr.TaskType)
		require.Equal(t, true, tr.Details["dry_run"], tr.TaskType)
		require.Contains(t, tr.Details, "plan", tr.TaskType)
	}
	plan, ok := stats.Details["plan"].([]any)
	require.True(t, ok, "plan of statistics_update: %#v", stats.Details["plan"])
	require.NotEmpty(t, plan, "the demo tables would be analysed")
	first := plan[0].(map[string]any)
	require.Contains(t, first["statement"], "ANALYZE")
	require.NotEmpty(t, first["object"])
	require.NotEmpty(t, first["reason"])

	after, err := os.ReadFile(db)
	require.NoError(t, err)
	require.Equal(t, before, after, "a dry run leaves the database file as it was")
	var cmds struct {
		Commands []map[string]any `json:"commands"`
	}
	require.Equal(t, http.StatusOK, e.call("GET", "/commands?job_id="+job.ID, e.Token(api.ScopeRead), nil, &cmds))
	require.Empty(t, cmds.Commands, "a dry run sends no maintenance statement to the command log")

	// The real run then executes what was planned: its command log holds
	// the planned ANALYZE of the first object.
	real, err := e.Service.RunSchedule(context.Background(), sc.ID, true, "test")
	for err != nil { // the dry run's workflow may not have closed yet
		var ae *domain.ActiveJobError
		require.ErrorAs(t, err, &ae)
		time.Sleep(200 * time.Millisecond)
		real, err = e.Service.RunSchedule(context.Background(), sc.ID, true, "test")
	}
	// Once statistics_update has run, the job is cancelled: its drill
	// would wait for approvals.
	real = e.WaitJob(real.ID, time.Minute, func(j domain.Job) bool { return j.Tasks[1].State.Terminal() })
	_, _ = e.Service.CancelJob(context.Background(), real.ID, "test")
	real = e.WaitJob(real.ID, time.Minute, Terminal)
	require.Equal(t, domain.StateSucceeded, real.Tasks[1].State, real.Tasks[1].ErrorMessage)
	require.Equal(t, http.StatusOK, e.call("GET", "/commands?job_id="+real.ID+"&object="+first["object"].(string), e.Token(api.ScopeRead), nil, &cmds))
	var statements []string
	for _, c := range cmds.Commands {
		statements = append(statements, c["statement"].(string))
	}
	require.Contains(t, statements, first["statement"], "the real run sent the planned statement")
	e.RecordHistory(job.ID, "maintenance_dry_run")
}
