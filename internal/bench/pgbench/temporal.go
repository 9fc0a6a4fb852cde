package pgbench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	sdktestsuite "go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/themis-maintenance/themis/activities"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres"
	"github.com/themis-maintenance/themis/internal/devserver"
	"github.com/themis-maintenance/themis/internal/history"
	"github.com/themis-maintenance/themis/worker"
	"github.com/themis-maintenance/themis/workflows"
)

const temporalQueue = "themis-bench-pg"

// temporalRunner runs each task as a one-task job of the MaintenanceWorkflow
// on a local dev server, with the project's activities on an in-process
// worker: workflow start, activity scheduling, heartbeats, the history-store
// writes and the result all count.
type temporalRunner struct {
	srv   *sdktestsuite.DevServer
	c     client.Client
	w     sdkworker.Worker
	store *history.Store
	drv   *timedDriver
	dir   string
}

func newTemporalRunner(ctx context.Context, dsn, bin string, logw io.Writer) (_ *temporalRunner, err error) {
	t := &temporalRunner{drv: &timedDriver{Driver: postgres.New()}}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	if t.dir, err = os.MkdirTemp("", "themis-bench-temporal-"); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if t.srv, err = devserver.Start(sctx, devserver.Options{Binary: bin}); err != nil {
		return nil, err
	}
	// A client of our own, logging warnings and errors only (the dev
	// server's client logs every activity at DEBUG).
	if t.c, err = client.Dial(client.Options{
		HostPort: t.srv.FrontendHostPort(),
		Logger:   sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	}); err != nil {
		return nil, err
	}
	if t.store, err = history.Open(filepath.Join(t.dir, "history.db")); err != nil {
		return nil, err
	}
	reg, err := driver.NewRegistry([]driver.Driver{t.drv}, []driver.Target{target(dsn)})
	if err != nil {
		return nil, err
	}
	t.w = worker.New(t.c, temporalQueue, &activities.Activities{Registry: reg, History: t.store}, worker.Options{StopTimeout: -1})
	if err := t.w.Start(); err != nil {
		t.w = nil
		return nil, err
	}
	return t, nil
}

func (t *temporalRunner) mode() string {
	return "temporal: one-task MaintenanceWorkflow job on a local Temporal dev server, activity on an in-process worker (workflow start → result)"
}

func (t *temporalRunner) run(ctx context.Context, task domain.TaskType, opts domain.TaskOptions, jobID string) (oursResult, error) {
	// Fresh pools, as in direct mode (the server was restarted anyway).
	t.drv.Close()
	t.drv.take()
	in := workflows.MaintenanceInput{
		ScheduleID: "bench-pg", ScheduleName: "bench-pg",
		Spec: domain.ScheduleSpec{
			Name: "bench-pg", Target: DBName, Frequency: domain.FrequencyDaily, Timezone: "UTC", Enabled: true,
			Tasks: []domain.TaskType{task}, TaskOptions: map[domain.TaskType]domain.TaskOptions{task: opts},
		},
		Forced: true, TriggeredBy: "bench-pg",
	}
	start := time.Now()
	run, err := t.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        fmt.Sprintf("bench-pg-%s-%d", jobID, start.UnixNano()),
		TaskQueue: temporalQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.ScheduleIDKey.ValueSet("bench-pg"), workflows.TargetKey.ValueSet(DBName),
			workflows.JobStateKey.ValueSet(string(domain.StatePending))),
	}, workflows.MaintenanceWorkflowName, in)
	if err != nil {
		return oursResult{}, fmt.Errorf("start workflow: %w", err)
	}
	var job domain.Job
	err = run.Get(ctx, &job)
	wall := time.Since(start)
	// Idle pooled sessions would otherwise outlive the run.
	t.drv.Close()
	if err != nil {
		return oursResult{}, fmt.Errorf("%s via Temporal: %w", task, err)
	}
	if len(job.Tasks) != 1 || job.Tasks[0].State != domain.StateSucceeded {
		return oursResult{}, fmt.Errorf("%s via Temporal: job %s ended %s: %s", task, job.ID, job.State, job.ErrorMessage)
	}
	tr := job.Tasks[0]
	return oursResult{wall: wall, driver: t.drv.take(), summary: tr.ResultSummary, details: tr.Details, attempt: tr.Attempt}, nil
}

func (t *temporalRunner) close() {
	if t.w != nil {
		t.w.Stop()
	}
	if t.c != nil {
		t.c.Close()
	}
	if t.srv != nil {
		_ = t.srv.Stop()
	}
	if t.store != nil {
		_ = t.store.Close()
	}
	if t.drv != nil {
		t.drv.Close()
	}
	if t.dir != "" {
		_ = os.RemoveAll(t.dir)
	}
}
