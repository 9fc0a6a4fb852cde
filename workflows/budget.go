package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// windowBudgetChange versions the units-of-work budget (GetVersion).
const windowBudgetChange = "window-budget"

// setBudget fixes when the job's heavy tasks stop starting units of work:
// at the close of an enforced window (a scheduled run; a forced one ignores
// the window) or time_limit_minutes after the job started, whichever comes
// first. A unit still running when the window closes is cancelled and left
// for the next run. Tasks started after the budget is spent are skipped.
func (r *jobRun) setBudget(ctx workflow.Context) {
	spec := r.in.Spec
	var windowEnd time.Time
	if spec.EnforceWindow && !r.in.Forced && spec.WindowStartHour != spec.WindowEndHour {
		if r.deadline == nil {
			d := windowDeadline(ctx, r.in)
			r.deadline = &d
		}
		windowEnd = *r.deadline
	}
	b := driver.Budget{StopStartingAt: windowEnd, HardStopAt: windowEnd, StoppedBy: driver.StoppedWindowClosed}
	if spec.TimeLimitMinutes > 0 {
		limit := time.UnixMilli(r.job.StartedAtMs).Add(time.Duration(spec.TimeLimitMinutes) * time.Minute)
		if windowEnd.IsZero() || limit.Before(windowEnd) {
			b.StopStartingAt, b.StoppedBy = limit, driver.StoppedTimeLimit
		}
	}
	r.budget = b
}

// budgetSpent says why task i must not start at all ("" when it may): the
// time to start units has passed.
func (r *jobRun) budgetSpent(ctx workflow.Context) string {
	b := r.budget
	if b.StopStartingAt.IsZero() || workflow.Now(ctx).Before(b.StopStartingAt) {
		return ""
	}
	what := "the maintenance window closed"
	if b.StoppedBy == driver.StoppedTimeLimit {
		what = fmt.Sprintf("the time limit of %d min ran out", r.in.Spec.TimeLimitMinutes)
	}
	return fmt.Sprintf("%s: %s at %s", b.StoppedBy, what, b.StopStartingAt.UTC().Format(time.RFC3339))
}

// dryRunSkip says why task t is not planned in a dry run ("" when the
// worker is asked: its driver plans the task, or says why it does not).
func dryRunSkip(t domain.TaskType) string {
	if t == domain.TaskDisasterRecoveryDrill {
		return "dry run: a DR drill is never simulated (it restores a real copy; run it with its approvals)"
	}
	return ""
}
