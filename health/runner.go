package health

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"sync"
	"time"
)

// Defaults of RunnerOptions.
const (
	DefaultInterval = 30 * time.Second
	DefaultRecheck  = 5 * time.Second
	DefaultTimeout  = 10 * time.Second
)

// RunnerOptions tune a Runner; every field is optional.
type RunnerOptions struct {
	// Interval between two calls of a healthy probe (DefaultInterval when
	// zero).
	Interval time.Duration
	// Recheck is the interval of a probe whose latest signal is not OK
	// (DefaultRecheck when zero, at most Interval), so that a module that
	// recovers, or a worker that was still starting, shows healthy soon.
	Recheck time.Duration
	// Timeout of one probe call (DefaultTimeout when zero): the deadline
	// of its context; a probe still running a little after it (a tenth of
	// it, at most a second, so that a probe honouring its context reports
	// its own verdict) is reported Unknown.
	Timeout time.Duration
	// Logger receives panics with their stack (slog.Default when nil).
	Logger *slog.Logger
	// Now is the clock of the signals' CheckedAt (time.Now when nil); the
	// intervals and timeouts always run on the real clock.
	Now func() time.Time
}

// Runner calls the probes of its registries in the background and caches
// their latest signals. Report never waits for a probe.
type Runner struct {
	opts    RunnerOptions
	sources []*Registry

	mu        sync.Mutex
	latest    map[string]Signal
	lastCall  map[string]time.Time // start of each probe's latest call
	running   map[string]bool      // calls that have not returned
	checkedAt time.Time
}

// NewRunner returns a runner over the probes of sources, in order (for
// example the daemon's built-in probes, then Default). A name registered
// in two of them is not called: it is reported Unknown, so the clash is
// seen rather than one probe silently hiding the other.
func NewRunner(opts RunnerOptions, sources ...*Registry) *Runner {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Recheck <= 0 {
		opts.Recheck = DefaultRecheck
	}
	opts.Recheck = min(opts.Recheck, opts.Interval)
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Runner{opts: opts, sources: sources, latest: map[string]Signal{},
		lastCall: map[string]time.Time{}, running: map[string]bool{}}
}

// Run calls every probe now, then each again when due (Interval after
// its latest call, Recheck when its latest signal is not OK), until ctx is
// done. Calls do not wait for each other: a probe still running from an
// earlier call is not called again (and is Unknown once overdue) until
// that call returns. A probe registered while Run runs is called at once.
func (r *Runner) Run(ctx context.Context) {
	wake := make(chan struct{}, 1)
	for _, src := range r.sources {
		if src != nil {
			src.watch(wake)
			defer src.unwatch(wake)
		}
	}
	t := time.NewTicker(max(r.opts.Recheck/5, 10*time.Millisecond))
	defer t.Stop()
	r.round(ctx, true)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
		r.round(ctx, false)
	}
}

// Check runs one round and returns the report once every probe of it has
// answered or timed out (or ctx is done): for start-up and tests.
func (r *Runner) Check(ctx context.Context) Report {
	r.round(ctx, true).Wait()
	return r.Report()
}

// Report returns the cached signals of every registered probe, in
// registration order. A probe that has no signal yet is Unknown.
func (r *Runner) Report() Report {
	probes, _ := r.probes()
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := Report{CheckedAt: r.checkedAt, Modules: make([]Module, 0, len(probes))}
	statuses := make([]Status, 0, len(probes))
	for _, p := range probes {
		sig, ok := r.latest[p.name]
		if !ok {
			sig = Signal{Status: Unknown, Message: "not checked yet"}
			if !r.checkedAt.IsZero() {
				sig.Message = "first check still running"
			}
		}
		rep.Modules = append(rep.Modules, Module{Name: p.name, Signal: sig})
		statuses = append(statuses, sig.Status)
	}
	rep.Overall = Worst(statuses...)
	return rep
}

// probes merges the sources: each name once, at its first place, with the
// set of names registered more than once.
func (r *Runner) probes() ([]probe, map[string]bool) {
	var out []probe
	seen := map[string]bool{}
	var dup map[string]bool
	for _, src := range r.sources {
		if src == nil {
			continue
		}
		for _, p := range src.snapshot() {
			if seen[p.name] {
				if dup == nil {
					dup = map[string]bool{}
				}
				dup[p.name] = true
				continue
			}
			seen[p.name] = true
			out = append(out, p)
		}
	}
	return out, dup
}

// round starts a call of every probe that is due (all: every probe not
// already running); the WaitGroup is done when each call has answered or
// timed out.
func (r *Runner) round(ctx context.Context, all bool) *sync.WaitGroup {
	probes, dup := r.probes()
	now, stamp := time.Now(), r.opts.Now()
	var wg sync.WaitGroup
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make(map[string]bool, len(probes))
	for _, p := range probes {
		names[p.name] = true
		if dup[p.name] {
			r.latest[p.name] = Signal{Status: Unknown, CheckedAt: stamp,
				Message: "two probes are registered under this name; neither is run"}
			continue
		}
		last, called := r.lastCall[p.name]
		if r.running[p.name] {
			// Overdue: say for how long. Not yet: its own timer reports.
			if age := now.Sub(last); age > r.opts.Timeout+r.grace() {
				r.latest[p.name] = Signal{Status: Unknown, CheckedAt: stamp, Message: fmt.Sprintf(
					"did not answer within %s; the call started %s ago has not returned", r.opts.Timeout, age.Round(time.Second))}
			}
			continue
		}
		if !all && called {
			every := r.opts.Interval
			if r.latest[p.name].Status != OK {
				every = r.opts.Recheck
			}
			if now.Sub(last) < every {
				continue
			}
		}
		r.lastCall[p.name], r.running[p.name] = now, true
		r.checkedAt = stamp
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.call(ctx, p)
		}()
	}
	for name := range r.lastCall {
		if !names[name] { // unregistered since
			delete(r.latest, name)
			delete(r.lastCall, name)
		}
	}
	return &wg
}

// grace is how long after its timeout a call is reported Unknown: time for
// a probe honouring its context to report its own verdict.
func (r *Runner) grace() time.Duration { return min(r.opts.Timeout/10, time.Second) }

// call runs one probe with the timeout and stores its signal, or Unknown
// when it panics or does not answer in time. The probe's goroutine marks
// the probe idle only when the function has returned.
func (r *Runner) call(ctx context.Context, p probe) {
	timeout := r.opts.Timeout
	pctx, cancel := context.WithTimeout(ctx, timeout)
	done := make(chan Signal, 1) // never blocks a late answer
	go func() {
		defer func() {
			cancel()
			r.mu.Lock()
			delete(r.running, p.name)
			r.mu.Unlock()
		}()
		defer func() {
			if v := recover(); v != nil {
				r.opts.Logger.Error("health probe panicked", "probe", p.name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				done <- Signal{Status: Unknown, Message: fmt.Sprintf("probe panicked: %v", v)}
			}
		}()
		done <- p.fn(pctx)
	}()
	timer := time.NewTimer(timeout + r.grace())
	defer timer.Stop()
	var sig Signal
	select {
	case sig = <-done:
		sig.Details = maps.Clone(sig.Details)
	case <-timer.C:
		r.opts.Logger.Warn("health probe did not answer in time", "probe", p.name, "timeout", timeout)
		sig = Signal{Status: Unknown, Message: fmt.Sprintf("did not answer within %s", timeout)}
	case <-ctx.Done():
		return
	}
	sig = normalize(sig, r.opts.Now())
	r.mu.Lock()
	r.latest[p.name] = sig
	r.mu.Unlock()
}
