package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/themis-maintenance/themis/activities"
)

// targetSlot is a heavy-task slot a workflow asked for (see
// TargetLockWorkflow): held once granted, until released.
type targetSlot struct {
	target    string
	lockID    string
	requestID string
	held      bool
	// waited is how long the grant took; queued says whether the lock made
	// the requester wait, and holders whom for (the last news).
	waited  time.Duration
	queued  bool
	holders []string
}

// errWindowClosed ends a wait for a slot at the deadline.
var errWindowClosed = temporal.NewApplicationError("the maintenance window closed while waiting for the target", "WindowClosed")

// slotRequest names who asks for a slot on which target, for what.
type slotRequest struct {
	target string
	// key makes the request id unique within the run ("task-3", "restore").
	key   string
	owner string
	task  string
	// deadline bounds the wait (zero: none): errWindowClosed after it.
	deadline time.Time
	// onQueued is told whom the requester waits for, on every news.
	onQueued func(LockQueued)
}

// acquireSlot asks target's lock workflow for a heavy-task slot and waits
// until it is granted, the deadline passes (errWindowClosed) or ctx is
// cancelled. A request that ends without a slot is withdrawn.
func acquireSlot(ctx workflow.Context, r slotRequest) (*targetSlot, error) {
	info := workflow.GetInfo(ctx)
	start := workflow.Now(ctx)
	s := &targetSlot{target: r.target, lockID: TargetLockID(info.TaskQueueName, r.target), requestID: info.WorkflowExecution.RunID + "/" + r.key}
	if !r.deadline.IsZero() && !start.Before(r.deadline) {
		return nil, errWindowClosed
	}
	actx := workflow.WithActivityOptions(ctx, shortActivityOptions("Ask for a heavy-task slot on "+r.target+" ("+r.task+")"))
	err := workflow.ExecuteActivity(actx, RequestTargetSlotActivity, activities.TargetSlotInput{
		LockWorkflowID: s.lockID, LockWorkflowType: TargetLockWorkflowName, LockSignal: LockRequestSignal,
		TaskQueue: info.TaskQueueName, Target: r.target,
		Request: activities.LockRequest{
			RequestID: s.requestID, WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
			Owner: r.owner, Task: r.task, AtMs: start.UnixMilli(),
		},
	}).Get(actx, nil)
	if err != nil {
		if ctx.Err() != nil {
			s.held = true // the request may have been delivered: withdraw it
			s.release(ctx, "cancelled while asking")
			return nil, err
		}
		return nil, fmt.Errorf("ask for a heavy-task slot on %s: %w", r.target, err)
	}

	// The timer is cancelled when acquireSlot returns, after a release.
	tctx, cancelTimer := workflow.WithCancel(ctx)
	defer cancelTimer()
	var timer workflow.Future
	if !r.deadline.IsZero() {
		timer = workflow.NewTimerWithOptions(tctx, r.deadline.Sub(workflow.Now(ctx)),
			workflow.TimerOptions{Summary: "Maintenance window closes while waiting for " + r.target})
	}
	waitErr := s.awaitGrant(ctx, r, timer)
	s.waited = workflow.Now(ctx).Sub(start)
	if waitErr != nil {
		s.held = true // withdraw the request, or free a grant on its way
		s.release(ctx, waitErr.Error())
		return s, waitErr
	}
	return s, nil
}

// awaitGrant waits until the slot asked for is granted (nil), the deadline
// timer (nil: none) fires (errWindowClosed) or ctx is cancelled (a canceled
// error).
func (s *targetSlot) awaitGrant(ctx workflow.Context, r slotRequest, timer workflow.Future) error {
	var waitErr error
	cancelled := func() error { return temporal.NewCanceledError("cancelled while waiting for " + r.target) }
	grants := workflow.GetSignalChannel(ctx, LockGrantedSignal)
	queued := workflow.GetSignalChannel(ctx, LockQueuedSignal)
	for !s.held && waitErr == nil {
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(grants, func(c workflow.ReceiveChannel, _ bool) {
			var g LockGrant
			c.Receive(ctx, &g)
			s.held = g.RequestID == s.requestID // older grants were withdrawn
		})
		sel.AddReceive(queued, func(c workflow.ReceiveChannel, _ bool) {
			var q LockQueued
			c.Receive(ctx, &q)
			if q.RequestID == s.requestID {
				s.queued, s.holders = true, q.Holders
				if r.onQueued != nil {
					r.onQueued(q)
				}
			}
		})
		if timer != nil {
			sel.AddFuture(timer, func(f workflow.Future) {
				if f.Get(ctx, nil) == nil {
					waitErr = errWindowClosed
				} else {
					// Cancelled with ctx (it was so before the timer
					// started, or in the same workflow task as a case
					// above): ctx.Done is ready too, but this case comes
					// first, and left open it would spin forever.
					waitErr = cancelled()
				}
			})
		}
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) { waitErr = cancelled() })
		sel.Select(ctx)
	}
	return waitErr
}

// release frees the slot (or withdraws the request), even when ctx is
// cancelled. The lock is signalled by workflow id alone: it may have
// continued as new since.
func (s *targetSlot) release(ctx workflow.Context, reason string) {
	if s == nil || !s.held {
		return
	}
	s.held = false
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	err := workflow.SignalExternalWorkflow(dctx, s.lockID, "", LockReleaseSignal, LockRelease{RequestID: s.requestID, Reason: reason}).Get(dctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("release of a heavy-task slot failed; the lock frees it when it sees this run closed", "target", s.target, "error", err)
	}
}

// lastHolders is whom the requester last waited for.
func (s *targetSlot) lastHolders() []string {
	if s == nil {
		return nil
	}
	return s.holders
}

// waitingFor says whom a queued requester waits for.
func waitingFor(target string, q LockQueued) string {
	held := "another job"
	if len(q.Holders) > 0 {
		held = strings.Join(q.Holders, ", ")
	}
	msg := fmt.Sprintf("Waiting for target %s: held by %s", target, held)
	if q.Ahead > 0 {
		msg += fmt.Sprintf(" (%d more ahead)", q.Ahead)
	}
	return msg
}

func isWindowClosed(err error) bool { return errors.Is(err, errWindowClosed) }
