package activities

import (
	"context"

	"go.temporal.io/sdk/activity"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/internal/history"
)

// CarryStore keeps the units of work a task left when its budget ran out,
// per schedule, so the next run of the schedule (on any worker) starts with
// them; internal/history.Store is one.
type CarryStore interface {
	SaveCarriedUnits(ctx context.Context, c history.CarriedUnits) error
	LoadCarriedUnits(ctx context.Context, scheduleID, target, task string) (history.CarriedUnits, bool, error)
}

// carried returns the units the schedule's previous run of the task left
// (none for a job of no schedule, or when the store keeps none). A store
// that cannot answer costs the order of the work, not the work: logged.
func (a *Activities) carried(ctx context.Context, in TaskInput) []string {
	cs, ok := a.History.(CarryStore)
	if !ok || in.ScheduleID == "" {
		return nil
	}
	c, found, err := cs.LoadCarriedUnits(ctx, in.ScheduleID, in.Target, string(in.Task))
	if err != nil {
		activity.GetLogger(ctx).Warn("read the units the previous run left failed; starting in the usual order", "error", err)
		return nil
	}
	if !found {
		return nil
	}
	return c.Units
}

// saveCarried records what the task left for the next run of its schedule
// (nothing left clears the record).
func (a *Activities) saveCarried(ctx context.Context, in TaskInput, res driver.Result) {
	cs, ok := a.History.(CarryStore)
	if !ok || in.ScheduleID == "" {
		return
	}
	err := cs.SaveCarriedUnits(context.WithoutCancel(ctx), history.CarriedUnits{
		ScheduleID: in.ScheduleID, Target: in.Target, Task: string(in.Task),
		Units: res.UnitsLeft, StoppedBy: res.StoppedBy, JobID: in.JobID,
	})
	if err != nil {
		activity.GetLogger(ctx).Warn("record the units left for the next run failed", "error", err)
	}
}

// withBudgetDetails adds to a task's details what the job shows of its
// plan (a dry run) and of its budget: the units carried in from the
// previous run and those left for the next.
func withBudgetDetails(res driver.Result, dryRun bool, b driver.Budget) map[string]any {
	d := res.Details
	if d == nil {
		d = map[string]any{}
	}
	if dryRun {
		d["dry_run"] = true
		plan := res.Plan
		if plan == nil {
			plan = []driver.PlannedStatement{}
		}
		d["plan"] = plan
	}
	if len(b.Carried) > 0 {
		d["units_carried"] = b.Carried
	}
	if len(res.UnitsLeft) > 0 {
		d["units_left"] = res.UnitsLeft
		d["stopped_by"] = res.StoppedBy
	}
	return d
}
