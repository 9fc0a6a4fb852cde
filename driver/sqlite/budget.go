package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/themis-maintenance/themis/driver"
)

// wholeDatabase is the unit name of a task that works on the whole file in
// one statement (VACUUM, wal_checkpoint, integrity_check): SQLite's name
// for the database, as in PRAGMA main.integrity_check.
const wholeDatabase = "main"

// unitBudget applies driver.Budget to the units of one task (a table, an
// index, or the whole database): no unit starts at or after
// StopStartingAt, nor one the command log predicts would end after it
// (driver.UnitHistory); a unit whose statement still runs at HardStopAt is
// interrupted (SQLite rolls it back) and left with the rest. Units left
// are reported in Result.UnitsLeft in the order they were to run; the task
// succeeds. In a dry run the clock is simulated: it advances by each planned
// unit's predicted duration.
type unitBudget struct {
	b         driver.Budget
	predicted map[string]time.Duration
	// predictErr is why there are no predictions, when reading them failed.
	predictErr error
	dryRun     bool
	dryStart   time.Time
	elapsed    time.Duration

	left []string
	// tooLong are the units left because their predicted duration would
	// not fit before the budget's end, with that prediction in ms.
	tooLong map[string]int64
	// interrupted is the unit cancelled at HardStopAt, if any.
	interrupted string
	stopped     bool
}

// newUnitBudget reads the units' predicted durations from the history store
// when it keeps them.
func newUnitBudget(ctx context.Context, req driver.Request) *unitBudget {
	u := &unitBudget{b: req.Budget, dryRun: req.DryRun, dryStart: time.Now(), tooLong: map[string]int64{}}
	if uh, ok := req.History.(driver.UnitHistory); ok {
		u.predicted, u.predictErr = uh.UnitDurations(ctx, req.Target.Name, req.Task)
	}
	return u
}

func (u *unitBudget) now() time.Time {
	if u.dryRun {
		return u.dryStart.Add(u.elapsed)
	}
	return time.Now()
}

// end is when units must have ended: StopStartingAt, else HardStopAt.
func (u *unitBudget) end() time.Time {
	if !u.b.StopStartingAt.IsZero() {
		return u.b.StopStartingAt
	}
	return u.b.HardStopAt
}

// order puts the units the previous run left (Budget.Carried) first, in
// that order, then the others in theirs.
func (u *unitBudget) order(names []string) []string {
	if len(u.b.Carried) == 0 {
		return names
	}
	in := make(map[string]bool, len(names))
	for _, n := range names {
		in[n] = true
	}
	out := make([]string, 0, len(names))
	first := map[string]bool{}
	for _, n := range u.b.Carried {
		if in[n] && !first[n] {
			first[n] = true
			out = append(out, n)
		}
	}
	for _, n := range names {
		if !first[n] {
			out = append(out, n)
		}
	}
	return out
}

// admit reports whether unit name may start now; rest are the units from
// name on that are still to run. When the budget's end has come, rest is
// left and every later admit refuses; a unit predicted not to fit is left
// alone and later, shorter ones may still start.
func (u *unitBudget) admit(name string, rest []string) bool {
	if u.stopped {
		return false
	}
	end := u.end()
	if end.IsZero() {
		u.elapsed += u.predicted[name]
		return true
	}
	now := u.now()
	if !now.Before(end) || !u.b.HardStopAt.IsZero() && !now.Before(u.b.HardStopAt) {
		u.stop(rest)
		return false
	}
	if p := u.predicted[name]; p > 0 && now.Add(p).After(end) {
		u.left = append(u.left, name)
		u.tooLong[name] = p.Milliseconds()
		return false
	}
	u.elapsed += u.predicted[name]
	return true
}

// stop leaves rest and every unit after it.
func (u *unitBudget) stop(rest []string) {
	u.stopped = true
	u.left = append(u.left, rest...)
}

// unitContext bounds one unit's statements by HardStopAt (not in a dry
// run, which runs none).
func (u *unitBudget) unitContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if u.dryRun || u.b.HardStopAt.IsZero() {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, u.b.HardStopAt)
}

// hardStopped reports whether a unit's error came from HardStopAt: its
// context ended while the task's did not. The unit and rest are then left.
func (u *unitBudget) hardStopped(ctx, unitCtx context.Context, name string, rest []string) bool {
	if ctx.Err() != nil || unitCtx.Err() == nil || u.b.HardStopAt.IsZero() {
		return false
	}
	u.interrupted = name
	u.stop(rest)
	return true
}

// stoppedBy is Budget.StoppedBy, window_closed when the budget does not say.
func (u *unitBudget) stoppedBy() string {
	if u.b.StoppedBy != "" {
		return u.b.StoppedBy
	}
	return driver.StoppedWindowClosed
}

// report puts the units left into res (UnitsLeft, StoppedBy, a sentence
// appended to the summary naming how many, and details); noun names the
// units ("tables", "indexes").
func (u *unitBudget) report(res *driver.Result, noun string) {
	if res.Details == nil {
		res.Details = map[string]any{}
	}
	if u.predictErr != nil {
		res.Details["prediction_error"] = u.predictErr.Error()
	}
	if len(u.left) == 0 {
		return
	}
	res.UnitsLeft = append([]string(nil), u.left...)
	res.StoppedBy = u.stoppedBy()
	res.Details["units_left"] = res.UnitsLeft
	res.Details["stopped_by"] = res.StoppedBy
	s := fmt.Sprintf("; %d %s left for the next run (skipped: %s", len(u.left), noun, res.StoppedBy)
	if len(u.tooLong) > 0 {
		res.Details["predicted_too_long_ms"] = u.tooLong
		s += fmt.Sprintf(", %d of them predicted not to fit", len(u.tooLong))
	}
	if u.interrupted != "" {
		res.Details["interrupted"] = u.interrupted
		s += ", " + u.interrupted + " interrupted at the hard stop"
	}
	res.Summary += s + ")"
}

// admitWhole is admit for a task whose one unit is the whole database.
func (u *unitBudget) admitWhole() bool {
	return u.admit(wholeDatabase, []string{wholeDatabase})
}

// notStarted is the result of a whole-database task the budget kept from
// starting, or interrupted at its hard stop (SQLite rolled it back).
func (u *unitBudget) notStarted(task string) driver.Result {
	res := driver.Result{
		Summary: fmt.Sprintf("%s not started: the budget ended at %s", task, u.end().UTC().Format(time.RFC3339)),
		Details: map[string]any{},
	}
	if u.interrupted != "" {
		res.Summary = fmt.Sprintf("%s interrupted at the hard stop %s and rolled back", task, u.b.HardStopAt.UTC().Format(time.RFC3339))
	}
	u.report(&res, "unit (the whole database)")
	return res
}
