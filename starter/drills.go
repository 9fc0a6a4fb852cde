package starter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/workflows"
)

// StartDrill starts a DR drill on target (empty: the default target) with
// the configured approval timeouts. It returns the drill in its first state
// (running, preflight).
func (s *Service) StartDrill(ctx context.Context, target, principal string) (domain.Drill, error) {
	return s.StartDrillRequest(ctx, api.DrillStartRequest{Target: target}, principal)
}

// StartDrillRequest starts a DR drill as StartDrill does, by the request's
// strategy (empty: the target's drill.strategy, else the driver's).
func (s *Service) StartDrillRequest(ctx context.Context, req api.DrillStartRequest, principal string) (domain.Drill, error) {
	if err := domain.ValidateDrillStrategy(req.Strategy); err != nil {
		return domain.Drill{}, err
	}
	target := req.Target
	if target == "" {
		target = s.opts.DefaultTarget
	}
	if !s.TargetKnown(target) {
		return domain.Drill{}, &domain.ValidationError{Field: "target", Message: fmt.Sprintf("unknown target %q", target)}
	}
	now := s.opts.Now()
	in := workflows.DrillInput{
		Target: target, RequestedBy: principal,
		StartApprovalTimeout: s.opts.DrillStartApprovalTimeout, CompleteApprovalTimeout: s.opts.DrillCompleteApprovalTimeout,
		CanaryInterval: s.opts.DrillCanaryInterval, CanaryDuration: s.opts.DrillCanaryDuration,
		HeartbeatTimeout: s.opts.HeartbeatTimeout, Strategy: req.Strategy,
	}
	run, err := s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflows.ManualDrillID(target, now.UnixMilli()),
		TaskQueue:                s.queueOf(target),
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.TargetKey.ValueSet(target)),
		StaticSummary:            fmt.Sprintf("DR drill of %s — requested by %s", target, principal),
		StaticDetails: "Steps: preflight → **approval `start`** → canary writer → simulated failure → restore into scratch → verify → " +
			"measure RTO/RPO → **approval `complete`** → clean-up → report.\n\nApprove: signal `approve` with " +
			"`{\"step\":\"start\",\"approver\":\"you\",\"comment\":\"…\"}` or `themisctl drill approve <id> --step start`.",
	}, workflows.DrillWorkflowName, in)
	if err != nil {
		return domain.Drill{}, mapErr(fmt.Errorf("start drill on %s: %w", target, err))
	}
	d := domain.Drill{
		ID: run.GetID(), RunID: run.GetRunID(), Target: target, State: domain.DrillRunning, Step: "preflight",
		RequestedBy: principal, StartedAtMs: now.UnixMilli(), UIURL: s.uiURL(run.GetID(), run.GetRunID()),
		Steps: []domain.DrillStep{}, Approvals: []domain.Approval{}, Strategy: req.Strategy,
	}
	s.rm.putDrill(d)
	return d, nil
}

// GetDrill returns a drill's state from its state query.
func (s *Service) GetDrill(ctx context.Context, id string) (domain.Drill, error) {
	d, _, err := s.getDrill(ctx, id)
	return d, err
}

// getDrill is GetDrill that also returns the length of the drill's event
// history when it was read (zero for a drill served from the history
// store): the state reflects every event up to it.
func (s *Service) getDrill(ctx context.Context, id string) (domain.Drill, int64, error) {
	if !validJobID(id) {
		return domain.Drill{}, 0, fmt.Errorf("%w: drill %q", domain.ErrNotFound, id)
	}
	desc, err := s.c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		err = mapErr(fmt.Errorf("describe drill %s: %w", id, err))
		if errors.Is(err, domain.ErrNotFound) && s.opts.Records != nil {
			d, err := s.storedDrill(ctx, id, err)
			return d, 0, err
		}
		return domain.Drill{}, 0, err
	}
	info := desc.GetWorkflowExecutionInfo()
	if info.GetType().GetName() != workflows.DrillWorkflowName {
		return domain.Drill{}, 0, fmt.Errorf("%w: %s is not a drill", domain.ErrNotFound, id)
	}
	var d domain.Drill
	v, err := s.c.QueryWorkflow(ctx, id, info.GetExecution().GetRunId(), workflows.DrillStateQuery)
	if err != nil {
		return domain.Drill{}, 0, mapErr(fmt.Errorf("query drill %s: %w", id, err))
	}
	if err := v.Get(&d); err != nil {
		return domain.Drill{}, 0, fmt.Errorf("decode drill %s: %w", id, err)
	}
	d.UIURL = s.uiURL(id, info.GetExecution().GetRunId())
	settleDrillState(&d, info.GetStatus(), info.GetCloseTime().AsTime().UnixMilli())
	return d, info.GetHistoryLength(), nil
}

// settleDrillState makes the queried state d tell the truth about the
// workflow's execution status: a final state only once the workflow has
// closed (with finished_at_ms set), cleaning_up before; a workflow that
// closed without reaching its own end (terminated, timed out) is aborted.
// closedAtMs is the workflow's close time.
func settleDrillState(d *domain.Drill, status enums.WorkflowExecutionStatus, closedAtMs int64) {
	if status == enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		if d.State.Terminal() {
			d.State, d.FinishedAtMs = domain.DrillCleaningUp, 0
		}
		return
	}
	if !d.State.Terminal() {
		d.State, d.Reason = domain.DrillAborted, strings.ToLower(status.String())
	}
	if d.FinishedAtMs == 0 {
		d.FinishedAtMs = closedAtMs
	}
}

// storedDrill serves a drill whose workflow Temporal's retention removed
// from the report it saved in the history store; notFound is returned when
// the store has none either.
func (s *Service) storedDrill(ctx context.Context, id string, notFound error) (domain.Drill, error) {
	e, err := s.opts.Records.DrillReport(ctx, id)
	if errors.Is(err, domain.ErrNotFound) {
		return domain.Drill{}, notFound
	}
	if err != nil {
		return domain.Drill{}, fmt.Errorf("drill %s from the history store: %w", id, err)
	}
	var d domain.Drill
	if err := json.Unmarshal(e.Report, &d); err != nil {
		return domain.Drill{}, fmt.Errorf("decode stored drill report %s: %w", id, err)
	}
	if d.Steps == nil {
		d.Steps = []domain.DrillStep{}
	}
	if d.Approvals == nil {
		d.Approvals = []domain.Approval{}
	}
	d.UIURL = ""
	return d, nil
}

// ListDrills lists drills, newest first, from the read model (no query
// per drill).
func (s *Service) ListDrills(ctx context.Context, limit int) (api.DrillList, error) {
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	if err := s.rm.fresh(ctx); err != nil {
		return api.DrillList{}, err
	}
	drills, asOf, rev := s.rm.drillList()
	drills = drills[:min(len(drills), limit)]
	return api.DrillList{Drills: drills, Count: len(drills), AsOfMs: asOf.UnixMilli(), Revision: rev}, nil
}

// decideTimeout bounds how long DecideDrill waits for the drill's worker
// to validate and apply a decision.
const decideTimeout = 30 * time.Second

// DecideDrill approves or rejects step by the drill's approve or reject
// Update: the workflow itself accepts or refuses it (its validator), so
// there is no window between reading the state and deciding. A refusal
// (a step not awaited now, one already decided, a drill that ended) is
// domain.ErrConflict with the workflow's reason; an accepted decision
// answers the drill after it was applied.
func (s *Service) DecideDrill(ctx context.Context, id string, approve bool, step, comment, principal string) (domain.Drill, error) {
	if step != domain.ApprovalStart && step != domain.ApprovalComplete {
		return domain.Drill{}, &domain.ValidationError{Field: "step", Message: fmt.Sprintf("must be %q or %q", domain.ApprovalStart, domain.ApprovalComplete)}
	}
	runID, err := s.runningDrill(ctx, id)
	if err != nil {
		return domain.Drill{}, err
	}
	name := workflows.ApproveUpdate
	if !approve {
		name = workflows.RejectUpdate
	}
	uctx, cancel := context.WithTimeout(ctx, decideTimeout)
	defer cancel()
	h, err := s.c.UpdateWorkflow(uctx, client.UpdateWorkflowOptions{
		WorkflowID: id, RunID: runID, UpdateName: name, WaitForStage: client.WorkflowUpdateStageCompleted,
		Args: []any{workflows.ApprovalSignal{Step: step, Approver: principal, Comment: comment, Channel: domain.ChannelAPI}},
	})
	var d domain.Drill
	if err == nil {
		err = h.Get(uctx, &d)
	}
	if err != nil {
		return domain.Drill{}, decideErr(id, name, err)
	}
	d.UIURL = s.uiURL(id, runID)
	settleDrillState(&d, enums.WORKFLOW_EXECUTION_STATUS_RUNNING, 0)
	return d, nil
}

// runningDrill returns the run id of drill id, which must be running:
// domain.ErrNotFound for no drill, domain.ErrConflict for one that ended.
func (s *Service) runningDrill(ctx context.Context, id string) (string, error) {
	if !validJobID(id) {
		return "", fmt.Errorf("%w: drill %q", domain.ErrNotFound, id)
	}
	desc, err := s.c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return "", mapErr(fmt.Errorf("describe drill %s: %w", id, err))
	}
	info := desc.GetWorkflowExecutionInfo()
	if info.GetType().GetName() != workflows.DrillWorkflowName {
		return "", fmt.Errorf("%w: %s is not a drill", domain.ErrNotFound, id)
	}
	if info.GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return "", fmt.Errorf("%w: drill %s has ended (%s)", domain.ErrConflict, id, strings.ToLower(info.GetStatus().String()))
	}
	return info.GetExecution().GetRunId(), nil
}

// decideErr maps what an approve or reject Update answered: the drill's
// refusal is a conflict with its reason, a drill that closed meanwhile too.
func decideErr(id, name string, err error) error {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.Type() == workflows.DrillDecisionRefused {
		return fmt.Errorf("%w: drill %s: %s", domain.ErrConflict, id, ae.Message())
	}
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		// The run closed between the describe and the update.
		return fmt.Errorf("%w: drill %s has ended", domain.ErrConflict, id)
	}
	var timeout *client.WorkflowUpdateServiceTimeoutOrCanceledError
	if errors.As(err, &timeout) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: drill %s: no worker applied the %s decision within %s", domain.ErrUnavailable, id, name, decideTimeout)
	}
	return mapErr(fmt.Errorf("%s drill %s: %w", name, id, err))
}

// AbortDrill stops a running drill; its clean-up still runs.
func (s *Service) AbortDrill(ctx context.Context, id, reason, principal string) (domain.Drill, error) {
	d, err := s.GetDrill(ctx, id)
	if err != nil {
		return d, err
	}
	switch {
	case d.State.Terminal():
		return d, fmt.Errorf("%w: drill %s is already %s", domain.ErrConflict, id, d.State)
	case d.State == domain.DrillCleaningUp:
		// An abort now would rewrite the settled outcome.
		return d, fmt.Errorf("%w: drill %s is already ending (cleaning up)", domain.ErrConflict, id)
	}
	if err := s.c.SignalWorkflow(ctx, id, "", workflows.AbortSignalName, workflows.AbortSignal{By: principal, Reason: reason}); err != nil {
		return d, mapErr(fmt.Errorf("abort drill %s: %w", id, err))
	}
	// The answer shows the abort's effect (cleaning_up), a few seconds at
	// most.
	return s.WaitDrill(ctx, id, api.DrillWait{Wait: 3 * time.Second, SinceState: d.State, SinceStep: d.Step})
}
