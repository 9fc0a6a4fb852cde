package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/themis-maintenance/themis/domain"
)

// Drill approval Updates: the API's way to approve or reject (the argument
// is ApprovalSignal, the answer the drill after the decision was applied).
// They carry the same names as the signals, which stay accepted for the
// Temporal UI and the temporal CLI, for example
//
//	temporal workflow update execute --workflow-id <drill id> --name approve \
//	  --input '{"step":"start","approver":"alice","comment":"go"}'
const (
	ApproveUpdate = "approve"
	RejectUpdate  = "reject"
)

// DrillDecisionRefused is the error type of an approval or rejection the
// drill refuses: for a step it does not await now, a second decision on a
// step, one after the drill ended. An Update's validator returns it (the
// caller gets it at once and nothing is recorded in the history).
const DrillDecisionRefused = "DrillDecisionRefused"

// drillApprovalUpdates versions approvals by Update and the signal rules
// that go with them: signals are received from the start of the drill, so
// one sent before its step's wait began is refused on arrival (recorded in
// the drill's refused_decisions) instead of being consumed by the wait.
const drillApprovalUpdates = "drill-approval-updates"

// Decisions as the drill records them.
const (
	decisionApproved = "approved"
	decisionRejected = "rejected"
)

// pendingDecision is a decision accepted for the awaited step and not yet
// applied by the wait; done once the wait applied it or, when the drill
// stopped first, refused it (refused says why).
type pendingDecision struct {
	decision string
	req      ApprovalSignal
	channel  string
	done     bool
	refused  string
}

// setupApprovals registers the approve and reject Updates and, from
// drillApprovalUpdates on, the receiver of the approve and reject signals.
func (r *drillRun) setupApprovals(ctx workflow.Context) error {
	r.wake = workflow.NewBufferedChannel(ctx, 4)
	for _, u := range []struct{ name, decision string }{{ApproveUpdate, decisionApproved}, {RejectUpdate, decisionRejected}} {
		name, decision := u.name, u.decision
		err := workflow.SetUpdateHandlerWithOptions(ctx, name,
			func(uctx workflow.Context, req ApprovalSignal) (domain.Drill, error) {
				return r.decideByUpdate(uctx, decision, req)
			},
			workflow.UpdateHandlerOptions{Validator: func(req ApprovalSignal) error { return r.refusal(req.Step) }})
		if err != nil {
			return fmt.Errorf("register update %s: %w", name, err)
		}
	}
	if r.v2 {
		workflow.Go(ctx, r.receiveSignals)
	}
	return nil
}

// refusal says why a decision on step cannot be taken now, nil when it can:
// only the step awaited now, once, while the drill runs.
func (r *drillRun) refusal(step string) error {
	refuse := func(format string, args ...any) error {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), DrillDecisionRefused, nil)
	}
	if step != domain.ApprovalStart && step != domain.ApprovalComplete {
		return refuse("step must be %q or %q, got %q", domain.ApprovalStart, domain.ApprovalComplete, step)
	}
	for _, a := range r.d.Approvals {
		if a.Step == step {
			return refuse("approval %q was already decided: %s by %s (%s)", step, a.Decision, a.Approver, a.Channel)
		}
	}
	if p := r.pending; p != nil {
		return refuse("approval %q is already decided: %s by %s (%s)", p.req.Step, p.decision, p.req.Approver, p.channel)
	}
	switch {
	case r.d.State.Terminal():
		return refuse("drill is %s: approval %q refused", r.d.State, step)
	case r.ending:
		return refuse("drill is ending (clean-up): approval %q refused", step)
	case r.d.Awaiting == "":
		return refuse("drill is not awaiting an approval (step %s): approval %q is taken only while the drill awaits it", r.d.Step, step)
	case r.d.Awaiting != step:
		return refuse("drill is awaiting approval %q, not %q", r.d.Awaiting, step)
	}
	return nil
}

// decideByUpdate hands an accepted decision to the wait and answers once it
// was applied, with the drill as it now stands.
func (r *drillRun) decideByUpdate(ctx workflow.Context, decision string, req ApprovalSignal) (domain.Drill, error) {
	if err := r.refusal(req.Step); err != nil {
		return r.d, err
	}
	channel := domain.ChannelUpdate
	if req.Channel == domain.ChannelAPI {
		channel = domain.ChannelAPI
	}
	p := r.propose(decision, req, channel)
	if err := workflow.Await(ctx, func() bool { return p.done }); err != nil {
		return r.d, err
	}
	if p.refused != "" {
		return r.d, temporal.NewNonRetryableApplicationError(p.refused, DrillDecisionRefused, nil)
	}
	return r.d, nil
}

// propose makes req the decision the wait applies next and wakes the wait.
func (r *drillRun) propose(decision string, req ApprovalSignal, channel string) *pendingDecision {
	p := &pendingDecision{decision: decision, req: req, channel: channel}
	r.pending = p
	r.wake.SendAsync(true)
	return p
}

// receiveSignals takes every approve and reject signal as it arrives
// (drillApprovalUpdates): one for the awaited step is handed to the wait,
// any other is refused and recorded, so a signal sent before its step's
// wait began is never consumed by that wait.
func (r *drillRun) receiveSignals(ctx workflow.Context) {
	approveCh := workflow.GetSignalChannel(ctx, ApproveSignal)
	rejectCh := workflow.GetSignalChannel(ctx, RejectSignal)
	for {
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(approveCh, func(c workflow.ReceiveChannel, _ bool) { r.onSignal(ctx, c, decisionApproved) })
		sel.AddReceive(rejectCh, func(c workflow.ReceiveChannel, _ bool) { r.onSignal(ctx, c, decisionRejected) })
		sel.Select(ctx)
	}
}

// onSignal receives one approve or reject signal from c and applies the
// rules of the Updates' validator to it.
func (r *drillRun) onSignal(ctx workflow.Context, c workflow.ReceiveChannel, decision string) {
	var s ApprovalSignal
	c.Receive(ctx, &s)
	if err := r.refusal(s.Step); err != nil {
		r.refuse(ctx, decision, s, domain.ChannelSignal, refusalMessage(err))
		return
	}
	r.propose(decision, s, domain.ChannelSignal)
}

// refuse records a decision the drill did not apply.
func (r *drillRun) refuse(ctx workflow.Context, decision string, s ApprovalSignal, channel, reason string) {
	r.d.Refused = append(r.d.Refused, domain.Approval{
		Step: s.Step, Decision: decision, Approver: s.Approver, Comment: s.Comment,
		AtMs: workflow.Now(ctx).UnixMilli(), Channel: channel, Reason: reason,
	})
	workflow.GetLogger(ctx).Warn("drill decision refused", "step", s.Step, "decision", decision, "channel", channel, "reason", reason)
}

func refusalMessage(err error) string {
	if ae, ok := err.(*temporal.ApplicationError); ok {
		return ae.Message()
	}
	return err.Error()
}

// await waits for the decision on step, with a timeout. A decision arrives
// by Update (any version) or, before drillApprovalUpdates, by a signal read
// here; from that version on, receiveSignals hands signals over.
func (r *drillRun) await(step string, timeout time.Duration) error {
	ctx := r.ctx
	name := "await_" + step
	r.d.Step, r.d.Awaiting, r.d.State = name, step, domain.DrillAwaiting
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("Drill of `%s`: **awaiting approval `%s`** (times out after %s). Send update or signal `approve` or `reject` with {\"step\":%q,\"approver\":…,\"comment\":…}", r.in.Target, step, timeout, step))
	start := workflow.Now(ctx).UnixMilli()
	timerCtx, cancelTimer := workflow.WithCancel(ctx)
	defer cancelTimer()
	timer := workflow.NewTimerWithOptions(timerCtx, timeout, workflow.TimerOptions{Summary: "Awaiting approval `" + step + "` (times out after " + timeout.String() + ")"})
	approveCh := workflow.GetSignalChannel(ctx, ApproveSignal)
	rejectCh := workflow.GetSignalChannel(ctx, RejectSignal)

	var taken *pendingDecision
	var outcome string // "timeout" or "stopped" when no decision came
	for taken == nil && outcome == "" {
		sel := workflow.NewSelector(ctx)
		if !r.v2 {
			sel.AddReceive(approveCh, func(c workflow.ReceiveChannel, _ bool) { r.onSignal(ctx, c, decisionApproved) })
			sel.AddReceive(rejectCh, func(c workflow.ReceiveChannel, _ bool) { r.onSignal(ctx, c, decisionRejected) })
		}
		sel.AddReceive(r.wake, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) })
		sel.AddFuture(timer, func(f workflow.Future) {
			if f.Get(ctx, nil) == nil {
				outcome = "timeout"
			} else if r.pending == nil {
				// Cancelled with ctx (before the wait began, or in the
				// same workflow task as a case above): ctx.Done is ready
				// too, but this case comes first, and left open it would
				// spin forever. (With a decision pending, the decision is
				// taken below, as it always was.)
				outcome = "stopped"
			}
		})
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) { outcome = "stopped" })
		sel.Select(ctx)
		// A decision accepted while the drill awaited it is applied even
		// when the timer fired in the same instant; an abort or a
		// cancellation wins over it.
		if r.pending != nil && outcome != "stopped" {
			taken, outcome = r.pending, ""
		}
	}
	end := workflow.Now(ctx).UnixMilli()
	r.d.Awaiting = ""
	if p := r.pending; p != nil && p != taken {
		p.refused = fmt.Sprintf("drill stopped (%s) before the decision on %q was applied", r.stoppedState(), step)
		r.refuse(ctx, p.decision, p.req, p.channel, p.refused)
		p.done, r.pending = true, nil
	}
	if taken != nil {
		sig := taken.req
		r.d.Approvals = append(r.d.Approvals, domain.Approval{Step: step, Decision: taken.decision, Approver: sig.Approver, Comment: sig.Comment, AtMs: end, Channel: taken.channel})
		defer func() { taken.done, r.pending = true, nil }()
		if taken.decision == decisionApproved {
			r.d.State = domain.DrillRunning
			r.addStep(name, domain.StepApproved, start, end, fmt.Sprintf("approved by %s (%s): %s", sig.Approver, taken.channel, sig.Comment))
			return nil
		}
		r.d.State, r.d.Reason = domain.DrillRejected, fmt.Sprintf("%s rejected by %s: %s", step, sig.Approver, sig.Comment)
		r.addStep(name, domain.StepRejected, start, end, r.d.Reason+" ("+taken.channel+")")
		return errDrillStopped
	}
	switch outcome {
	case "timeout":
		r.d.State, r.d.Reason = domain.DrillAborted, "approval_timeout"
		r.addStep(name, domain.StepTimedOut, start, end, fmt.Sprintf("no decision on %s within %s", step, timeout))
	default:
		if r.d.State != domain.DrillAborted {
			r.d.State, r.d.Reason = domain.DrillCancelled, "cancelled while awaiting "+step
		}
		r.addStep(name, domain.StepCancelled, start, end, r.d.Reason)
	}
	return errDrillStopped
}

func (r *drillRun) stoppedState() string {
	if r.d.State == domain.DrillAborted {
		return "aborted"
	}
	return "cancelled"
}
