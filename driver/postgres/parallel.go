package postgres

import (
	"context"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/themis-maintenance/themis/driver"
)

// forEach runs work for every item on up to n goroutines. An error returned
// by work is fatal: the remaining items are not started, in-flight ones are
// cancelled, and the first fatal error is returned. Per-item failures the
// task tolerates are recorded by work itself, which then returns nil. When
// ctx is cancelled forEach returns ctx.Err().
func forEach[T any](ctx context.Context, n int, items []T, work func(ctx context.Context, it T) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, n))
	for _, it := range items {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return work(gctx, it) })
	}
	err := g.Wait()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return err
}

// units tells forEachSession what it needs to know of a task's units for
// the budget (budget.go).
type units[T any] struct {
	// key names a unit in Result.UnitsLeft and Budget.Carried.
	key func(T) string
	// objects are the command-log objects of the unit's statements, whose
	// predicted durations add up to the unit's (nil: the key).
	objects func(T) []string
	// left records the unit in the task's results as skipped for reason
	// (it was not started, or was cancelled at the hard stop).
	left func(it T, reason string)
}

// forEachSession is forEach for statements that need a session: each of the
// up to n workers acquires one session (timeouts set once) and keeps it for
// every item it takes, so the per-item cost is the statement alone. Items
// are taken in order, so callers put the largest first to keep the workers
// busy until the end; the units the previous run left (Budget.Carried) go
// before them. A session whose connection was closed (a cancelled
// statement the server did not acknowledge) is replaced before the next
// item. Each unit is started only if the budget allows it, and is
// cancelled at the budget's hard stop (budget.go); units left are recorded
// through u.left and in the run. A dry run plans the units one after the
// other, unpaced.
func forEachSession[T any](ctx context.Context, r *run, n int, to sessionSettings, items []T, u units[T], work func(ctx context.Context, s *session, it T) error) error {
	if len(items) == 0 {
		return ctx.Err()
	}
	items = carriedFirst(items, u.key, r.req.Budget.Carried)
	// Heavy tasks are paced between units (throttle.go).
	p, err := r.pacerFor(ctx)
	if err != nil {
		return err
	}
	if r.dry() {
		p, n = nil, 1
	}
	type unit struct {
		pos int
		it  T
	}
	g, gctx := errgroup.WithContext(ctx)
	next := make(chan unit)
	g.Go(func() error {
		defer close(next)
		for i, it := range items {
			select {
			case next <- unit{pos: i, it: it}:
			case <-gctx.Done():
				return nil
			}
		}
		return nil
	})
	for range max(1, min(n, len(items))) {
		g.Go(func() error {
			var s *session
			defer func() {
				if s != nil {
					s.release()
				}
			}()
			for x := range next {
				if err := r.budgetWait(gctx, p); err != nil {
					return err
				}
				key := u.key(x.it)
				objects := []string{key}
				if u.objects != nil {
					objects = u.objects(x.it)
				}
				if why := r.budgetGate(gctx, objects); why != "" {
					r.leave(x.pos, key, why, false)
					u.left(x.it, why)
					continue
				}
				start := time.Now()
				uctx, unitDone := r.unitContext(gctx)
				err := p.guard(uctx, func(ctx context.Context) error {
					if s != nil && s.conn.Conn().IsClosed() {
						s.release()
						s = nil
					}
					if s == nil {
						var err error
						if s, err = r.session(ctx, to); err != nil {
							s = nil
							return err
						}
					}
					return work(ctx, s, x.it)
				})
				if unitDone() {
					why := r.stoppedBy()
					r.leave(x.pos, key, why, true)
					u.left(x.it, why)
					continue
				}
				if err != nil {
					return err
				}
				if err := p.sleepAfter(gctx, time.Since(start)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	err = g.Wait()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return err
}

// checkpoint is what per-relation tasks heartbeat: the relations done so far
// (by schema.name, which survives OID changes such as REINDEX CONCURRENTLY)
// and their results, so a retried attempt skips them and still reports them.
type checkpoint[R any] struct {
	Done    []string `json:"done"`
	Results []R      `json:"results,omitempty"`
	// Plan maps the relations the attempt set out to work on to their OIDs
	// then, for tasks whose work gives a relation a new OID (REINDEX
	// CONCURRENTLY): a retry treats a relation whose OID has changed since
	// as done, whether or not a later checkpoint reached the server.
	Plan map[string]uint32 `json:"plan,omitempty"`
}

// tracker accumulates a task's checkpoint and heartbeats it after each
// relation. It is safe for concurrent use.
type tracker[R any] struct {
	r       *run
	mu      sync.Mutex
	cp      checkpoint[R]
	done    map[string]bool
	total   int
	resumed int
	// prevPlan is the plan of the checkpoint resumed from.
	prevPlan map[string]uint32
	// left are the results of units the budget left: reported, never
	// checkpointed, so that a retried attempt leaves (or does) them again.
	left []R
}

// newTracker loads the request's checkpoint; keys are the relations the task
// plans to work on (those already done count towards progress).
func newTracker[R any](r *run, keys []string) *tracker[R] {
	t := &tracker[R]{r: r, done: map[string]bool{}}
	var prev checkpoint[R]
	if driver.DecodeCheckpoint(r.req.Checkpoint, &prev) {
		t.cp = prev
		for _, k := range prev.Done {
			t.done[k] = true
		}
		t.resumed = len(prev.Done)
		t.prevPlan, t.cp.Plan = prev.Plan, nil
	}
	t.total = len(t.done)
	for _, k := range keys {
		if !t.done[k] {
			t.total++
		}
	}
	return t
}

func (t *tracker[R]) isDone(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done[key]
}

// finish marks key done with result res (nil for none) and heartbeats.
func (t *tracker[R]) finish(key string, res *R, note string) {
	t.mu.Lock()
	if !t.done[key] {
		t.done[key] = true
		t.cp.Done = append(t.cp.Done, key)
	}
	if res != nil {
		t.cp.Results = append(t.cp.Results, *res)
	}
	cp := t.copyLocked()
	pct := 100 * float64(len(cp.Done)) / float64(max(1, t.total))
	t.mu.Unlock()
	t.r.progress(pct, note, cp)
}

// leave records the result of a unit the budget left (not done) and
// heartbeats.
func (t *tracker[R]) leave(res R, note string) {
	t.mu.Lock()
	t.left = append(t.left, res)
	t.mu.Unlock()
	t.heartbeat(note)
}

// changedSincePlan reports whether the previous attempt planned key when
// it had another OID than oid: that attempt (or its statement, still
// running when its worker died) has rebuilt it.
func (t *tracker[R]) changedSincePlan(key string, oid uint32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	old, ok := t.prevPlan[key]
	return ok && old != oid
}

// plan records the OIDs of the relations about to be worked on and
// heartbeats the checkpoint durably: it is on the server before any of
// them is touched, so a retry can recognise those done even when the
// checkpoints that followed were lost with the worker.
func (t *tracker[R]) plan(oids map[string]uint32, note string) {
	t.mu.Lock()
	t.cp.Plan = oids
	cp := t.copyLocked()
	pct := 100 * float64(len(cp.Done)) / float64(max(1, t.total))
	t.mu.Unlock()
	t.r.report(driver.Progress{Pct: pct, Note: note, Checkpoint: cp, Durable: true})
}

// during runs fn (one long statement on one relation) while re-sending the
// heartbeat every HeartbeatInterval with the checkpoint as it is then; the
// checkpoint is copied only when a heartbeat is due.
func (t *tracker[R]) during(note string, fn func() error) error {
	return driver.During(t.r.d.opts.HeartbeatInterval, note, func(n string) { t.heartbeat(n) }, fn)
}

// heartbeat re-sends the current checkpoint with a new note.
func (t *tracker[R]) heartbeat(note string) {
	t.r.progress(t.pct(), note, t.snapshot())
}

func (t *tracker[R]) snapshot() checkpoint[R] {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.copyLocked()
}

// copyLocked copies the checkpoint (the plan is never mutated once set).
func (t *tracker[R]) copyLocked() checkpoint[R] {
	return checkpoint[R]{Done: slices.Clone(t.cp.Done), Results: slices.Clone(t.cp.Results), Plan: t.cp.Plan}
}

func (t *tracker[R]) pct() float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return 100 * float64(len(t.cp.Done)) / float64(max(1, t.total))
}

// results returns the results recorded so far, resumed ones included,
// then those of the units left.
func (t *tracker[R]) results() []R {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append(slices.Clone(t.cp.Results), t.left...)
}
