package starter

import (
	"testing"

	"go.temporal.io/api/enums/v1"

	"github.com/themis-maintenance/themis/domain"
)

// A drill reads final only once its workflow has closed: before, its
// clean-up and report still run.
func TestSettleDrillState(t *testing.T) {
	const closed = int64(1_800_000_000_000)
	running, completed, failed, terminated := enums.WORKFLOW_EXECUTION_STATUS_RUNNING, enums.WORKFLOW_EXECUTION_STATUS_COMPLETED,
		enums.WORKFLOW_EXECUTION_STATUS_FAILED, enums.WORKFLOW_EXECUTION_STATUS_TERMINATED
	for _, c := range []struct {
		queried    domain.DrillState
		finishedAt int64
		status     enums.WorkflowExecutionStatus
		state      domain.DrillState
		finished   int64
	}{
		{domain.DrillRunning, 0, running, domain.DrillRunning, 0},
		{domain.DrillAwaiting, 0, running, domain.DrillAwaiting, 0},
		// The outcome is settled, the clean-up is running.
		{domain.DrillAborted, 0, running, domain.DrillCleaningUp, 0},
		{domain.DrillPassed, 0, running, domain.DrillCleaningUp, 0},
		// The report step has set finished_at, its activity still runs.
		{domain.DrillFailed, closed - 50, running, domain.DrillCleaningUp, 0},
		{domain.DrillPassed, closed - 50, completed, domain.DrillPassed, closed - 50},
		{domain.DrillAborted, closed - 50, failed, domain.DrillAborted, closed - 50},
		// Closed without reaching its own end.
		{domain.DrillRunning, 0, terminated, domain.DrillAborted, closed},
		{domain.DrillAwaiting, 0, enums.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, domain.DrillAborted, closed},
	} {
		d := domain.Drill{State: c.queried, FinishedAtMs: c.finishedAt}
		settleDrillState(&d, c.status, closed)
		if d.State != c.state || d.FinishedAtMs != c.finished {
			t.Errorf("%s (finished %d) with workflow %s: %s, finished %d; want %s, %d",
				c.queried, c.finishedAt, c.status, d.State, d.FinishedAtMs, c.state, c.finished)
		}
	}
}
