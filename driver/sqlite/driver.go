package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	msqlite "modernc.org/sqlite" // registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// Name is the driver's config name.
const Name = "sqlite"

// Defaults of Options.
const (
	DefaultBusyTimeout       = 10 * time.Second
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultRegressionFloor   = 5 * time.Millisecond
	DefaultProbeRuns         = 3
)

// Options tune the driver. The zero value gives the defaults.
type Options struct {
	// StepDelay is slept (honouring cancellation) before each per-relation
	// step. Optional: defaulted to 0. Integration tests use it to cancel a
	// task or restart a worker half-way through.
	StepDelay time.Duration
	// BusyTimeout is how long a statement waits for a lock held by another
	// connection. Optional: defaulted to DefaultBusyTimeout.
	BusyTimeout time.Duration
	// HeartbeatInterval is how often progress is re-reported while one long
	// statement (VACUUM, integrity_check, REINDEX of a big index) runs.
	// Optional: defaulted to DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// RegressionFloor is the absolute slow-down of a baseline probe below
	// which it is never reported as a regression (timer noise). Optional:
	// defaulted to DefaultRegressionFloor.
	RegressionFloor time.Duration
	// ProbeRuns is how often each baseline probe runs; the median counts.
	// Optional: defaulted to DefaultProbeRuns.
	ProbeRuns int
}

// Driver runs maintenance tasks against SQLite database files. It holds no
// connections between runs: every Run opens the target file and closes it.
type Driver struct {
	// Delay is slept before each per-relation step (see Options.StepDelay).
	// Set it before the driver is shared; it is not synchronised.
	Delay time.Duration
	opts  Options
}

var _ driver.Driver = (*Driver)(nil)

// New returns the SQLite driver with default options.
func New() driver.Driver { return NewWithOptions(Options{}) }

// NewWithOptions returns the SQLite driver configured by o.
func NewWithOptions(o Options) *Driver {
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = DefaultBusyTimeout
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.RegressionFloor <= 0 {
		o.RegressionFloor = DefaultRegressionFloor
	}
	if o.ProbeRuns <= 0 {
		o.ProbeRuns = DefaultProbeRuns
	}
	return &Driver{Delay: o.StepDelay, opts: o}
}

// taskFunc performs one task type.
type taskFunc func(ctx context.Context, r *run) (driver.Result, error)

// tasks is the engine's implementation of each task type it runs; the
// capabilities the API reports are derived from it (driver.Supports). The
// drill is not here: this driver takes part in it as a driver.Driller.
var tasks = map[domain.TaskType]taskFunc{
	domain.TaskConsistencyCheck:         consistencyCheck,
	domain.TaskFullCheckDB:              fullCheckDB,
	domain.TaskFragmentationMonitoring:  fragmentationMonitoring,
	domain.TaskIndexFragmentationReport: indexFragmentationReport,
	domain.TaskQuotaCheck:               quotaCheck,
	domain.TaskMetricsCollection:        metricsCollection,
	domain.TaskCapacityTrendAnalysis:    capacityTrend,
	domain.TaskBaselineUpdate:           baselineUpdate,
	domain.TaskMVCCCleanup:              walCheckpoint,
	domain.TaskStorageCompaction:        storageCompaction,
	domain.TaskStatisticsUpdate:         statisticsUpdate,
	domain.TaskIndexRebuild:             reindex,
	domain.TaskIndexReorganize:          reindex,
	domain.TaskBackupVerification:       backupVerification,
	domain.TaskOrphanCleanup:            orphanCleanup,
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return Name }

// Supports implements driver.Driver.
func (d *Driver) Supports(task domain.TaskType) bool {
	_, ok := tasks[task]
	return ok
}

// Run implements driver.Driver. Errors: one wrapping driver.ErrNotSupported
// for replica_validation, performance_analysis, vector_reindex and
// disaster_recovery_drill; a *driver.PermanentError for a missing database
// file (Misconfigured), corruption (IntegrityViolation), a backup that does
// not verify (VerificationFailed) or unusable options (InvalidInput);
// ctx.Err() when ctx is cancelled; any other error is transient (a lock held
// past the busy timeout, I/O).
func (d *Driver) Run(ctx context.Context, req driver.Request) (driver.Result, error) {
	fn, ok := tasks[req.Task]
	if !ok {
		return driver.Result{}, driver.NotSupported(Name, req.Task)
	}
	if err := ctx.Err(); err != nil {
		return driver.Result{}, err
	}
	mode := "rw"
	if req.DryRun {
		if !planned[req.Task] {
			return driver.Result{}, driver.Permanentf(driver.KindNotSupported,
				"the sqlite driver does not plan %s in a dry run; it only reads the target and was not run", req.Task)
		}
		// A dry run decides afresh: a checkpoint would hide units from the plan.
		req.Checkpoint = nil
		mode = "ro"
	}
	busy := d.opts.BusyTimeout
	if ms := req.OptionsOn(Name).Int("lock_timeout_ms"); ms > 0 {
		busy = time.Duration(ms) * time.Millisecond
	}
	db, err := d.open(ctx, req.Target, mode, busy)
	if err != nil {
		return driver.Result{}, d.classify(ctx, err)
	}
	defer db.Close()
	r := &run{d: d, req: req, db: db, progressFn: req.Progress}
	if planned[req.Task] {
		r.budget = newUnitBudget(ctx, req)
	}
	res, err := fn(ctx, r)
	if err != nil {
		return driver.Result{}, d.classify(ctx, err)
	}
	if res.Details == nil {
		res.Details = map[string]any{}
	}
	if req.DryRun {
		res.Plan = r.plan
		if res.Plan == nil {
			res.Plan = []driver.PlannedStatement{}
		}
		res.Details["dry_run"] = true
	}
	r.progress(100, "done", nil)
	return res, nil
}

// classify maps an error onto the driver contract: ctx.Err() when the run was
// cancelled, a permanent IntegrityViolation for SQLite's corruption codes,
// a permanent Misconfigured for a read-only target, and the error itself
// (transient) otherwise.
func (d *Driver) classify(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	var perm *driver.PermanentError
	if errors.As(err, &perm) {
		return err
	}
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return driver.Permanent(driver.KindIntegrityViolation, err)
		case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH:
			return driver.Permanent(driver.KindMisconfigured, err)
		}
	}
	return err
}

// open opens target's database file (never creating it) in mode ("rw", or
// "ro" for a dry run) with a busy timeout (the task's lock_timeout_ms when
// set). Every statement sent on it goes to the command log of its context.
func (d *Driver) open(ctx context.Context, t driver.Target, mode string, busy time.Duration) (*sql.DB, error) {
	f, err := targetFile(t)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(f.Path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, driver.Permanentf(driver.KindMisconfigured, "target %s: database file does not exist", t.Name)
	case err != nil:
		return nil, fmt.Errorf("target %s: %w", t.Name, err)
	case fi.IsDir():
		return nil, driver.Permanentf(driver.KindMisconfigured, "target %s: database path is a directory", t.Name)
	}
	db, err := openRecorded(f.uri(mode, busy), t.Name)
	if err != nil {
		return nil, fmt.Errorf("target %s: open: %w", t.Name, err)
	}
	// Tasks run their statements one after the other; a second connection is
	// used only by backup_verification (a write lock held by one while the
	// other copies).
	db.SetMaxOpenConns(4)
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&n); err != nil {
		db.Close()
		return nil, fmt.Errorf("target %s: read schema: %w", t.Name, err)
	}
	return db, nil
}

// run is the state of one Run: the request, the open database and the
// progress reporter.
type run struct {
	d          *Driver
	req        driver.Request
	db         *sql.DB
	mu         sync.Mutex // serialises progressFn (the timer heartbeat runs in a goroutine)
	progressFn driver.ProgressFunc
	// budget bounds the units of the task types a dry run plans (nil for
	// the others).
	budget *unitBudget
	// plan collects what a dry run would execute (run.maintain).
	plan []driver.PlannedStatement
}

func (r *run) target() driver.Target { return r.req.Target }

// opts reads the task's options with the defaults registered for SQLite.
func (r *run) opts() driver.OptionReader { return r.req.OptionsOn(Name) }

// progress heartbeats; cp must not be mutated after the call (pass a copy).
func (r *run) progress(pct float64, note string, cp any) {
	if r.progressFn == nil {
		return
	}
	if pct < 0 {
		pct = 0
	} else if pct > 100 {
		pct = 100
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progressFn(driver.Progress{Pct: pct, Note: note, Checkpoint: cp})
}

// pause sleeps the configured step delay and reports cancellation.
func (r *run) pause(ctx context.Context) error {
	if r.d.Delay > 0 {
		t := time.NewTimer(r.d.Delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return ctx.Err()
}

// during runs fn (one long statement) while re-sending the heartbeat
// (pct, note, cp) every HeartbeatInterval, so a task that spends minutes in
// a single VACUUM or integrity_check is not timed out as dead.
func (r *run) during(pct float64, note string, cp any, fn func() error) error {
	return driver.During(r.d.opts.HeartbeatInterval, note, func(n string) { r.progress(pct, n, cp) }, fn)
}

// timed runs fn under the task's statement_timeout_ms (when set) and names
// the timeout in the error when it fires.
func (r *run) timed(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	ms := r.opts().Int("statement_timeout_ms")
	if ms <= 0 {
		return fn(ctx)
	}
	sctx, cancel := context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
	defer cancel()
	err := fn(sctx)
	if err != nil && ctx.Err() == nil && errors.Is(sctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: statement_timeout_ms %d exceeded: %w", what, ms, err)
	}
	return err
}

// ignoredOptions returns, for the options among keys that the request set,
// why SQLite does not use them; nil when none was set. Results carry it so
// an operator sees the option was read and why it changed nothing.
func (r *run) ignoredOptions(reasons map[string]string) map[string]string {
	var out map[string]string
	for k, why := range reasons {
		if r.opts().IsSet(k) {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = why
		}
	}
	return out
}

const (
	oneWriter = "SQLite has a single writer; relations are processed one at a time"
	oneReader = "the check runs on one connection; tables are checked one at a time"
)

// requireHistory returns the history store or a Misconfigured error: tasks
// whose point is to keep or compare history cannot run without it.
func (r *run) requireHistory() (driver.History, error) {
	if r.req.History == nil {
		return nil, driver.Permanentf(driver.KindMisconfigured, "%s needs the history store, and none is configured", r.req.Task)
	}
	return r.req.History, nil
}
