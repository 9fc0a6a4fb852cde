package testsuite

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/daemon"
	"github.com/themis-maintenance/themis/internal/telemetry"
	"github.com/themis-maintenance/themis/internal/temporalclient"
	"github.com/themis-maintenance/themis/worker"
	"github.com/themis-maintenance/themis/workflows"
)

// Real jobs on the dev server, run by a worker wired as in production
// (telemetry.Setup, the Temporal client's OpenTelemetry metrics handler,
// the activities' duration histograms, the history gauges): one job of
// several checks and a backup, and one whose index rebuild is interrupted
// by a worker stop and retried on a restarted worker. The scrape then has
// every metric of docs/METRICS.md with the right counts: each outcome once,
// however many attempts.
func TestMetricsScrapeAfterRealRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the Temporal dev server")
	}
	e := NewEnv(t, EnvOptions{StepDelay: 500 * time.Millisecond, HeartbeatTimeout: 3 * time.Second})
	e.StopWorker() // only the worker below polls the queue

	tel, err := telemetry.Setup("themis-maintenance")
	require.NoError(t, err)
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	copts, err := temporalclient.Options(e.Config.Temporal, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	c, err := client.Dial(copts)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	acts := *e.Deps.Activities
	acts.Metrics = tel.Metrics
	require.NoError(t, tel.Metrics.ObserveTargets(telemetry.HistoryFigures(e.Deps.History, daemon.TargetObjectives(e.Config), 0)))
	require.NoError(t, daemon.ObserveHealth(tel.Metrics, e.Service))
	e.Service.ProbeHealth(context.Background())

	host, _ := os.Hostname()
	start := func() *worker.Worker {
		w := worker.New(c, e.TaskQueue, &acts, worker.Options{StopTimeout: -1, HostID: host})
		require.NoError(t, w.Start())
		return w
	}
	w := start()
	t.Cleanup(func() { w.Stop() })

	checks := e.CreateSchedule("MetricsChecks", domain.TaskQuotaCheck, domain.TaskMetricsCollection, domain.TaskBackupVerification)
	job, err := e.Service.RunSchedule(context.Background(), checks.ID, true, "test")
	require.NoError(t, err)
	job = e.WaitJob(job.ID, 2*time.Minute, Terminal)
	require.Equal(t, domain.StateSucceeded, job.State, "error: %s", job.ErrorMessage)

	rebuild := e.CreateSchedule("MetricsRetry", domain.TaskIndexRebuild)
	job2, err := e.Service.RunSchedule(context.Background(), rebuild.ID, true, "test")
	require.NoError(t, err)
	e.WaitJob(job2.ID, time.Minute, func(j domain.Job) bool { return j.Tasks[0].ProgressPct >= 30 })
	w.Stop() // the running attempt is cancelled: its heartbeat times out and it is retried
	w = start()
	job2 = e.WaitJob(job2.ID, 2*time.Minute, Terminal)
	require.Equal(t, domain.StateSucceeded, job2.State, "error: %s", job2.ErrorMessage)
	require.GreaterOrEqual(t, job2.Tasks[0].Attempt, 2, "the index rebuild was retried")

	scrape := func() string {
		rec := httptest.NewRecorder()
		tel.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		require.Equal(t, 200, rec.Code)
		return rec.Body.String()
	}
	wf := `workflow_type="` + workflows.MaintenanceWorkflowName + `"`
	var body string
	require.Eventually(t, func() bool {
		body = scrape()
		return promValue(t, body, "temporal_workflow_completed_total", wf) >= 2
	}, 20*time.Second, 200*time.Millisecond, "no temporal_workflow_completed_total for the two jobs")
	t.Logf("scrape (maintenance_*):\n%s", grepLines(body, "maintenance_", "_bucket"))

	sched1, sched2 := `schedule="`+checks.ID+`"`, `schedule="`+rebuild.ID+`"`
	demo := `target="demo"`
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"temporal_workflow_completed_total", []string{wf, `task_queue="` + e.TaskQueue + `"`}, 2},
		{"maintenance_jobs_triggered_total", []string{sched1, demo}, 1},
		{"maintenance_jobs_triggered_total", []string{sched2, demo}, 1},
		{"maintenance_jobs_succeeded_total", []string{sched1, demo}, 1},
		{"maintenance_jobs_succeeded_total", []string{sched2, demo}, 1},
		{"maintenance_jobs_failed_total", nil, 0},
		{"maintenance_tasks_succeeded_total", []string{sched1, `task_type="quota_check"`}, 1},
		{"maintenance_tasks_succeeded_total", []string{sched1, `task_type="backup_verification"`}, 1},
		// Two attempts, one outcome.
		{"maintenance_tasks_succeeded_total", []string{sched2, `task_type="index_rebuild"`}, 1},
		{"themis_jobs_total", []string{`state="succeeded"`}, 2},
		{"maintenance_job_duration_ms_count", []string{demo}, 2},
		{"maintenance_job_duration_ms_count", []string{sched2, `state="succeeded"`}, 1},
		{"maintenance_task_duration_ms_count", []string{sched1}, 3},
		{"maintenance_task_duration_ms_count", []string{`task_type="index_rebuild"`}, 1},
		{"maintenance_quota_bytes", []string{demo}, 1 << 30},
		{"maintenance_drill_rto_objective_seconds", []string{demo}, 60},
		{"maintenance_drill_rpo_objective_seconds", []string{demo}, 60},
		{"maintenance_health_status", []string{`module="history"`}, 1},
	} {
		require.Equal(t, c.want, promValue(t, body, c.name, c.labels...), "%s%v", c.name, c.labels)
	}
	// The index rebuild ran twice: the SDK saw two executions of it.
	require.GreaterOrEqual(t, promValue(t, body, "temporal_activity_execution_latency_seconds_count", `activity_type="index_rebuild"`), 1.0)
	// Two worker starts (shared queue and host queue each).
	require.GreaterOrEqual(t, promValue(t, body, "temporal_worker_start_total"), 2.0)
	require.Greater(t, promValue(t, body, "maintenance_database_size_bytes", demo), 0.0)
	age := promValue(t, body, "maintenance_backup_age_seconds", demo)
	require.True(t, strings.Contains(body, "maintenance_backup_age_seconds{") && age >= 0 && age < 300, "backup age %v", age)
	require.Contains(t, body, `maintenance_task_duration_ms_bucket{`)
	require.Contains(t, body, `le="2.16e+07"`)
	require.NotContains(t, body, "_ms_milliseconds")
	require.NotContains(t, body, "_total_total")
}

// grepLines returns body's lines containing want and not skip.
func grepLines(body, want, skip string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, want) && !strings.Contains(l, skip) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
