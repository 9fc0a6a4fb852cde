package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/themis-maintenance/themis/activities"
)

// One heavy task per target, across the cluster: every target has a lock
// workflow (TargetLockWorkflow, id TargetLockID(task queue, target)) that hands out up
// to max_heavy_tasks slots, first come first served. A requester (a job
// before a heavy task, a drill before its restore) delivers its request with
// signal-with-start from an activity, so the lock workflow starts when none
// runs; the lock workflow answers by signalling the requester: granted, or
// queued behind the current holders. The requester releases its slot by
// signal, from a disconnected context so that a cancelled job releases too.
// A holder that closed without releasing (terminated, timed out) is found by
// a periodic check of the holders' executions and its slot freed. The lock
// workflow continues as new after a number of requests, and ends when no
// slot is held and nobody waits.
const (
	// TargetLockWorkflowName is the workflow type of a target's lock.
	TargetLockWorkflowName = "ThemisTargetLock"
	// LockRequestSignal (payload activities.LockRequest) asks for a slot.
	LockRequestSignal = "request-slot"
	// LockReleaseSignal (payload LockRelease) frees a slot or withdraws a
	// queued request.
	LockReleaseSignal = "release-slot"
	// LockGrantedSignal (payload LockGrant) tells a requester it holds a slot.
	LockGrantedSignal = "slot-granted"
	// LockQueuedSignal (payload LockQueued) tells a requester it waits.
	LockQueuedSignal = "slot-queued"
	// LockStateQuery returns the lock's TargetLockInput (holders, queue).
	LockStateQuery = "slots"

	// RequestTargetSlotActivity delivers a request (signal-with-start).
	RequestTargetSlotActivity = "target_slot_request"
	// GoneHoldersActivity finds holders whose execution has closed.
	GoneHoldersActivity = "target_slot_gone_holders"

	// DefaultHolderCheckInterval is how often a lock with holders checks
	// that they are still running.
	DefaultHolderCheckInterval = 30 * time.Second
	// DefaultLockContinueAfter is how many signals a lock run handles
	// before it continues as new, which keeps its history small.
	DefaultLockContinueAfter = 500
	// DefaultLockIdleTimeout is how long an idle lock waits for a request
	// before it ends.
	DefaultLockIdleTimeout = time.Minute
)

// TargetLockID is the workflow id of target's lock workflow for the
// workers of taskQueue: one lock per target of a deployment (its task
// queue, in one namespace), however many workers and API replicas it has.
func TargetLockID(taskQueue, target string) string {
	return "themis-target-lock-" + target + "@" + taskQueue
}

// TargetLockInput is the state of a lock: it starts a lock workflow (target
// and max slots only) and carries holders and queue across continue-as-new.
type TargetLockInput struct {
	Target   string `json:"target"`
	MaxSlots int    `json:"max_slots"`
	// Holders hold a slot; Queue waits for one, oldest first.
	Holders []activities.LockRequest `json:"holders,omitempty"`
	Queue   []activities.LockRequest `json:"queue,omitempty"`
	// HolderCheckInterval and ContinueAfter: zero takes the defaults
	// (tests shorten them).
	HolderCheckInterval time.Duration `json:"holder_check_interval,omitempty"`
	ContinueAfter       int           `json:"continue_after,omitempty"`
	// IdleTimeout is how long a lock nobody holds or waits for lives on.
	IdleTimeout time.Duration `json:"idle_timeout,omitempty"`
}

// LockRelease frees the slot of a request, or withdraws it from the queue.
type LockRelease struct {
	RequestID string `json:"request_id"`
	Reason    string `json:"reason,omitempty"`
}

// LockGrant answers a request with a slot.
type LockGrant struct {
	RequestID string `json:"request_id"`
}

// LockQueued answers a request that must wait: who holds the slots and how
// many requests are ahead of it.
type LockQueued struct {
	RequestID string   `json:"request_id"`
	Holders   []string `json:"holders"`
	Ahead     int      `json:"ahead"`
}

type targetLock struct {
	ctx workflow.Context
	s   TargetLockInput
}

// TargetLockWorkflow grants a target's heavy-task slots (see above).
func TargetLockWorkflow(ctx workflow.Context, in TargetLockInput) error {
	if in.HolderCheckInterval <= 0 {
		in.HolderCheckInterval = DefaultHolderCheckInterval
	}
	if in.ContinueAfter <= 0 {
		in.ContinueAfter = DefaultLockContinueAfter
	}
	if in.IdleTimeout <= 0 {
		in.IdleTimeout = DefaultLockIdleTimeout
	}
	in.MaxSlots = max(1, in.MaxSlots)
	l := &targetLock{ctx: ctx, s: in}
	if err := workflow.SetQueryHandler(ctx, LockStateQuery, func() (TargetLockInput, error) { return l.s, nil }); err != nil {
		return err
	}
	requests := workflow.GetSignalChannel(ctx, LockRequestSignal)
	releases := workflow.GetSignalChannel(ctx, LockReleaseSignal)
	var check workflow.Future
	handled := 0
	for {
		l.grant()
		l.describe()
		if len(l.s.Holders) == 0 && len(l.s.Queue) == 0 {
			// Idle: wait a little for the next request (jobs often come
			// back to back), then end; a later request starts a new run.
			ok, err := workflow.AwaitWithTimeout(ctx, l.s.IdleTimeout, func() bool { return requests.Len() > 0 || releases.Len() > 0 })
			if err != nil || (!ok && !l.drain(requests, releases)) {
				return err
			}
			l.drain(requests, releases)
			continue
		}
		if handled >= l.s.ContinueAfter {
			l.drain(requests, releases)
			return workflow.NewContinueAsNewError(ctx, TargetLockWorkflowName, l.s)
		}
		if check == nil && len(l.s.Holders) > 0 {
			check = workflow.NewTimerWithOptions(ctx, l.s.HolderCheckInterval, workflow.TimerOptions{Summary: "Check that the holders still run"})
		}
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(requests, func(c workflow.ReceiveChannel, _ bool) {
			var r activities.LockRequest
			c.Receive(ctx, &r)
			l.request(r)
		})
		sel.AddReceive(releases, func(c workflow.ReceiveChannel, _ bool) {
			var r LockRelease
			c.Receive(ctx, &r)
			l.release(r.RequestID, r.Reason)
		})
		if check != nil {
			sel.AddFuture(check, func(workflow.Future) {
				check = nil
				l.checkHolders()
			})
		}
		sel.Select(ctx)
		handled++
	}
}

// drain handles the signals already received; it reports whether there
// were any (a lock must not end or continue as new with signals unread).
func (l *targetLock) drain(requests, releases workflow.ReceiveChannel) bool {
	got := false
	for {
		var r activities.LockRequest
		if requests.ReceiveAsync(&r) {
			l.request(r)
			got = true
			continue
		}
		var rel LockRelease
		if releases.ReceiveAsync(&rel) {
			l.release(rel.RequestID, rel.Reason)
			got = true
			continue
		}
		return got
	}
}

func (l *targetLock) request(r activities.LockRequest) {
	if r.MaxSlots > 0 {
		l.s.MaxSlots = r.MaxSlots // the newest configuration applies
	}
	has := func(q activities.LockRequest) bool { return q.RequestID == r.RequestID }
	if slices.ContainsFunc(l.s.Holders, has) || slices.ContainsFunc(l.s.Queue, has) {
		return // a retried delivery of the same request
	}
	l.s.Queue = append(l.s.Queue, r)
	// grant gives the free slots to the oldest requests; the rest wait.
	if len(l.s.Holders)+len(l.s.Queue) > l.s.MaxSlots {
		if err := l.tell(r, LockQueuedSignal, LockQueued{RequestID: r.RequestID, Holders: l.holderNames(), Ahead: len(l.s.Queue) - 1}); err != nil {
			l.s.Queue = l.s.Queue[:len(l.s.Queue)-1]
		}
	}
}

func (l *targetLock) release(id, reason string) {
	match := func(q activities.LockRequest) bool { return q.RequestID == id }
	if i := slices.IndexFunc(l.s.Holders, match); i >= 0 {
		workflow.GetLogger(l.ctx).Info("slot released", "holder", l.s.Holders[i].Owner, "reason", reason)
		l.s.Holders = slices.Delete(l.s.Holders, i, i+1)
		return
	}
	l.s.Queue = slices.DeleteFunc(l.s.Queue, match)
}

// grant hands free slots to the oldest requests. A requester that can no
// longer be signalled (it has closed) is dropped.
func (l *targetLock) grant() {
	changed := false
	for len(l.s.Holders) < l.s.MaxSlots && len(l.s.Queue) > 0 {
		r := l.s.Queue[0]
		l.s.Queue = l.s.Queue[1:]
		if err := l.tell(r, LockGrantedSignal, LockGrant{RequestID: r.RequestID}); err != nil {
			continue
		}
		l.s.Holders = append(l.s.Holders, r)
		changed = true
	}
	if !changed {
		return
	}
	// Those still waiting learn who they wait for now.
	for i, r := range l.s.Queue {
		_ = l.tell(r, LockQueuedSignal, LockQueued{RequestID: r.RequestID, Holders: l.holderNames(), Ahead: i})
	}
}

func (l *targetLock) tell(r activities.LockRequest, signal string, arg any) error {
	err := workflow.SignalExternalWorkflow(l.ctx, r.WorkflowID, r.RunID, signal, arg).Get(l.ctx, nil)
	if err != nil {
		workflow.GetLogger(l.ctx).Warn("requester unreachable; request dropped", "requester", r.WorkflowID, "signal", signal, "error", err)
	}
	return err
}

// checkHolders frees the slots of holders whose execution has closed
// without releasing.
func (l *targetLock) checkHolders() {
	if len(l.s.Holders) == 0 {
		return
	}
	holders := make([]activities.LockHolder, len(l.s.Holders))
	for i, h := range l.s.Holders {
		holders[i] = activities.LockHolder{RequestID: h.RequestID, WorkflowID: h.WorkflowID, RunID: h.RunID}
	}
	actx := workflow.WithActivityOptions(l.ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		Summary:             fmt.Sprintf("Check that the %d holder(s) of %s still run", len(holders), l.s.Target),
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 2},
	})
	var gone []string
	if err := workflow.ExecuteActivity(actx, GoneHoldersActivity, holders).Get(actx, &gone); err != nil {
		workflow.GetLogger(l.ctx).Warn("holder check failed; next check later", "error", err)
		return
	}
	for _, id := range gone {
		l.release(id, "holder closed without releasing")
	}
}

func (l *targetLock) holderNames() []string {
	names := make([]string, len(l.s.Holders))
	for i, h := range l.s.Holders {
		names[i] = h.Owner + " (" + h.Task + ")"
	}
	return names
}

func (l *targetLock) describe() {
	workflow.SetCurrentDetails(l.ctx, fmt.Sprintf("Target `%s`: %d of %d heavy-task slot(s) held by %s; %d waiting",
		l.s.Target, len(l.s.Holders), l.s.MaxSlots, orNone(l.holderNames()), len(l.s.Queue)))
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "nobody"
	}
	return strings.Join(names, ", ")
}
