package starter

import (
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/workflows"
)

// Claims are workflows.ClaimWorkflow executions whose workflow id is derived
// from a key: starting one with the id-conflict policy FAIL is an atomic,
// cluster-wide "take this key unless someone holds it", so no API replica
// keeps a lock of its own. The owner travels in the claim's memo, where a
// describe reads it back.
const (
	memoClaimOwner = "claim_owner"
	memoClaimKey   = "claim_key"

	// claimScheduleWrite: the one update of a schedule in flight (key:
	// schedule id, owner: a write id). Ended by termination, so it frees
	// at once even with no worker polling.
	claimScheduleWrite = "schedule-write"

	// claimManualRun: the newest manual run of a schedule (key: schedule
	// id, owner: job id). It is not released when the job ends; the next
	// run finds the owner closed and takes the claim over.
	claimManualRun = "manual-run"
)

// claimGrace is how long a fresh claim is trusted even though its owner
// (a schedule being created or renamed, a job being started) is not visible
// yet; after it, an owner that does not hold the key any more makes the
// claim stale and it may be taken over.
const claimGrace = 30 * time.Second

// claimReleaseWait bounds how long a release waits for the claim workflow
// to end on its signal (a worker runs it) before terminating it, so that
// the key is free when release returns even with no worker polling.
const claimReleaseWait = 3 * time.Second

// claimHolder describes the current holder of a claim.
type claimHolder struct {
	Owner     string
	RunID     string
	StartedAt time.Time
}

// startClaim starts the claim of key for owner. held is the current holder
// when the key is held already (by another owner or by owner itself).
func (s *Service) startClaim(ctx context.Context, kind, key, owner string) (held *claimHolder, err error) {
	held, _, err = s.startClaimRun(ctx, kind, key, owner)
	return held, err
}

// startClaimRun is startClaim that also returns the run id of the claim it
// started.
func (s *Service) startClaimRun(ctx context.Context, kind, key, owner string) (held *claimHolder, runID string, err error) {
	for range 2 {
		var run client.WorkflowRun
		run, err = s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:                                       workflows.ClaimID(kind, key),
			TaskQueue:                                s.opts.TaskQueue,
			WorkflowIDConflictPolicy:                 enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
			WorkflowIDReusePolicy:                    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			WorkflowExecutionErrorWhenAlreadyStarted: true,
			Memo:                                     map[string]any{memoClaimOwner: owner, memoClaimKey: key},
			StaticSummary:                            fmt.Sprintf("%s claim: %s → %s", kind, clipText(key, 100), owner),
		}, workflows.ClaimWorkflowName, workflows.ClaimInput{Kind: kind, Key: key, Owner: owner})
		if err == nil {
			return nil, run.GetRunID(), nil
		}
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if !errors.As(err, &started) {
			return nil, "", mapErr(fmt.Errorf("claim %s %q: %w", kind, key, err))
		}
		held, err = s.claimHolder(ctx, kind, key)
		if !errors.Is(err, domain.ErrNotFound) {
			return held, "", err
		}
		// Released between the start and the describe: try again.
	}
	return nil, "", fmt.Errorf("%w: claim %s %q keeps changing hands; retry", domain.ErrConflict, kind, key)
}

// claimHolder returns the running claim of key; domain.ErrNotFound when
// nobody holds it.
func (s *Service) claimHolder(ctx context.Context, kind, key string) (*claimHolder, error) {
	d, err := s.c.DescribeWorkflowExecution(ctx, workflows.ClaimID(kind, key), "")
	if err != nil {
		return nil, mapErr(fmt.Errorf("describe claim %s %q: %w", kind, key, err))
	}
	info := d.GetWorkflowExecutionInfo()
	if info.GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return nil, fmt.Errorf("%w: claim %s %q is released", domain.ErrNotFound, kind, key)
	}
	h := &claimHolder{RunID: info.GetExecution().GetRunId(), StartedAt: info.GetStartTime().AsTime()}
	if p, ok := info.GetMemo().GetFields()[memoClaimOwner]; ok {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &h.Owner)
	}
	return h, nil
}

// claim takes key for owner. When another owner holds it and stale reports
// that holder as stale, the stale claim is ended and taken over (atomically:
// of two replicas taking it over at once, one wins). It returns the holder
// that keeps the key, or nil when owner holds it now.
func (s *Service) claim(ctx context.Context, kind, key, owner string, stale func(h *claimHolder) bool) (*claimHolder, error) {
	for range 3 {
		h, err := s.startClaim(ctx, kind, key, owner)
		if err != nil || h == nil || h.Owner == owner {
			return nil, err
		}
		if stale == nil || !stale(h) {
			return h, nil
		}
		s.opts.Logger.Info("taking over a stale claim", "kind", kind, "key", key, "stale_owner", h.Owner, "owner", owner)
		err = s.c.TerminateWorkflow(ctx, workflows.ClaimID(kind, key), h.RunID, "stale claim taken over by "+owner)
		var nf *serviceerror.NotFound
		if err != nil && !errors.As(err, &nf) {
			return nil, mapErr(fmt.Errorf("take over claim %s %q: %w", kind, key, err))
		}
	}
	return nil, fmt.Errorf("%w: claim %s %q keeps changing hands; retry", domain.ErrConflict, kind, key)
}

// release ends owner's claim of key, if owner still holds it. The claim
// workflow ends on its release signal; when no worker runs it within
// claimReleaseWait it is terminated, so the key is free on return.
func (s *Service) release(ctx context.Context, kind, key, owner string) error {
	h, err := s.claimHolder(ctx, kind, key)
	if errors.Is(err, domain.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if h.Owner != owner {
		return nil // someone else's claim now
	}
	id := workflows.ClaimID(kind, key)
	if err := s.c.SignalWorkflow(ctx, id, h.RunID, workflows.ReleaseClaimSignal, nil); err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return nil
		}
		return mapErr(fmt.Errorf("release claim %s %q: %w", kind, key, err))
	}
	wctx, cancel := context.WithTimeout(ctx, claimReleaseWait)
	werr := s.c.GetWorkflow(wctx, id, h.RunID).Get(wctx, nil)
	cancel()
	if werr == nil {
		return nil
	}
	err = s.c.TerminateWorkflow(ctx, id, h.RunID, "released by "+owner+" (no worker ran the release signal)")
	var nf *serviceerror.NotFound
	if err != nil && !errors.As(err, &nf) {
		return mapErr(fmt.Errorf("release claim %s %q: %w", kind, key, err))
	}
	return nil
}

// releaseQuietly releases a claim on a path that already fails or
// succeeded otherwise; a failure is logged (the claim becomes stale and is
// taken over later).
func (s *Service) releaseQuietly(kind, key, owner string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.release(ctx, kind, key, owner); err != nil {
		s.opts.Logger.Warn("claim not released; it will be taken over as stale", "kind", kind, "key", key, "owner", owner, "error", err)
	}
}

// claimOld reports whether a claim is past its grace period.
func (s *Service) claimOld(h *claimHolder) bool {
	return s.opts.Now().Sub(h.StartedAt) > claimGrace
}

// keywordSearchAttributes encodes keyword search attributes as the SDK does.
func keywordSearchAttributes(kv map[string]string) (*commonpb.SearchAttributes, error) {
	out := &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{}}
	for k, v := range kv {
		p, err := converter.GetDefaultDataConverter().ToPayload(v)
		if err != nil {
			return nil, fmt.Errorf("encode search attribute %s: %w", k, err)
		}
		p.Metadata["type"] = []byte(enums.INDEXED_VALUE_TYPE_KEYWORD.String())
		out.IndexedFields[k] = p
	}
	return out, nil
}

func clipText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// lockScheduleWrites makes this update of schedule id the only one in
// flight, cluster-wide: it takes the schedule's write claim, waiting (with
// backoff, up to updateContentionTimeout) while another writer holds it. A
// holder that has held it far longer than an update takes is taken over.
//
// The Schedule's conflict token alone does not serialise writers well
// enough: under concurrent updates a describe can show an entry that a
// concurrent update then replaces without conflict, so a writer could
// answer with a state that was never stored for good.
func (s *Service) lockScheduleWrites(ctx context.Context, id string) (unlock func(), err error) {
	owner := "write-" + newWriteID()
	staleAfter := s.writeConfirmTimeout() + 30*time.Second
	giveUp := time.Now().Add(updateContentionTimeout)
	delay := 10 * time.Millisecond
	for {
		h, runID, err := s.startClaimRun(ctx, claimScheduleWrite, id, owner)
		if err != nil && !errors.Is(err, domain.ErrConflict) {
			return nil, err
		}
		if err == nil && h == nil {
			return func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				err := s.c.TerminateWorkflow(ctx, workflows.ClaimID(claimScheduleWrite, id), runID, "update done")
				var nf *serviceerror.NotFound
				if err != nil && !errors.As(err, &nf) {
					s.opts.Logger.Warn("schedule write claim not ended; the next writer takes it over when stale", "schedule_id", id, "error", err)
				}
			}, nil
		}
		if h != nil && s.opts.Now().Sub(h.StartedAt) > staleAfter {
			s.opts.Logger.Warn("taking over a stale schedule write claim", "schedule_id", id, "holder", h.Owner)
			_ = s.c.TerminateWorkflow(ctx, workflows.ClaimID(claimScheduleWrite, id), h.RunID, "stale write claim taken over")
			continue
		}
		if time.Now().After(giveUp) || ctx.Err() != nil {
			return nil, fmt.Errorf("%w: schedule %s is being written by others for too long; retry", domain.ErrConflict, id)
		}
		sleepCtx(ctx, delay+time.Duration(mathrand.Int64N(int64(delay))))
		delay = min(2*delay, 200*time.Millisecond)
	}
}
