package postgres

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/themis-maintenance/themis/driver"
)

// Option readers re-validate what domain.ScheduleSpec.Normalize already
// checked: options reach the driver through JSON and through forced runs, and
// a value that ends up in a SET statement must be a number in range, never
// text. A present but unusable value is a permanent InvalidInput error. The
// default and the bounds come from the task type's registration
// (domain/catalog.go); an option the task type does not declare reads as
// its zero value.

// number reads option key as a float64; present is false when it is absent.
func number(o driver.OptionReader, key string) (f float64, present bool, err error) {
	if !o.IsSet(key) {
		return 0, false, nil
	}
	switch n := o.Value(key).(type) {
	case int64:
		f = float64(n)
	case int:
		f = float64(n)
	case int32:
		f = float64(n)
	case float64:
		f = n
	case float32:
		f = float64(n)
	default:
		return 0, true, driver.Permanentf(driver.KindInvalidInput, "option %s must be a number, got %T", key, n)
	}
	return f, true, nil
}

func intOpt(o driver.OptionReader, key string) (int64, error) {
	spec, _ := o.Spec(key)
	f, present, err := number(o, key)
	if err != nil || !present {
		return o.Int(key), err
	}
	if math.IsNaN(f) || f != math.Trunc(f) {
		return 0, driver.Permanentf(driver.KindInvalidInput, "option %s must be an integer, got %v", key, o.Value(key))
	}
	if f < spec.Min || f > spec.Max {
		return 0, driver.Permanentf(driver.KindInvalidInput, "option %s must be between %d and %d, got %v", key, int64(spec.Min), int64(spec.Max), o.Value(key))
	}
	return int64(f), nil
}

func floatOpt(o driver.OptionReader, key string) (float64, error) {
	spec, _ := o.Spec(key)
	f, present, err := number(o, key)
	if err != nil || !present {
		return o.Float(key), err
	}
	if math.IsNaN(f) || f < spec.Min || f > spec.Max {
		return 0, driver.Permanentf(driver.KindInvalidInput, "option %s must be between %g and %g, got %v", key, spec.Min, spec.Max, o.Value(key))
	}
	return f, nil
}

func boolOpt(o driver.OptionReader, key string) (bool, error) {
	if !o.IsSet(key) {
		return o.Bool(key), nil
	}
	b, ok := o.Value(key).(bool)
	if !ok {
		return false, driver.Permanentf(driver.KindInvalidInput, "option %s must be a boolean, got %T", key, o.Value(key))
	}
	return b, nil
}

func enumOpt(o driver.OptionReader, key string) (string, error) {
	if !o.IsSet(key) {
		return o.String(key), nil
	}
	s, ok := o.Value(key).(string)
	if !ok {
		return "", driver.Permanentf(driver.KindInvalidInput, "option %s must be a string, got %T", key, o.Value(key))
	}
	if s == "" {
		return o.String(key), nil
	}
	spec, _ := o.Spec(key)
	if slices.Contains(spec.Values, s) {
		return s, nil
	}
	return "", driver.Permanentf(driver.KindInvalidInput, "option %s must be one of %v, got %q", key, spec.Values, s)
}

// sessionSettings are what a task's session sets: lock_timeout and
// statement_timeout in ms, the cost-based delay of VACUUM and ANALYZE on it (CostDelayMs 0:
// none, the server's setting stays) and, when SetParallel, its
// max_parallel_maintenance_workers.
type sessionSettings struct {
	LockMs, StatementMs int64
	CostDelayMs         float64
	CostLimit           int64
	SetParallel         bool
	ParallelWorkers     int64
}

func (t sessionSettings) String() string {
	return fmt.Sprintf("lock_timeout %s, statement_timeout %s",
		time.Duration(t.LockMs)*time.Millisecond, time.Duration(t.StatementMs)*time.Millisecond)
}

// defaultTimeouts are the driver's own lock_timeout and statement_timeout.
func (r *run) defaultTimeouts() sessionSettings {
	return sessionSettings{LockMs: r.d.opts.LockTimeout.Milliseconds(), StatementMs: r.d.opts.StatementTimeout.Milliseconds()}
}

// timeoutOpts reads the task's session settings: lock_timeout_ms and
// statement_timeout_ms (0 or absent = the driver defaults), and, where the
// task has them, cost_delay_ms / cost_limit and parallel_workers.
func (r *run) timeoutOpts() (sessionSettings, error) {
	lock, err := intOpt(r.opts(), "lock_timeout_ms")
	if err != nil {
		return sessionSettings{}, err
	}
	stmt, err := intOpt(r.opts(), "statement_timeout_ms")
	if err != nil {
		return sessionSettings{}, err
	}
	if lock == 0 {
		lock = r.d.opts.LockTimeout.Milliseconds()
	}
	if stmt == 0 {
		stmt = r.d.opts.StatementTimeout.Milliseconds()
	}
	to := sessionSettings{LockMs: lock, StatementMs: stmt}
	if _, ok := r.opts().Spec("cost_delay_ms"); ok {
		if to.CostDelayMs, err = floatOpt(r.opts(), "cost_delay_ms"); err != nil {
			return sessionSettings{}, err
		}
		if to.CostLimit, err = intOpt(r.opts(), "cost_limit"); err != nil {
			return sessionSettings{}, err
		}
	}
	if _, ok := r.opts().Spec("parallel_workers"); ok {
		if to.ParallelWorkers, err = intOpt(r.opts(), "parallel_workers"); err != nil {
			return sessionSettings{}, err
		}
		to.SetParallel = to.ParallelWorkers >= 0
	}
	return to, nil
}

// sessionOpts reads what a task working on parallel sessions needs: its
// session settings and its parallelism.
func (r *run) sessionOpts() (sessionSettings, int, error) {
	to, err := r.timeoutOpts()
	if err != nil {
		return sessionSettings{}, 0, err
	}
	par, err := r.parallelismOpt()
	return to, par, err
}

// parallelismOpt reads parallelism, capped so one pool
// connection stays free for catalog reads and cancellation.
func (r *run) parallelismOpt() (int, error) {
	p, err := intOpt(r.opts(), "parallelism")
	if err != nil {
		return 0, err
	}
	if maxP := int64(r.pool.Config().MaxConns) - 1; p > maxP {
		p = max(1, maxP)
	}
	return int(p), nil
}
