package testsuite

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// pgEnv starts a PostgreSQL primary with a streaming standby and an Env
// whose "orders" target is that primary.
func pgEnv(t *testing.T) (*Env, *pgcluster.Cluster, *pgcluster.Cluster) {
	primary := pgcluster.Start(t, pgcluster.Options{})
	primary.Seed(t, "postgres", pgcluster.SeedOptions{Tables: 3, Rows: 5000})
	standby := primary.StartReplica(t)
	primary.WaitCaughtUp(t, standby)
	scratch, backups := reachableDir(t), reachableDir(t)
	e := NewEnv(t, EnvOptions{ExtraTargets: []config.TargetConfig{{
		Name: "orders", Driver: "postgres", DSN: primary.DSN("postgres"), ReplicaDSNs: []string{standby.DSN("postgres")},
		QuotaBytes: 1 << 30, BackupDir: backups, ScratchDir: scratch,
		RTOObjective: config.Duration(5 * time.Minute), RPOObjective: config.Duration(5 * time.Second),
		AllowCreateExtension: true, // consistency_check needs amcheck, off by default
	}}, CommandLog: true})
	return e, primary, standby
}

// reachableDir is a temporary directory the postgres OS user can enter
// (server binaries run as postgres when the tests run as root).
func reachableDir(t *testing.T) string {
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	return dir
}

// The weekly task list on a real PostgreSQL primary + standby through the
// real dev server: consistency check, replica lag, performance, vacuum.
func TestWeeklyJobOnPostgres(t *testing.T) {
	e, primary, _ := pgEnv(t)
	ctx := context.Background()
	before := primary.DeadTuples(t, "postgres", "public.seed_1")
	require.Greater(t, before, int64(0))

	spec := domain.NewScheduleSpec("orders")
	spec.Name = "Weekly PG " + time.Now().Format("150405.000")
	spec.Tasks = []domain.TaskType{domain.TaskConsistencyCheck, domain.TaskReplicaValidation, domain.TaskPerformanceAnalysis, domain.TaskMVCCCleanup}
	spec.Enabled = false
	sc, err := e.Service.CreateSchedule(ctx, spec, "test")
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Service.DeleteSchedule(ctx, sc.ID, "test") })

	job, err := e.Service.RunSchedule(ctx, sc.ID, true, "test")
	require.NoError(t, err)
	job = e.WaitJob(job.ID, 3*time.Minute, Terminal)
	for _, tr := range job.Tasks {
		t.Logf("%-22s %-9s %s", tr.TaskType, tr.State, tr.ResultSummary)
	}
	require.Equal(t, domain.StateSucceeded, job.State, job.ErrorMessage)
	require.Zero(t, primary.DeadTuples(t, "postgres", "public.seed_1"), "mvcc_cleanup removed the dead tuples")

	// The command log holds the job's statements, linked from the job.
	req, err := http.NewRequest(http.MethodGet, e.API.URL+api.BasePath+"/jobs/"+url.PathEscape(job.ID), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e.Token(api.ScopeRead))
	var wire domain.Job
	getJSON(t, req, &wire)
	require.Equal(t, api.BasePath+"/commands?job_id="+url.QueryEscape(job.ID), wire.CommandsURL)
	req, err = http.NewRequest(http.MethodGet, e.API.URL+wire.CommandsURL+"&limit=1000", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e.Token(api.ScopeRead))
	var page api.CommandPage
	getJSON(t, req, &page)
	byTask := map[string]int{}
	vacuumed := false
	for _, c := range page.Commands {
		require.Equal(t, job.ID, c.JobID)
		require.Equal(t, "orders", c.Target)
		require.GreaterOrEqual(t, c.EndMs, c.StartMs)
		byTask[c.Task]++
		if c.Task == string(domain.TaskMVCCCleanup) && c.Operation == "VACUUM" && c.Object == "public.seed_1" {
			vacuumed = true
		}
	}
	t.Logf("command log of %s: %d statements by task %v", job.ID, page.Count, byTask)
	require.True(t, vacuumed, "a VACUUM of public.seed_1 is in the command log")
	for _, task := range spec.Tasks {
		require.NotZero(t, byTask[string(task)], "task %s has statements in the command log", task)
	}
}

// getJSON sends req and decodes its 200 answer.
func getJSON(t *testing.T, req *http.Request, v any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.NoError(t, json.Unmarshal(body, v))
}

// A whole DR drill against PostgreSQL: restore from a fresh base backup of
// the standby into a scratch instance, measured RTO/RPO, approvals through
// the service, nothing left behind.
func TestDrillOnPostgresPasses(t *testing.T) {
	e, primary, _ := pgEnv(t)
	ctx := context.Background()
	d, err := e.Service.StartDrill(ctx, "orders", "alice")
	require.NoError(t, err)
	e.waitDrill(d.ID, time.Minute, awaiting(domain.ApprovalStart))
	_, err = e.Service.DecideDrill(ctx, d.ID, true, domain.ApprovalStart, "go", "alice")
	require.NoError(t, err)
	mid := e.waitDrill(d.ID, 3*time.Minute, func(d domain.Drill) bool { return d.Awaiting == domain.ApprovalComplete || d.FinishedAtMs > 0 })
	require.Equal(t, domain.ApprovalComplete, mid.Awaiting, "drill stopped early: %s %s", mid.State, mid.Reason)
	_, err = e.Service.DecideDrill(ctx, d.ID, true, domain.ApprovalComplete, "checked the restored instance", "bob")
	require.NoError(t, err)
	done := e.waitDrill(d.ID, 2*time.Minute, finished)
	t.Logf("drill %s: RTO %d ms, RPO %d ms, canary rows %d, restored from %s", done.State, done.RTOMs, done.RPOMs, done.CanaryRows, done.RestoredFrom)
	for _, s := range done.Steps {
		t.Logf("  step %-15s %-10s %6d ms  %s", s.Name, s.State, s.DurationMs, s.Detail)
	}
	require.Equal(t, domain.DrillPassed, done.State, done.Reason)
	require.Greater(t, done.RTOMs, int64(0))
	require.LessOrEqual(t, done.RPOMs, int64(100+1000), "RPO ≤ the canary interval plus replication lag")
	require.True(t, done.CleanedUp)

	// Nothing left: no scratch directory, no postgres process on it, no
	// canary table on production.
	scratch := e.Config.Targets[1].ScratchDir
	entries, _ := os.ReadDir(scratch)
	for _, en := range entries {
		require.NotContains(t, en.Name(), "drill", "scratch entry %s left behind", en.Name())
	}
	out, _ := exec.Command("pgrep", "-af", scratch).Output()
	require.Empty(t, strings.TrimSpace(string(out)), "no process runs on the scratch dir")
	n := pgcluster.Scalar[int64](t, primary, "postgres", "SELECT count(*) FROM pg_tables WHERE tablename = 'themis_drill_canary'")
	require.Zero(t, n, "the canary table is gone from production")
}
