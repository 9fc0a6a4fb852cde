package workflows

import (
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// DefaultHeartbeatTimeout is how long a task may go without a heartbeat
// before Temporal considers its worker gone and retries it elsewhere.
const DefaultHeartbeatTimeout = 30 * time.Second

// taskTimeouts turn a task's registered timeout class into the bound of one
// attempt; long tasks heartbeat, so a dead worker is noticed by the
// heartbeat timeout, not by this.
var taskTimeouts = map[domain.TimeoutClass]time.Duration{
	domain.TimeoutShort: 2 * time.Hour,
	domain.TimeoutLong:  12 * time.Hour,
}

func taskTimeout(t domain.TaskType) time.Duration { return taskTimeouts[t.Timeout()] }

// taskActivityOptions is the preset for a heartbeating maintenance task:
// exponential retries, non-retryable for failures a retry cannot fix, and a
// summary the Temporal UI shows on the timeline.
func taskActivityOptions(in MaintenanceInput, t domain.TaskType, i, n int) workflow.ActivityOptions {
	hb := in.HeartbeatTimeout
	if hb <= 0 {
		hb = DefaultHeartbeatTimeout
	}
	return workflow.ActivityOptions{
		ActivityID:          string(t) + "-" + strconv.Itoa(i+1),
		StartToCloseTimeout: taskTimeout(t),
		HeartbeatTimeout:    hb,
		WaitForCancellation: true,
		Summary:             taskSummary(in, t, i, n),
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        2 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        5 * time.Minute,
			MaximumAttempts:        5,
			NonRetryableErrorTypes: driver.NonRetryableKinds(),
		},
	}
}

// shortActivityOptions is the preset for quick bookkeeping calls.
func shortActivityOptions(summary string) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		Summary:             summary,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			MaximumAttempts:    10,
		},
	}
}

// taskSummary is the timeline's line of task i of n: a dry run says it
// plans only.
func taskSummary(in MaintenanceInput, t domain.TaskType, i, n int) string {
	s := t.Title() + " on " + in.Spec.Target + " (task " + strconv.Itoa(i+1) + "/" + strconv.Itoa(n) + ")"
	if in.DryRun {
		s = "Dry run: plan " + s + ", execute nothing"
	}
	return s
}
