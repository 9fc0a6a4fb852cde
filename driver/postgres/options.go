package postgres

import (
	"fmt"
	"math"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// Option readers re-validate what domain.ScheduleSpec.Normalize already
// checked: options reach the driver through JSON and through forced runs, and
// a value that ends up in a SET statement must be a number in range, never
// text. A present but unusable value is a permanent InvalidInput error.

// number reads option key as a float64; present is false when it is absent.
func number(o domain.TaskOptions, key string) (f float64, present bool, err error) {
	v, ok := o[key]
	if !ok || v == nil {
		return 0, false, nil
	}
	switch n := v.(type) {
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
		return 0, true, driver.Permanentf(driver.KindInvalidInput, "option %s must be a number, got %T", key, v)
	}
	return f, true, nil
}

func intOpt(o domain.TaskOptions, key string, def, lo, hi int64) (int64, error) {
	f, present, err := number(o, key)
	if err != nil || !present {
		return def, err
	}
	if math.IsNaN(f) || f != math.Trunc(f) {
		return 0, driver.Permanentf(driver.KindInvalidInput, "option %s must be an integer, got %v", key, o[key])
	}
	if f < float64(lo) || f > float64(hi) {
		return 0, driver.Permanentf(driver.KindInvalidInput, "option %s must be between %d and %d, got %v", key, lo, hi, o[key])
	}
	return int64(f), nil
}

func floatOpt(o domain.TaskOptions, key string, def, lo, hi float64) (float64, error) {
	f, present, err := number(o, key)
	if err != nil || !present {
		return def, err
	}
	if math.IsNaN(f) || f < lo || f > hi {
		return 0, driver.Permanentf(driver.KindInvalidInput, "option %s must be between %g and %g, got %v", key, lo, hi, o[key])
	}
	return f, nil
}

func boolOpt(o domain.TaskOptions, key string, def bool) (bool, error) {
	v, ok := o[key]
	if !ok || v == nil {
		return def, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, driver.Permanentf(driver.KindInvalidInput, "option %s must be a boolean, got %T", key, v)
	}
	return b, nil
}

func enumOpt(o domain.TaskOptions, key, def string, allowed ...string) (string, error) {
	v, ok := o[key]
	if !ok || v == nil {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", driver.Permanentf(driver.KindInvalidInput, "option %s must be a string, got %T", key, v)
	}
	if s == "" {
		return def, nil
	}
	for _, a := range allowed {
		if s == a {
			return s, nil
		}
	}
	return "", driver.Permanentf(driver.KindInvalidInput, "option %s must be one of %v, got %q", key, allowed, s)
}

// Limits shared with domain's option specs.
const (
	maxTimeoutMs   = 86_400_000
	maxParallelism = 64
)

// timeouts are the lock_timeout and statement_timeout a session sets, in ms.
type timeouts struct {
	LockMs, StatementMs int64
}

func (t timeouts) String() string {
	return fmt.Sprintf("lock_timeout %s, statement_timeout %s",
		time.Duration(t.LockMs)*time.Millisecond, time.Duration(t.StatementMs)*time.Millisecond)
}

// defaultTimeouts are the driver's own lock_timeout and statement_timeout.
func (r *run) defaultTimeouts() timeouts {
	return timeouts{LockMs: r.d.opts.LockTimeout.Milliseconds(), StatementMs: r.d.opts.StatementTimeout.Milliseconds()}
}

// timeoutOpts reads lock_timeout_ms and statement_timeout_ms (0 or absent =
// the driver defaults).
func (r *run) timeoutOpts() (timeouts, error) {
	lock, err := intOpt(r.opts(), "lock_timeout_ms", 0, 0, maxTimeoutMs)
	if err != nil {
		return timeouts{}, err
	}
	stmt, err := intOpt(r.opts(), "statement_timeout_ms", 0, 0, maxTimeoutMs)
	if err != nil {
		return timeouts{}, err
	}
	if lock == 0 {
		lock = r.d.opts.LockTimeout.Milliseconds()
	}
	if stmt == 0 {
		stmt = r.d.opts.StatementTimeout.Milliseconds()
	}
	return timeouts{LockMs: lock, StatementMs: stmt}, nil
}

// sessionOpts reads what a task working on parallel sessions needs: its
// timeouts and its parallelism.
func (r *run) sessionOpts() (timeouts, int, error) {
	to, err := r.timeoutOpts()
	if err != nil {
		return timeouts{}, 0, err
	}
	par, err := r.parallelismOpt()
	return to, par, err
}

// parallelismOpt reads parallelism (default 2), capped so one pool
// connection stays free for catalog reads and cancellation.
func (r *run) parallelismOpt() (int, error) {
	p, err := intOpt(r.opts(), "parallelism", 2, 1, maxParallelism)
	if err != nil {
		return 0, err
	}
	if maxP := int64(r.pool.Config().MaxConns) - 1; p > maxP {
		p = max(1, maxP)
	}
	return int(p), nil
}
