package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// Window budgets (driver.Request.Budget). forEachSession, which starts
// every unit of the per-relation tasks, asks the budget before each unit:
// none starts at or after Budget.StopStartingAt (or HardStopAt), nor one
// whose predicted duration — the median of its statements' durations in
// the command log (driver.UnitHistory.UnitDurations) — would end after
// StopStartingAt. A unit whose statement still runs at HardStopAt is
// cancelled server-side, as a cancelled task's is (REINDEX CONCURRENTLY's
// invalid copy is dropped as after any failed rebuild). Units not started
// or cancelled are left: the task reports them in Result.UnitsLeft, in the
// order they were to run, and in its per-relation results as skipped, and
// succeeds; the next run of the schedule passes them back as
// Budget.Carried, and they go first.

// errHardStop is the cause of a unit cancelled at Budget.HardStopAt.
var errHardStop = errors.New("cancelled at the hard stop of the budget")

// leftUnit is a unit the budget left, at its position in the run order.
type leftUnit struct {
	pos    int
	key    string
	reason string
}

// budgetState is what a run knows of its budget.
type budgetState struct {
	mu          sync.Mutex
	left        []leftUnit
	hardStopped []string
	seq         int // positions of units run outside forEachSession
	// dryElapsed is the predicted time of the units a dry run has
	// planned: its clock, since nothing it plans takes time.
	dryElapsed time.Duration
}

// stoppedBy names the budget's limit (Budget.StoppedBy, window_closed when
// unnamed).
func (r *run) stoppedBy() string {
	if s := r.req.Budget.StoppedBy; s != "" {
		return s
	}
	return driver.StoppedWindowClosed
}

// unitDurations returns the predicted duration of the task's statements
// per object, from the command log when the history store keeps one
// (empty otherwise, or when it cannot be read: then nothing is predicted).
// It is read once per run.
func (r *run) unitDurations(ctx context.Context) map[string]time.Duration {
	r.durOnce.Do(func() {
		r.durations = map[string]time.Duration{}
		uh, ok := r.req.History.(driver.UnitHistory)
		if !ok {
			return
		}
		d, err := uh.UnitDurations(ctx, r.target().Name, r.req.Task)
		if err != nil {
			r.durErr = err
			return
		}
		if d != nil {
			r.durations = d
		}
	})
	return r.durations
}

// predict sums the predicted durations of objects (0: unknown).
func (r *run) predict(ctx context.Context, objects []string) time.Duration {
	d := r.unitDurations(ctx)
	var sum time.Duration
	for _, o := range objects {
		sum += d[o]
	}
	return sum
}

// budgetGate says why a unit whose statements work on objects may not
// start now ("" = it may). A dry run's clock advances by the predicted
// durations of the units it plans, one after the other.
func (r *run) budgetGate(ctx context.Context, objects []string) string {
	b := r.req.Budget
	if !b.Bounded() {
		return ""
	}
	now := time.Now()
	if r.dry() {
		r.budget.mu.Lock()
		now = now.Add(r.budget.dryElapsed)
		r.budget.mu.Unlock()
	}
	if (!b.StopStartingAt.IsZero() && !now.Before(b.StopStartingAt)) || (!b.HardStopAt.IsZero() && !now.Before(b.HardStopAt)) {
		return r.stoppedBy()
	}
	end := b.StopStartingAt
	if end.IsZero() {
		end = b.HardStopAt
	}
	p := r.predict(ctx, objects)
	if p > 0 && now.Add(p).After(end) {
		return fmt.Sprintf("would not fit: predicted %s, %s left", p.Round(time.Millisecond), end.Sub(now).Round(time.Second))
	}
	if r.dry() {
		r.budget.mu.Lock()
		r.budget.dryElapsed += p
		r.budget.mu.Unlock()
	}
	return ""
}

// leave records unit key as left at position pos in the run order.
func (r *run) leave(pos int, key, reason string, hardStopped bool) {
	r.budget.mu.Lock()
	defer r.budget.mu.Unlock()
	r.budget.left = append(r.budget.left, leftUnit{pos: pos, key: key, reason: reason})
	if hardStopped {
		r.budget.hardStopped = append(r.budget.hardStopped, key)
	}
}

// nextPos numbers the units of a task that starts them itself (not
// through forEachSession), in order.
func (r *run) nextPos() int {
	r.budget.mu.Lock()
	defer r.budget.mu.Unlock()
	r.budget.seq++
	return r.budget.seq
}

// unitContext bounds one unit by the budget's hard stop; hardStopped tells,
// once the unit is over, whether that is what ended it.
func (r *run) unitContext(ctx context.Context) (uctx context.Context, done func() (hardStopped bool)) {
	hard := r.req.Budget.HardStopAt
	if hard.IsZero() {
		return ctx, func() bool { return false }
	}
	uctx, cancel := context.WithDeadlineCause(ctx, hard, errHardStop)
	return uctx, func() bool {
		stopped := errors.Is(context.Cause(uctx), errHardStop) && ctx.Err() == nil
		cancel()
		return stopped
	}
}

// carriedFirst reorders items: the units the previous run left
// (Budget.Carried) that are still among them first, in that order, then
// the rest in their order.
func carriedFirst[T any](items []T, key func(T) string, carried []string) []T {
	if len(carried) == 0 {
		return items
	}
	at := make(map[string]int, len(items))
	for i, it := range items {
		at[key(it)] = i
	}
	out := make([]T, 0, len(items))
	taken := make([]bool, len(items))
	for _, k := range carried {
		if i, ok := at[k]; ok && !taken[i] {
			out = append(out, items[i])
			taken[i] = true
		}
	}
	for i, it := range items {
		if !taken[i] {
			out = append(out, it)
		}
	}
	return out
}

// budgetResult adds the units left to res: UnitsLeft in run order,
// StoppedBy, the summary and details.
func (r *run) budgetResult(res *driver.Result) {
	r.budget.mu.Lock()
	left := append([]leftUnit(nil), r.budget.left...)
	hard := append([]string(nil), r.budget.hardStopped...)
	r.budget.mu.Unlock()
	if r.durErr != nil {
		res.Details["prediction_error"] = r.durErr.Error()
	}
	if len(left) == 0 {
		return
	}
	sort.SliceStable(left, func(i, j int) bool { return left[i].pos < left[j].pos })
	res.UnitsLeft = make([]string, len(left))
	reasons := map[string]string{}
	for i, u := range left {
		res.UnitsLeft[i] = u.key
		reasons[u.key] = u.reason
	}
	res.StoppedBy = r.stoppedBy()
	res.Summary += fmt.Sprintf("; %d unit(s) left for the next run (%s)", len(left), res.StoppedBy)
	res.Details["units_left"] = res.UnitsLeft
	res.Details["units_left_reasons"] = reasons
	res.Details["stopped_by"] = res.StoppedBy
	if len(hard) > 0 {
		sort.Strings(hard)
		res.Details["hard_stopped"] = hard
	}
}

// integrityTasks are the task types whose good checks count for the
// rotation of integrity checks.
var integrityTasks = []domain.TaskType{domain.TaskConsistencyCheck, domain.TaskFullCheckDB}

// lastGoodChecks returns when each relation was last checked without
// error by consistency_check or full_checkdb, from the command log (nil
// when the history store keeps none).
func (r *run) lastGoodChecks(ctx context.Context) (map[string]time.Time, error) {
	uh, ok := r.req.History.(driver.UnitHistory)
	if !ok {
		return nil, nil
	}
	return uh.LastGoodChecks(ctx, r.target().Name, integrityTasks)
}

// budgetWait waits while the pacer throttles, no longer than until the
// budget stops starting units (the unit is then left, not started late).
func (r *run) budgetWait(ctx context.Context, p *pacer) error {
	stop := r.req.Budget.StopStartingAt
	if p == nil || stop.IsZero() {
		return p.wait(ctx)
	}
	wctx, cancel := context.WithDeadline(ctx, stop)
	defer cancel()
	if err := p.wait(wctx); err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}
