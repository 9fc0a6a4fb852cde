package postgres

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// Name is the driver's config name.
const Name = "postgres"

// ApplicationName is set on every session the driver opens (unless the DSN
// names one), so DBAs can tell maintenance sessions apart in pg_stat_activity.
const ApplicationName = "themis-maintenance"

// Defaults of Options.
const (
	DefaultLockTimeout       = 10 * time.Second
	DefaultStatementTimeout  = 2 * time.Hour
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultMaxConns          = 10
	DefaultProbeRuns         = 5
	DefaultRegressionFloor   = 2 * time.Millisecond
	// DefaultCleanupTimeout bounds the clean-up that follows a failed or
	// cancelled REINDEX CONCURRENTLY or restore.
	DefaultCleanupTimeout = 60 * time.Second
	// DefaultConnectionCheckInterval is the client_connection_check_interval
	// of the driver's sessions on PostgreSQL 14+.
	DefaultConnectionCheckInterval = 2 * time.Second
)

// Options tune the driver. The zero value gives the defaults.
type Options struct {
	// LockTimeout is the lock_timeout of lock-taking statements when a task's
	// lock_timeout_ms option is absent or 0. Optional: defaulted to
	// DefaultLockTimeout.
	LockTimeout time.Duration
	// StatementTimeout is the statement_timeout of maintenance statements
	// when statement_timeout_ms is absent or 0; it bounds one statement (one
	// relation), not the task. Optional: defaulted to DefaultStatementTimeout.
	StatementTimeout time.Duration
	// HeartbeatInterval is how often progress is re-reported while a single
	// long statement or external program runs. Optional: defaulted to
	// DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// MaxConns caps each target's pool unless its DSN sets pool_max_conns;
	// parallel tasks use at most MaxConns-1 sessions. Optional: defaulted to
	// DefaultMaxConns.
	MaxConns int32
	// ProbeRuns is how often each baseline probe runs; the median counts.
	// Optional: defaulted to DefaultProbeRuns.
	ProbeRuns int
	// RegressionFloor is the absolute slow-down of a baseline probe below
	// which it is never reported as a regression (timer noise). Optional:
	// defaulted to DefaultRegressionFloor.
	RegressionFloor time.Duration
	// CleanupTimeout bounds clean-up after a failure or cancellation.
	// Optional: defaulted to DefaultCleanupTimeout.
	CleanupTimeout time.Duration
	// ConnectionCheckInterval is the client_connection_check_interval set on
	// every session on PostgreSQL 14+, so that a backend whose worker died
	// stops its statement within about this long. Optional: defaulted to
	// DefaultConnectionCheckInterval; negative disables it.
	ConnectionCheckInterval time.Duration
}

// Driver runs maintenance tasks against PostgreSQL 13+ targets. It keeps
// one connection pool per target name; Close releases them.
type Driver struct {
	opts  Options
	mu    sync.Mutex
	pools map[string]*targetPool
	// freeSpace replaces the free-space reading of scratch preflight in
	// tests of the not-enough-space path (nil: statfs).
	freeSpace func(dir string) (int64, error)
}

type targetPool struct {
	dsn  string
	pool *pgxpool.Pool
}

var _ driver.Driver = (*Driver)(nil)

// New returns the PostgreSQL driver with default options.
func New() *Driver { return NewWithOptions(Options{}) }

// NewWithOptions returns the PostgreSQL driver configured by o.
func NewWithOptions(o Options) *Driver {
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = DefaultStatementTimeout
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.MaxConns <= 1 {
		o.MaxConns = DefaultMaxConns
	}
	if o.ProbeRuns <= 0 {
		o.ProbeRuns = DefaultProbeRuns
	}
	if o.RegressionFloor <= 0 {
		o.RegressionFloor = DefaultRegressionFloor
	}
	if o.CleanupTimeout <= 0 {
		o.CleanupTimeout = DefaultCleanupTimeout
	}
	if o.ConnectionCheckInterval == 0 {
		o.ConnectionCheckInterval = DefaultConnectionCheckInterval
	}
	return &Driver{opts: o, pools: map[string]*targetPool{}}
}

// taskFunc performs one task type.
type taskFunc func(ctx context.Context, r *run) (driver.Result, error)

// tasks is the engine's implementation of each task type it runs; the
// capabilities the API reports are derived from it (driver.Supports).
// disaster_recovery_drill is absent: drills are a workflow of their own,
// which this driver takes part in as a driver.Driller.
var tasks = map[domain.TaskType]taskFunc{
	domain.TaskMetricsCollection:        metricsCollection,
	domain.TaskFragmentationMonitoring:  fragmentationMonitoring,
	domain.TaskIndexFragmentationReport: indexFragmentationReport,
	domain.TaskQuotaCheck:               quotaCheck,
	domain.TaskConsistencyCheck:         consistencyCheck,
	domain.TaskFullCheckDB:              fullCheckDB,
	domain.TaskReplicaValidation:        replicaValidation,
	domain.TaskPerformanceAnalysis:      performanceAnalysis,
	domain.TaskMVCCCleanup:              mvccCleanup,
	domain.TaskStatisticsUpdate:         statisticsUpdate,
	domain.TaskStorageCompaction:        storageCompaction,
	domain.TaskIndexRebuild:             indexRebuild,
	domain.TaskIndexReorganize:          indexRebuild,
	domain.TaskOrphanCleanup:            orphanCleanup,
	domain.TaskVectorReindex:            vectorReindex,
	domain.TaskBackupVerification:       backupVerification,
	domain.TaskCapacityTrendAnalysis:    capacityTrend,
	domain.TaskBaselineUpdate:           baselineUpdate,
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return Name }

// Supports implements driver.Driver.
func (d *Driver) Supports(task domain.TaskType) bool {
	_, ok := tasks[task]
	return ok
}

// Run implements driver.Driver. Errors: one wrapping driver.ErrNotSupported
// for disaster_recovery_drill (a workflow of its own) and unknown tasks; a
// *driver.PermanentError for bad options (InvalidInput), a target that
// cannot work (Misconfigured: bad DSN, authentication, missing privilege or
// extension), corruption (IntegrityViolation) and a backup that does not
// verify (VerificationFailed); ctx.Err() when ctx is cancelled; any other
// error is transient (lock_timeout, statement_timeout, lost connection).
func (d *Driver) Run(ctx context.Context, req driver.Request) (driver.Result, error) {
	fn, ok := tasks[req.Task]
	if !ok {
		return driver.Result{}, driver.NotSupported(Name, req.Task)
	}
	if req.DryRun && !plannedTasks[req.Task] {
		return driver.Result{}, driver.Permanentf(driver.KindInvalidInput, "%s cannot be planned in a dry run on %s", req.Task, Name)
	}
	if req.DryRun {
		// A retried dry run plans everything again: its plan is its result,
		// and the attempt it replaces returned none.
		req.Checkpoint = nil
	}
	if err := ctx.Err(); err != nil {
		return driver.Result{}, err
	}
	// Every connection of this run carries the job, task and attempt in
	// its application_name (see sessionPrefix).
	ctx = withSessionName(ctx, sessionName(req.JobID, req.Task, req.Attempt))
	pool, err := d.pool(ctx, req.Target)
	if err != nil {
		return driver.Result{}, err
	}
	r := &run{d: d, req: req, pool: pool, progressFn: req.Progress}
	if err := r.loadServer(ctx); err != nil {
		return driver.Result{}, classify(ctx, err, "read server facts")
	}
	replaced, err := r.replacePreviousAttempts(ctx)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return driver.Result{}, ctxErr
		}
		return driver.Result{}, err
	}
	res, err := fn(ctx, r)
	defer r.pacer.close()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return driver.Result{}, ctxErr
		}
		return driver.Result{}, err
	}
	if res.Details == nil {
		res.Details = map[string]any{}
	}
	if replaced != nil {
		res.Details["previous_attempts"] = replaced
	}
	if p, _ := r.pacerFor(ctx); p != nil {
		p.details(res.Details)
	}
	r.budgetResult(&res)
	if req.DryRun {
		r.dryResult(&res)
	}
	r.progress(100, "done", nil)
	return res, nil
}

// Close closes every pool. The driver can be used again afterwards (pools
// are re-created on demand).
func (d *Driver) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, tp := range d.pools {
		tp.pool.Close()
		delete(d.pools, name)
	}
}

// pool returns the target's pool, creating and pinging it on first use. A
// changed DSN replaces the pool. A pool that fails its ping is not kept.
func (d *Driver) pool(ctx context.Context, t driver.Target) (*pgxpool.Pool, error) {
	d.mu.Lock()
	if tp, ok := d.pools[t.Name]; ok {
		if tp.dsn == t.DSN {
			d.mu.Unlock()
			return tp.pool, nil
		}
		tp.pool.Close()
		delete(d.pools, t.Name)
	}
	d.mu.Unlock()

	p, err := d.newPool(ctx, t.Name, t.DSN)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if tp, ok := d.pools[t.Name]; ok && tp.dsn == t.DSN {
		// Another Run won the race; use its pool.
		p.Close()
		return tp.pool, nil
	}
	d.pools[t.Name] = &targetPool{dsn: t.DSN, pool: p}
	return p, nil
}

// newPool builds a pool for dsn. On cancellation pgx sends the server a
// cancel request at once (rather than only dropping the socket, which would
// leave a VACUUM or REINDEX running server-side) and closes the connection
// if the server has not answered within 10 s.
func (d *Driver) newPool(ctx context.Context, name, dsn string) (*pgxpool.Pool, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, driver.Permanentf(driver.KindMisconfigured, "target %s: no connection string configured", name)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parse error quotes the connection string; never pass it on.
		return nil, driver.Permanentf(driver.KindMisconfigured, "target %s: connection string does not parse", name)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = ApplicationName
	}
	// A connection carries the session name of the run that acquired it
	// (see withSessionName), the pool's name between runs, and checks
	// that its client is still there (setConnectionCheck).
	defName := cfg.ConnConfig.RuntimeParams["application_name"]
	check := d.opts.ConnectionCheckInterval
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		return setConnectionCheck(ctx, c.PgConn(), check)
	}
	cfg.PrepareConn = func(ctx context.Context, c *pgx.Conn) (bool, error) {
		if err := nameConn(ctx, c, defName); err != nil {
			return false, err
		}
		return true, nil
	}
	// Every connection starts with the driver's lock_timeout and
	// statement_timeout, so even a catalog read never waits on a lock
	// indefinitely; sessions SET the task's values and RESET back to these.
	for k, v := range map[string]time.Duration{"lock_timeout": d.opts.LockTimeout, "statement_timeout": d.opts.StatementTimeout} {
		if _, ok := cfg.ConnConfig.RuntimeParams[k]; !ok {
			cfg.ConnConfig.RuntimeParams[k] = strconv.FormatInt(v.Milliseconds(), 10)
		}
	}
	cfg.ConnConfig.BuildContextWatcherHandler = newCancelHandler
	// A span per statement, under the task's activity span.
	cfg.ConnConfig.Tracer = sqlTracer{target: name}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = d.opts.MaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 15 * time.Second
	}
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, driver.Permanentf(driver.KindMisconfigured, "target %s: pool: %v", name, err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Ping(pingCtx); err != nil {
		p.Close()
		return nil, classify(ctx, err, "target %s: connect", name)
	}
	return p, nil
}

// connectOnce opens a single connection outside the target's pool (a
// replica, a drill's scratch server), named like the pool's connections
// (the run's session name when ctx carries one), checking for a dead
// client like them, cancelled server-side like them, with at most 10 s to
// connect. check is the client_connection_check_interval (see
// setConnectionCheck).
func connectOnce(ctx context.Context, cfg *pgx.ConnConfig, check time.Duration) (*pgx.Conn, error) {
	if n, ok := sessionNameFrom(ctx); ok {
		cfg.RuntimeParams["application_name"] = n
	} else if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = ApplicationName
	}
	cfg.BuildContextWatcherHandler = newCancelHandler
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > 10*time.Second {
		cfg.ConnectTimeout = 10 * time.Second
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := setConnectionCheck(ctx, c.PgConn(), check); err != nil {
		_ = c.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return c, nil
}

func newCancelHandler(pc *pgconn.PgConn) ctxwatch.Handler {
	return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 10 * time.Second}
}

// run is the state of one Run.
type run struct {
	d          *Driver
	req        driver.Request
	pool       *pgxpool.Pool
	srv        serverFacts
	mu         sync.Mutex // serialises progressFn
	progressFn driver.ProgressFunc
	pct        float64 // the last Pct reported

	pacerOnce sync.Once
	pacer     *pacer // nil: the task is not paced
	pacerErr  error

	plan   planner     // a dry run's statements (plan.go)
	budget budgetState // units left by the budget (budget.go)

	durOnce   sync.Once
	durations map[string]time.Duration // predicted, by object (budget.go)
	durErr    error
}

// serverFacts are read once per run.
type serverFacts struct {
	VersionNum int    // server_version_num, e.g. 150008
	Version    string // server_version
	InRecovery bool
	Database   string
	User       string
	Superuser  bool
}

func (r *run) loadServer(ctx context.Context) error {
	return r.pool.QueryRow(ctx, `
		SELECT current_setting('server_version_num')::int, current_setting('server_version'),
		       pg_is_in_recovery(), current_database(), current_user,
		       coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false)`).
		Scan(&r.srv.VersionNum, &r.srv.Version, &r.srv.InRecovery, &r.srv.Database, &r.srv.User, &r.srv.Superuser)
}

func (r *run) target() driver.Target { return r.req.Target }

// appName is the application_name of this run's sessions, for the client
// programs it starts (PGAPPNAME).
func (r *run) appName() string {
	if n := sessionName(r.req.JobID, r.req.Task, r.req.Attempt); n != "" {
		return n
	}
	return ApplicationName
}

// opts reads the task's options with the defaults registered for PostgreSQL.
func (r *run) opts() driver.OptionReader { return r.req.OptionsOn(Name) }

// progress heartbeats; cp must not be mutated after the call (pass a copy).
func (r *run) progress(pct float64, note string, cp any) {
	r.report(driver.Progress{Pct: pct, Note: note, Checkpoint: cp})
}

// report sends p (Pct clamped to 0..100) to the request's Progress.
func (r *run) report(p driver.Progress) {
	if r.progressFn == nil {
		return
	}
	p.Pct = max(0, min(100, p.Pct))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pct = p.Pct
	r.progressFn(p)
}

// lastPct is the Pct last reported.
func (r *run) lastPct() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pct
}

// during runs fn (one long statement or program) while re-sending the
// heartbeat (pct, note, cp) every HeartbeatInterval.
func (r *run) during(pct float64, note string, cp any, fn func() error) error {
	return driver.During(r.d.opts.HeartbeatInterval, note, func(n string) { r.progress(pct, n, cp) }, fn)
}

// requireHistory returns the history store or a Misconfigured error.
func (r *run) requireHistory() (driver.History, error) {
	if r.req.History == nil {
		return nil, driver.Permanentf(driver.KindMisconfigured, "%s needs the history store, and none is configured", r.req.Task)
	}
	return r.req.History, nil
}

// cleanupContext is a context for clean-up work that must run even when ctx
// is cancelled, bounded by CleanupTimeout.
func (r *run) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), r.d.opts.CleanupTimeout)
}

// atLeast reports whether the server is at least major version v.
func (r *run) atLeast(v int) bool { return r.srv.VersionNum >= v*10000 }
