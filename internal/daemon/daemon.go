// Package daemon assembles the long-running processes of Themis Maintenance
// from the configuration: the worker (drivers, history store, activities),
// the API server (starter + gateway + /metrics), and the dev mode that runs
// both beside a Temporal dev server on a demo SQLite database.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.temporal.io/sdk/client"

	"github.com/themis-maintenance/themis/activities"
	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres"
	"github.com/themis-maintenance/themis/driver/sqlite"
	"github.com/themis-maintenance/themis/internal/audit"
	"github.com/themis-maintenance/themis/internal/auth"
	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/internal/history"
	"github.com/themis-maintenance/themis/internal/telemetry"
	"github.com/themis-maintenance/themis/starter"
	"github.com/themis-maintenance/themis/worker"
)

// Drivers returns the drivers compiled into this binary.
func Drivers() []driver.Driver {
	return []driver.Driver{sqlite.New(), postgres.New()}
}

// WorkerDeps are the dependencies of the task activities.
type WorkerDeps struct {
	// Activities run against the targets this worker serves only
	// (config.Serves: its groups' targets, or the ungrouped ones).
	Activities *activities.Activities
	History    *history.Store
	// Registry holds every target this process could resolve (the API's
	// capabilities and target health probes); Served the targets of
	// Activities.
	Registry *driver.Registry
	Served   []string
}

// Close releases the drivers' connections and the history store.
func (d *WorkerDeps) Close() error {
	if d.Registry != nil {
		d.Registry.Close()
	}
	if d.History == nil {
		return nil
	}
	return d.History.Close()
}

// NewWorkerDeps resolves targets, opens the history store and builds the
// activities. drivers overrides Drivers() when not nil (tests slow a driver).
//
// The targets this worker serves (worker.target_groups, config.Serves) must
// resolve; another target whose DSN this process cannot read (a zone's
// secret mounted only on that zone's workers) is left out with a log line.
// The activities see the served targets only: a task for any other target
// fails as "not configured on this worker" without touching its database.
func NewWorkerDeps(cfg *config.Config, metrics *telemetry.Metrics, drivers []driver.Driver) (*WorkerDeps, error) {
	var all, served []driver.Target
	var servedNames []string
	for _, tc := range cfg.Targets {
		t, err := tc.Resolve()
		switch {
		case err != nil && cfg.Serves(tc):
			return nil, err
		case err != nil:
			slog.Info("target not opened by this process: it is outside this worker's target groups and its DSN is not readable here",
				"target", tc.Name, "group", tc.Group, "reason", err.Error())
			continue
		}
		all = append(all, t)
		if cfg.Serves(tc) {
			served = append(served, t)
			servedNames = append(servedNames, tc.Name)
		}
	}
	if drivers == nil {
		drivers = Drivers()
	}
	reg, err := driver.NewRegistry(drivers, all)
	if err != nil {
		return nil, err
	}
	// Same drivers (and connection pools), fewer targets.
	servedReg, err := driver.NewRegistry(drivers, served)
	if err != nil {
		reg.Close()
		return nil, err
	}
	hist, err := OpenHistory(context.Background(), cfg)
	if err != nil {
		reg.Close()
		return nil, err
	}
	// Per-target gauges (runway, backup age, lag, drill RTO/RPO) read from
	// the history store at scrape time, cached 30 s.
	if err := metrics.ObserveTargets(telemetry.HistoryFigures(hist, TargetObjectives(cfg), 30*time.Second)); err != nil {
		reg.Close()
		hist.Close()
		return nil, err
	}
	// Drill decisions sent outside the API are audited by the worker into
	// the same log (api.audit_sink). Without one the drill report still
	// keeps them.
	sink, err := openAudit(cfg, hist)
	if err != nil {
		slog.Warn("audit log not available to the worker; drill decisions sent outside the API are in the drill report only", "error", err)
		sink = nil
	}
	return &WorkerDeps{
		Activities: &activities.Activities{Registry: servedReg, History: hist, Metrics: metrics, Audit: sink},
		History:    hist,
		Registry:   reg,
		Served:     servedNames,
	}, nil
}

// TargetObjectives are the configured quotas and recovery objectives the
// target gauges export.
func TargetObjectives(cfg *config.Config) []telemetry.TargetObjectives {
	out := make([]telemetry.TargetObjectives, 0, len(cfg.Targets))
	for _, t := range cfg.Targets {
		out = append(out, telemetry.TargetObjectives{Target: t.Name, QuotaBytes: t.QuotaBytes,
			RTOObjective: time.Duration(t.RTOObjective), RPOObjective: time.Duration(t.RPOObjective)})
	}
	return out
}

// OpenHistory opens the history store the config names: the embedded SQLite
// file (one host), or the PostgreSQL database every worker and API replica
// shares. Migrations are applied on open.
func OpenHistory(ctx context.Context, cfg *config.Config) (*history.Store, error) {
	if cfg.History.Driver != config.HistoryPostgres {
		hist, err := history.Open(cfg.History.Path)
		if err != nil {
			return nil, fmt.Errorf("open history store: %w", err)
		}
		return hist, nil
	}
	dsn, err := cfg.HistoryDSN()
	if err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	hist, err := history.OpenPostgres(octx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open the PostgreSQL history store: %w", err)
	}
	return hist, nil
}

// RunWorker polls this worker's task queues until ctx is done, then stops
// gracefully: the base queue for an ungrouped worker; for a grouped worker
// (worker.target_groups) each group's queue, plus the base queue for
// workflow tasks only (claims, and the workflow code of ungrouped targets,
// whose activities stay with the ungrouped workers). Each served queue
// comes with its host queue (worker.host_id: scratch-instance steps stay
// on the host that created the instance). It also applies the history
// store's retention (safe on every worker: pruning is idempotent).
func RunWorker(ctx context.Context, c client.Client, cfg *config.Config, deps *WorkerDeps) error {
	ws := NewWorkers(c, cfg, deps.Activities)
	for i, w := range ws {
		if err := w.Start(); err != nil {
			stopWorkers(ws[:i])
			return fmt.Errorf("start worker on task queue %s: %w", w.Queue, err)
		}
	}
	slog.Info("worker polling", "task_queues", WorkerQueues(cfg), "target_groups", cfg.Worker.TargetGroups, "targets", deps.Served)
	if len(deps.Served) == 0 && len(cfg.Targets) > 0 {
		slog.Warn("this ungrouped worker serves no target (every target has a group): it runs claims only; give it worker.target_groups to run maintenance")
	}
	if deps.History != nil {
		go deps.History.RunRetention(ctx, time.Duration(cfg.History.SampleRetention), time.Duration(cfg.History.JobRetention), time.Hour)
	}
	<-ctx.Done()
	stopWorkers(ws)
	return nil
}

// QueueWorker is one SDK worker (with its host queue) of a worker process.
type QueueWorker struct {
	*worker.Worker
	Queue string
}

// NewWorkers creates the workers of RunWorker, not started.
func NewWorkers(c client.Client, cfg *config.Config, acts *activities.Activities) []QueueWorker {
	opts := WorkerOptions(cfg)
	var out []QueueWorker
	for _, q := range cfg.WorkerQueues() {
		out = append(out, QueueWorker{Worker: worker.New(c, q, acts, opts), Queue: q})
	}
	if cfg.Grouped() {
		wo := opts
		wo.WorkflowsOnly = true
		out = append(out, QueueWorker{Worker: worker.New(c, cfg.Temporal.TaskQueue, nil, wo), Queue: cfg.Temporal.TaskQueue})
	}
	return out
}

// WorkerQueues names the task queues a worker process polls, as its
// /healthz lists them: the served queues, then "<base> (workflows only)"
// for a grouped worker.
func WorkerQueues(cfg *config.Config) []string {
	out := cfg.WorkerQueues()
	if cfg.Grouped() {
		out = append(out, cfg.Temporal.TaskQueue+" (workflows only)")
	}
	return out
}

// stopWorkers stops ws at once (each lets its running tasks finish up to
// worker.stop_timeout).
func stopWorkers(ws []QueueWorker) {
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.Stop()
		}()
	}
	wg.Wait()
}

// WorkerOptions are the worker options of the config (worker.host_id and
// the tuning of worker.*).
func WorkerOptions(cfg *config.Config) worker.Options {
	t := cfg.Worker.WorkerTuning
	return worker.Options{
		HostID: cfg.Worker.HostID, StopTimeout: time.Duration(t.StopTimeout),
		MaxConcurrentActivities: t.MaxConcurrentActivities, MaxConcurrentWorkflowTasks: t.MaxConcurrentWorkflowTasks,
		ActivityPollers: t.ActivityPollers, WorkflowPollers: t.WorkflowPollers,
	}
}

// NewService builds the starter service and prepares Temporal for it: the
// custom search attributes and, when a default target exists, the four
// default schedules (created disabled, never duplicated). reg and hist,
// when not nil, feed /task-types, the history store's and the targets'
// health probes (BuiltinProbes; run them with RunHealthProbes).
func NewService(ctx context.Context, c client.Client, cfg *config.Config, metrics *telemetry.Metrics, logger *slog.Logger,
	reg *driver.Registry, hist driver.History) (*starter.Service, error) {
	if err := starter.EnsureSearchAttributes(ctx, c, cfg.Temporal.Namespace); err != nil {
		return nil, err
	}
	// Capabilities are what the compiled drivers (and implementations
	// added with driver.Implement) can run, whether or not this process
	// could open the targets.
	caps := driver.Capabilities(Drivers())
	if reg != nil {
		caps = reg.Capabilities()
	}
	probes, err := BuiltinProbes(c, cfg, reg, hist)
	if err != nil {
		return nil, err
	}

	// Retained jobs and drill reports come from the history store, when
	// this process has one (a nil *Store must not become a non-nil
	// interface).
	var records starter.Records
	if hs, ok := hist.(*history.Store); ok && hs != nil {
		records = hs
	}
	svc := starter.New(c, starter.Options{
		Namespace: cfg.Temporal.Namespace, TaskQueue: cfg.Temporal.TaskQueue, Address: cfg.Temporal.Address,
		UIURL: cfg.Temporal.UIURL, Targets: cfg.TargetInfos(), DefaultTarget: cfg.DefaultTarget,
		Logger: logger, Metrics: metrics,
		DrillStartApprovalTimeout:    time.Duration(cfg.Drill.StartApprovalTimeout),
		DrillCompleteApprovalTimeout: time.Duration(cfg.Drill.CompleteApprovalTimeout),
		Capabilities:                 caps, HealthProbes: probes, Records: records,
	})
	if err := ObserveHealth(metrics, svc); err != nil {
		return nil, err
	}
	if cfg.DefaultTarget != "" {
		if err := svc.EnsureDefaultSchedules(ctx, cfg.DefaultTarget); err != nil {
			return nil, err
		}
	}
	// Schedules whose target joined, left or changed group start their next
	// job on the target's queue (in the background: one describe per
	// schedule).
	go reconcileScheduleQueues(ctx, svc, logger)
	return svc, nil
}

func reconcileScheduleQueues(ctx context.Context, svc *starter.Service, logger *slog.Logger) {
	if logger == nil {
		logger = slog.Default()
	}
	res, err := svc.ReconcileScheduleQueues(ctx)
	if err != nil {
		if ctx.Err() == nil {
			logger.Warn("schedules not checked against their targets' task queues; the next start checks again", "error", err)
		}
		return
	}
	if len(res.Moved) > 0 {
		logger.Info("schedules moved to their target's task queue (target group changed)", "schedules", res.Moved)
	}
	for id, reason := range res.Failed {
		logger.Warn("schedule not moved to its target's task queue; the next start tries again", "schedule_id", id, "error", reason)
	}
}

// ObserveHealth exports maintenance_health_status from svc's cached health
// report (the probes run by RunHealthProbes; a scrape never waits for one).
func ObserveHealth(metrics *telemetry.Metrics, svc *starter.Service) error {
	return metrics.ObserveHealth(func(ctx context.Context) []telemetry.ModuleHealth {
		r, _ := svc.Health(ctx)
		out := make([]telemetry.ModuleHealth, 0, len(r.Modules))
		for _, m := range r.Modules {
			out = append(out, telemetry.ModuleHealth{Module: m.Name, Status: m.Status})
		}
		return out
	})
}

// HandlerOptions tune the gateway.
type HandlerOptions struct {
	// AllowAnonymous lets requests through without a token when the config
	// has none (tests only; dev mode creates a token instead).
	AllowAnonymous bool
	// History is the store the audit log goes to when api.audit_sink is
	// "history"; required then.
	History *history.Store
}

// openAudit opens the audit sink the config names: a JSON-lines file per
// API process, or the shared history store (one log for every replica).
func openAudit(cfg *config.Config, hist *history.Store) (audit.Sink, error) {
	if cfg.API.AuditSink != "history" {
		return audit.Open(cfg.API.AuditLog)
	}
	if hist == nil {
		return nil, fmt.Errorf("api.audit_sink is history, but this process has no history store")
	}
	return audit.OpenStore(hist)
}

// Handler is the API gateway (bearer-token RBAC, audit log, drills, health)
// plus /metrics. The audit log is opened at cfg.API.AuditLog, and its
// health probe "audit" is added to svc's probes.
func Handler(svc *starter.Service, cfg *config.Config, tel *telemetry.Provider, logger *slog.Logger, opts HandlerOptions) (http.Handler, error) {
	authn, err := auth.New(cfg.Auth, auth.Options{AllowAnonymous: opts.AllowAnonymous, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("api tokens: %w", err)
	}
	alog, err := openAudit(cfg, opts.History)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if probe := auditProbe(alog); probe != nil {
		if err := svc.RegisterHealthProbe("audit", probe); err != nil {
			return nil, fmt.Errorf("audit health probe: %w", err)
		}
	}
	mux := http.NewServeMux()
	if tel != nil {
		mux.Handle("GET /metrics", tel.Handler())
	}
	mux.Handle("/", api.New(svc, api.Options{
		Drills: svc, Commands: svc, Info: svc, Audit: alog, Authenticator: authn.Middleware(),
		MaxBodyBytes: cfg.API.MaxBodyBytes, Logger: logger, Version: starter.Version,
		Denials: api.DenialLimit{PerMinute: cfg.API.DenialsPerMinute, Burst: cfg.API.DenialBurst},
	}))
	// One server span per request; the Temporal client's tracing
	// interceptor continues the trace into the workflow and its activities.
	return otelhttp.NewHandler(mux, "themis-api", otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
		return r.Method + " " + r.URL.Path
	})), nil
}
