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
	DefaultTimeout  = 10 * time.Second
)

// RunnerOptions tune a Runner; every field is optional.
type RunnerOptions struct {
	// Interval between two rounds of probes (DefaultInterval when zero).
	Interval time.Duration
	// Timeout of one probe call (DefaultTimeout when zero): the deadline
	// of its context; a probe still running a little after it (a tenth of
	// it, at most a second, so that a probe honouring its context reports
	// its own verdict) is reported Unknown.
	Timeout time.Duration
	// Logger receives panics with their stack (slog.Default when nil).
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Runner calls the probes of its registries in the background and caches
// their latest signals. Report never waits for a probe.
type Runner struct {
	opts    RunnerOptions
	sources []*Registry

	mu        sync.Mutex
	latest    map[string]Signal
	running   map[string]time.Time // start of calls that have not returned
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
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Runner{opts: opts, sources: sources, latest: map[string]Signal{}, running: map[string]time.Time{}}
}

// Run starts a round of probes now and then every interval until ctx is
// done. Rounds do not wait for each other: a probe still running from an
// earlier round is skipped (and stays Unknown) until its call returns.
func (r *Runner) Run(ctx context.Context) {
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		r.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check runs one round and returns the report once every probe of it has
// answered or timed out (or ctx is done): for start-up and tests.
func (r *Runner) Check(ctx context.Context) Report {
	r.round(ctx).Wait()
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

// round starts a call of every probe not already running; the WaitGroup is
// done when each has answered or timed out.
func (r *Runner) round(ctx context.Context) *sync.WaitGroup {
	probes, dup := r.probes()
	now := r.opts.Now()
	var wg sync.WaitGroup
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checkedAt = now
	names := make(map[string]bool, len(probes))
	for _, p := range probes {
		names[p.name] = true
		if dup[p.name] {
			r.latest[p.name] = Signal{Status: Unknown, CheckedAt: now,
				Message: "two probes are registered under this name; neither is run"}
			continue
		}
		if started, busy := r.running[p.name]; busy {
			r.latest[p.name] = Signal{Status: Unknown, CheckedAt: now, Message: fmt.Sprintf(
				"did not answer within %s; the call started %s ago has not returned", r.opts.Timeout, now.Sub(started).Round(time.Second))}
			continue
		}
		r.running[p.name] = now
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.call(ctx, p)
		}()
	}
	for name := range r.latest {
		if !names[name] {
			delete(r.latest, name) // unregistered since
		}
	}
	return &wg
}

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
	grace := min(timeout/10, time.Second)
	timer := time.NewTimer(timeout + grace)
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
