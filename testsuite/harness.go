package testsuite

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdktestsuite "go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres"
	"github.com/themis-maintenance/themis/driver/sqlite"
	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/internal/daemon"
	"github.com/themis-maintenance/themis/internal/devserver"
	"github.com/themis-maintenance/themis/internal/temporalclient"
	"github.com/themis-maintenance/themis/starter"
	"github.com/themis-maintenance/themis/worker"
)

var (
	serverOnce sync.Once
	server     *sdktestsuite.DevServer
	serverErr  error
)

// Temporal returns the package's shared dev server, starting it on first use
// from ./bin/temporal (or THEMIS_TEMPORAL_BIN). Call StopTemporal from
// TestMain after the tests. Under -short (make unit) it skips t: the dev
// server is an integration dependency.
func Temporal(t testing.TB) *sdktestsuite.DevServer {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs the Temporal dev server")
	}
	serverOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		server, serverErr = devserver.Start(ctx, devserver.Options{})
	})
	if serverErr != nil {
		t.Fatalf("temporal dev server: %v", serverErr)
	}
	return server
}

// StopTemporal stops the shared dev server if it was started.
func StopTemporal() {
	if server != nil {
		_ = server.Stop()
	}
}

// Env is one test's slice of the system: a fresh SQLite demo target, a
// history store, a worker on a task queue of its own, and the starter
// service and API handler on top.
type Env struct {
	T         testing.TB
	Client    client.Client
	Config    *config.Config
	Service   *starter.Service
	Deps      *daemon.WorkerDeps
	Slow      *sqlite.Driver
	API       *httptest.Server
	TaskQueue string

	mu     sync.Mutex
	worker sdkworker.Worker
	// tokens are bearer tokens by scope for requests to API.
	tokens map[string]string
}

// Token returns a bearer token with scope for requests to e.API.
func (e *Env) Token(scope string) string { return e.tokens[scope] }

// EnvOptions tune an Env.
type EnvOptions struct {
	// StepDelay slows the SQLite driver's per-relation steps.
	StepDelay time.Duration
	// HeartbeatTimeout of manual runs (short, so a stopped worker's task is
	// retried quickly).
	HeartbeatTimeout time.Duration
	// ApprovalTimeout of drills; zero takes the defaults (24 h / 4 h).
	ApprovalTimeout time.Duration
	// ExtraTargets are added beside the SQLite "demo" target (PostgreSQL
	// clusters started by the test).
	ExtraTargets []config.TargetConfig
	// DrillCleanupDelay slows the SQLite driver's drill clean-up, so a
	// test sees a drill between its settled outcome and its end.
	DrillCleanupDelay time.Duration
	// CommandLog serves GET /commands (and retained jobs) from the worker's
	// history store.
	CommandLog bool
}

// slowCleanupDriver is the SQLite driver with a pause before each drill
// clean-up (honouring cancellation).
type slowCleanupDriver struct {
	*sqlite.Driver
	delay time.Duration
}

func (d slowCleanupDriver) DrillCleanup(ctx context.Context, t driver.Target, drillID string) (driver.DrillCleanupReport, error) {
	timer := time.NewTimer(d.delay)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return driver.DrillCleanupReport{Removed: []string{}}, ctx.Err()
	case <-timer.C:
	}
	return d.Driver.DrillCleanup(ctx, t, drillID)
}

// NewEnv builds an Env and starts its worker.
func NewEnv(t testing.TB, opts EnvOptions) *Env {
	t.Helper()
	srv := Temporal(t)
	dir := t.TempDir()
	ctx := context.Background()

	db := filepath.Join(dir, "demo.db")
	if err := sqlite.SeedDemo(ctx, db); err != nil {
		t.Fatalf("seed demo db: %v", err)
	}
	queue := fmt.Sprintf("themis-test-%s-%d", sanitize(t.Name()), time.Now().UnixNano())
	cfg := &config.Config{
		DataDir:  dir,
		Temporal: config.TemporalConfig{Address: srv.FrontendHostPort(), Namespace: "default", TaskQueue: queue},
		Targets: []config.TargetConfig{{
			Name: "demo", Driver: "sqlite", DSN: db, QuotaBytes: 1 << 30,
			// The SQLite drill's RPO is the age of the backup it restores
			// at the failure instant: seconds on a quiet machine, more on
			// a loaded CI runner; tests check it is measured, not fast.
			RTOObjective: config.Duration(time.Minute), RPOObjective: config.Duration(time.Minute),
		}},
		DefaultTarget: "demo",
	}
	cfg.Targets = append(cfg.Targets, opts.ExtraTargets...)
	tokens, tokenCfgs := apitest.ScopeTokens(t)
	cfg.Auth.Tokens = append(cfg.Auth.Tokens, tokenCfgs...)
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	// Dialled as in production: with the OpenTelemetry interceptor.
	copts, err := temporalclient.Options(cfg.Temporal, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	copts.Logger = logAdapter(t)
	c, err := client.Dial(copts)
	if err != nil {
		t.Fatalf("dial temporal: %v", err)
	}
	t.Cleanup(c.Close)

	slow := sqlite.NewWithOptions(sqlite.Options{StepDelay: opts.StepDelay, HeartbeatInterval: 200 * time.Millisecond})
	pg := postgres.New()
	t.Cleanup(pg.Close)
	var lite driver.Driver = slow
	if opts.DrillCleanupDelay > 0 {
		lite = slowCleanupDriver{Driver: slow, delay: opts.DrillCleanupDelay}
	}
	deps, err := daemon.NewWorkerDeps(cfg, nil, []driver.Driver{lite, pg})
	if err != nil {
		t.Fatalf("worker deps: %v", err)
	}
	deps.Activities.HeartbeatInterval = 200 * time.Millisecond
	t.Cleanup(func() { _ = deps.Close() })

	if err := starter.EnsureSearchAttributes(ctx, c, "default"); err != nil {
		t.Fatalf("search attributes: %v", err)
	}
	// As the daemon builds it (daemon.NewService): the capabilities of the
	// worker's drivers and the built-in health probes. The probes run when
	// a test asks (Service.ProbeHealth or RunHealthProbes); until then
	// GET /health reads every module unknown.
	probes, err := daemon.BuiltinProbes(c, cfg, deps.Registry, deps.History)
	if err != nil {
		t.Fatalf("health probes: %v", err)
	}
	sopts := starter.Options{
		Namespace: "default", TaskQueue: queue, Address: srv.FrontendHostPort(),
		Targets: cfg.TargetInfos(), DefaultTarget: "demo", HeartbeatTimeout: opts.HeartbeatTimeout,
		DrillCanaryInterval: 100 * time.Millisecond, DrillCanaryDuration: 2 * time.Second,
		DrillStartApprovalTimeout: opts.ApprovalTimeout, DrillCompleteApprovalTimeout: opts.ApprovalTimeout,
		Capabilities: deps.Registry.Capabilities(), HealthProbes: probes,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if opts.CommandLog {
		sopts.Records = deps.History
	}
	svc := starter.New(c, sopts)
	e := &Env{T: t, Client: c, Config: cfg, Service: svc, Deps: deps, Slow: slow, TaskQueue: queue, tokens: tokens}
	e.StartWorker()
	t.Cleanup(e.StopWorker)
	h, err := daemon.Handler(svc, cfg, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), daemon.HandlerOptions{})
	if err != nil {
		t.Fatalf("api handler: %v", err)
	}
	// Every exchange with the real gateway and starter is checked against
	// the OpenAPI document.
	e.API = httptest.NewServer(apitest.NewValidator(t).Handler(t, h))
	t.Cleanup(e.API.Close)
	return e
}

// StartWorker starts (or restarts) the Env's worker.
func (e *Env) StartWorker() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.worker != nil {
		return
	}
	w := worker.New(e.Client, e.TaskQueue, e.Deps.Activities, worker.Options{StopTimeout: -1})
	if err := w.Start(); err != nil {
		e.T.Fatalf("start worker: %v", err)
	}
	e.worker = w
}

// StopWorker stops the Env's worker at once, cancelling running tasks as a
// crash or a deploy without grace period would.
func (e *Env) StopWorker() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.worker != nil {
		e.worker.Stop()
		e.worker = nil
	}
}

// CreateSchedule creates a schedule with a name unique to the test.
func (e *Env) CreateSchedule(name string, tasks ...domain.TaskType) domain.Schedule {
	e.T.Helper()
	spec := domain.NewScheduleSpec("demo")
	spec.Name = fmt.Sprintf("%s %d", name, time.Now().UnixNano())
	spec.Tasks = tasks
	spec.Enabled = false
	sc, err := e.Service.CreateSchedule(context.Background(), spec, "test")
	if err != nil {
		e.T.Fatalf("create schedule: %v", err)
	}
	e.T.Cleanup(func() { _ = e.Service.DeleteSchedule(context.Background(), sc.ID, "test") })
	return sc
}

// WaitJob polls a job until cond holds or the timeout passes.
func (e *Env) WaitJob(id string, timeout time.Duration, cond func(domain.Job) bool) domain.Job {
	e.T.Helper()
	deadline := time.Now().Add(timeout)
	var last domain.Job
	for time.Now().Before(deadline) {
		job, err := e.Service.GetJob(context.Background(), id)
		if err == nil {
			last = job
			if cond(job) {
				return job
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.T.Fatalf("job %s: condition not met within %s; last state %s, tasks %+v", id, timeout, last.State, last.Tasks)
	return last
}

// Terminal is a WaitJob condition.
func Terminal(j domain.Job) bool { return j.State.Terminal() }

func sanitize(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '/' || r == ' ' {
			r = '-'
		}
		out = append(out, r)
	}
	return string(out)
}

// Main runs a test binary's tests and stops the shared dev server after.
func Main(m interface{ Run() int }) {
	code := m.Run()
	StopTemporal()
	os.Exit(code)
}
