package starter

import (
	"bytes"
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	schedulepb "go.temporal.io/api/schedule/v1"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/api/serviceerror"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/workflows"
)

const (
	memoMeta     = "themis_meta"
	memoSchedule = "schedule"
)

// meta holds the schedule entry's bookkeeping fields. It lives in the
// action's memo, which (unlike the Schedule's own memo) can be updated.
// Writes lists the ids of the latest updates the entry descends from
// (newest last), so a writer reading the Schedule back can tell whether its
// write is in it, even after later writes built on it.
type meta struct {
	CreatedAtMs int64    `json:"created_at_ms"`
	CreatedBy   string   `json:"created_by"`
	UpdatedAtMs int64    `json:"updated_at_ms"`
	UpdatedBy   string   `json:"updated_by"`
	Writes      []string `json:"writes,omitempty"`
}

// maxWriteIDs bounds meta.Writes.
const maxWriteIDs = 32

// withWrite returns the write ids of an entry written on top of m by id.
func (m meta) withWrite(id string) []string {
	prev := m.Writes
	if len(prev) >= maxWriteIDs {
		prev = prev[len(prev)-maxWriteIDs+1:]
	}
	return append(slices.Clone(prev), id)
}

// CreateSchedule creates a Temporal Schedule for spec. The name is claimed
// cluster-wide first (a claim workflow keyed by the name, see claims.go); a
// duplicate name is domain.ErrConflict naming the schedule that has it.
func (s *Service) CreateSchedule(ctx context.Context, spec domain.ScheduleSpec, principal string) (domain.Schedule, error) {
	if err := spec.Normalize(s.TargetKnown); err != nil {
		return domain.Schedule{}, err
	}
	if err := s.checkSupported(spec); err != nil {
		return domain.Schedule{}, err
	}
	now := s.opts.Now().UnixMilli()
	m := meta{CreatedAtMs: now, CreatedBy: principal, UpdatedAtMs: now, UpdatedBy: principal}
	base := domain.Slug(spec.Name)
	for i := 1; i <= 20; i++ {
		id := base
		if i > 1 {
			id = base + "-" + strconv.Itoa(i)
		}
		if err := s.claimName(ctx, spec.Name, id); err != nil {
			return domain.Schedule{}, err
		}
		// Schedules created before names were claimed hold no claim: the
		// search attribute check still finds them.
		if err := s.checkNameFree(ctx, spec.Name, id); err != nil {
			s.releaseQuietly(workflows.ClaimScheduleName, spec.Name, id)
			return domain.Schedule{}, err
		}
		err := s.create(ctx, id, spec, m)
		if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
			s.releaseQuietly(workflows.ClaimScheduleName, spec.Name, id)
			existing, gerr := s.GetSchedule(ctx, id)
			if gerr == nil && existing.Name == spec.Name {
				return domain.Schedule{}, fmt.Errorf("%w: a schedule named %q already exists (id %s)", domain.ErrConflict, spec.Name, id)
			}
			continue
		}
		if err != nil {
			s.releaseQuietly(workflows.ClaimScheduleName, spec.Name, id)
			return domain.Schedule{}, mapErr(fmt.Errorf("create schedule %s: %w", id, err))
		}
		// CreateSchedule is synchronous: the describe shows the new entry.
		sc, err := s.GetSchedule(ctx, id)
		if err == nil {
			s.rm.putSchedule(sc)
		}
		return sc, err
	}
	return domain.Schedule{}, fmt.Errorf("%w: no free id for schedule %q", domain.ErrConflict, spec.Name)
}

// claimName claims a schedule name for schedule id. A name held by another
// schedule is domain.ErrConflict naming it; a stale claim (its schedule is
// gone or called otherwise now, and the claim is past its grace period) is
// taken over.
func (s *Service) claimName(ctx context.Context, name, id string) error {
	h, err := s.claim(ctx, workflows.ClaimScheduleName, name, id, func(h *claimHolder) bool {
		if !s.claimOld(h) {
			return false
		}
		other, err := s.describe(ctx, h.Owner)
		if errors.Is(err, domain.ErrNotFound) {
			return true
		}
		if err != nil {
			return false
		}
		sc, err := s.fromDescription(h.Owner, other)
		return err != nil || sc.Name != name
	})
	if err != nil {
		return err
	}
	if h != nil {
		return fmt.Errorf("%w: a schedule named %q already exists (id %s)", domain.ErrConflict, name, h.Owner)
	}
	return nil
}

// EnsureDefaultSchedules installs the default schedules of target, disabled,
// once per namespace: the first API process to start claims "defaults
// installed for target" and creates them; every later start (of any
// replica) finds the claim and does nothing, so a default an operator
// deleted stays deleted. Tasks the target's driver cannot run are left out
// and named in the description. Defaults that exist already (by id, from
// before the claim existed) are kept; one still as the system wrote it is
// brought to the current default tasks.
func (s *Service) EnsureDefaultSchedules(ctx context.Context, target string) error {
	h, err := s.startClaim(ctx, workflows.ClaimDefaultsInstalled, target, "system")
	if err != nil {
		return err
	}
	if h != nil {
		return nil // installed before
	}
	if err := s.installDefaults(ctx, target); err != nil {
		// Let the next start try again.
		s.releaseQuietly(workflows.ClaimDefaultsInstalled, target, "system")
		return err
	}
	return nil
}

func (s *Service) installDefaults(ctx context.Context, target string) error {
	now := s.opts.Now().UnixMilli()
	for _, d := range domain.DefaultSchedules(target, s.drivers[target], domain.SupportedBy(s.opts.Capabilities, s.drivers[target])) {
		if err := s.claimName(ctx, d.Spec.Name, d.ID); err != nil {
			if errors.Is(err, domain.ErrConflict) {
				s.opts.Logger.Warn("default schedule not installed: its name is taken", "schedule_id", d.ID, "error", err)
				continue
			}
			return err
		}
		m := meta{CreatedAtMs: now, CreatedBy: "system", UpdatedAtMs: now, UpdatedBy: "system"}
		err := s.create(ctx, d.ID, d.Spec, m)
		if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
			s.refreshDefault(ctx, d)
			continue
		}
		if err != nil {
			s.releaseQuietly(workflows.ClaimScheduleName, d.Spec.Name, d.ID)
			return mapErr(fmt.Errorf("create default schedule %s: %w", d.ID, err))
		}
	}
	return nil
}

// refreshDefault brings an existing default schedule that nobody but the
// system has written to the current default tasks and description (for
// example without the tasks its driver cannot run).
func (s *Service) refreshDefault(ctx context.Context, d domain.DefaultSchedule) {
	cur, err := s.GetSchedule(ctx, d.ID)
	if err != nil || cur.UpdatedBy != "system" || cur.Name != d.Spec.Name {
		return
	}
	if slices.Equal(cur.Tasks, d.Spec.Tasks) && cur.Description == d.Spec.Description {
		return
	}
	_, err = s.UpdateSchedule(ctx, d.ID, "system", func(sp *domain.ScheduleSpec) error {
		sp.Tasks, sp.Description = d.Spec.Tasks, d.Spec.Description
		return nil
	})
	if err != nil {
		s.opts.Logger.Warn("default schedule not refreshed", "schedule_id", d.ID, "error", err)
	}
}

// checkSupported refuses a task the target's driver cannot run
// (domain.ScheduleSpec.CheckSupported with this service's capabilities).
func (s *Service) checkSupported(spec domain.ScheduleSpec) error {
	return spec.CheckSupported(s.opts.Capabilities, s.drivers[spec.Target])
}

func (s *Service) create(ctx context.Context, id string, spec domain.ScheduleSpec, m meta) error {
	_, err := s.c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:                    id,
		Spec:                  scheduleSpec(spec),
		Action:                s.action(id, spec, m),
		Overlap:               enums.SCHEDULE_OVERLAP_POLICY_SKIP,
		Paused:                !spec.Enabled,
		Note:                  "created by " + m.CreatedBy,
		TypedSearchAttributes: scheduleSearchAttributes(spec),
	})
	return err
}

// scheduleSearchAttributes are the Schedule's own (updatable) search
// attributes: what operators filter on, and the name for uniqueness checks.
func scheduleSearchAttributes(spec domain.ScheduleSpec) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(workflows.TargetKey.ValueSet(spec.Target), workflows.ScheduleNameKey.ValueSet(spec.Name))
}

func scheduleSpec(spec domain.ScheduleSpec) client.ScheduleSpec {
	return client.ScheduleSpec{CronExpressions: []string{spec.CronExpression}, TimeZoneName: spec.Timezone}
}

// action is the Schedule's start-workflow action: the whole entry travels as
// the workflow's argument, and as memo for display.
func (s *Service) action(id string, spec domain.ScheduleSpec, m meta) *client.ScheduleWorkflowAction {
	return &client.ScheduleWorkflowAction{
		ID:        workflows.ScheduledJobIDPrefix(id),
		Workflow:  workflows.MaintenanceWorkflowName,
		TaskQueue: s.queueOf(spec.Target),
		Args: []any{workflows.MaintenanceInput{
			ScheduleID: id, ScheduleName: spec.Name, Spec: spec, TriggeredBy: "schedule",
		}},
		Memo: map[string]any{memoMeta: m, memoSchedule: spec},
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.ScheduleIDKey.ValueSet(id), workflows.TargetKey.ValueSet(spec.Target)),
		StaticSummary: jobSummary(spec.Name, spec.Target, domain.RunOptions{}),
		StaticDetails: jobDetails(spec),
	}
}

func jobSummary(name, target string, opts domain.RunOptions) string {
	s := fmt.Sprintf("%s on %s", name, target)
	switch {
	case opts.DryRun:
		s += " (dry run: plans only, executes nothing)"
	case opts.Force:
		s += " (forced run)"
	}
	return s
}

func jobDetails(spec domain.ScheduleSpec) string {
	out := "**Tasks**\n"
	for i, t := range spec.Tasks {
		out += fmt.Sprintf("%d. %s (`%s`)\n", i+1, t.Title(), t)
	}
	window := "not enforced"
	if spec.EnforceWindow {
		window = fmt.Sprintf("%02d:00–%02d:00 %s", spec.WindowStartHour, spec.WindowEndHour, spec.Timezone)
	}
	out += fmt.Sprintf("\nWindow: %s · Halt on task failure: %t · Cron: `%s`", window, spec.HaltOnTaskFailure, spec.CronExpression)
	return out
}

// describe reads one Temporal Schedule (with its conflict token). A
// describe is a query on the Schedule's workflow: under many concurrent
// readers the server answers "query buffer is full" (resource exhausted);
// that, like a transient unavailability, is retried a few times.
func (s *Service) describe(ctx context.Context, id string) (*workflowservice.DescribeScheduleResponse, error) {
	req := &workflowservice.DescribeScheduleRequest{Namespace: s.opts.Namespace, ScheduleId: id}
	delay := 25 * time.Millisecond
	for attempt := 1; ; attempt++ {
		desc, err := s.c.WorkflowService().DescribeSchedule(ctx, req)
		if err == nil {
			return desc, nil
		}
		var exhausted *serviceerror.ResourceExhausted
		transient := errors.As(err, &exhausted) || errors.Is(mapErr(err), domain.ErrUnavailable)
		if !transient || attempt == 6 || ctx.Err() != nil {
			return nil, mapErr(fmt.Errorf("describe schedule %s: %w", id, err))
		}
		sleepCtx(ctx, delay+time.Duration(mathrand.Int64N(int64(delay))))
		delay *= 2
	}
}

// GetSchedule describes one schedule.
func (s *Service) GetSchedule(ctx context.Context, id string) (domain.Schedule, error) {
	desc, err := s.describe(ctx, id)
	if err != nil {
		return domain.Schedule{}, err
	}
	sc, err := s.fromDescription(id, desc)
	if err != nil {
		return domain.Schedule{}, err
	}
	s.applyLastRun(ctx, &sc, desc, s.newestRuns(ctx, []string{id})[id])
	return sc, nil
}

// decodeEntry reads the maintenance input and the bookkeeping memo from a
// Schedule's start-workflow action.
func decodeEntry(id string, desc *workflowservice.DescribeScheduleResponse) (workflows.MaintenanceInput, meta, error) {
	var in workflows.MaintenanceInput
	var m meta
	act := desc.GetSchedule().GetAction().GetStartWorkflow()
	if act == nil || act.GetWorkflowType().GetName() != workflows.MaintenanceWorkflowName || len(act.GetInput().GetPayloads()) != 1 {
		return in, m, fmt.Errorf("%w: schedule %s is not a maintenance schedule", domain.ErrNotFound, id)
	}
	dc := converter.GetDefaultDataConverter()
	if err := dc.FromPayload(act.GetInput().GetPayloads()[0], &in); err != nil {
		return in, m, fmt.Errorf("decode schedule %s: %w", id, err)
	}
	if p, ok := act.GetMemo().GetFields()[memoMeta]; ok {
		_ = dc.FromPayload(p, &m)
	}
	return in, m, nil
}

func (s *Service) fromDescription(id string, desc *workflowservice.DescribeScheduleResponse) (domain.Schedule, error) {
	in, m, err := decodeEntry(id, desc)
	if err != nil {
		return domain.Schedule{}, err
	}
	sc := domain.Schedule{
		ID: id, ScheduleSpec: in.Spec,
		CreatedAtMs: m.CreatedAtMs, CreatedBy: m.CreatedBy, UpdatedAtMs: m.UpdatedAtMs, UpdatedBy: m.UpdatedBy,
	}
	if sc.Tasks == nil {
		sc.Tasks = []domain.TaskType{}
	}
	if sc.TaskOptions == nil {
		sc.TaskOptions = map[domain.TaskType]domain.TaskOptions{}
	}
	// The Schedule's state is the truth: someone may pause it in the UI.
	sc.Enabled = !desc.GetSchedule().GetState().GetPaused()
	if sc.Enabled {
		next := desc.GetInfo().GetFutureActionTimes()
		times := make([]time.Time, len(next))
		for i, t := range next {
			times[i] = t.AsTime()
		}
		sc.NextRunMs = s.nextRunMs(sc.ScheduleSpec, times)
	}
	return sc, nil
}

// newestRuns returns, per schedule id, the newest job visibility knows of
// (manual runs included), in one query per 100 ids. Visibility reads need
// no worker and replay nothing, so listing many schedules stays cheap.
func (s *Service) newestRuns(ctx context.Context, ids []string) map[string]*workflowpb.WorkflowExecutionInfo {
	out := map[string]*workflowpb.WorkflowExecutionInfo{}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 100)]
		ids = ids[len(chunk):]
		quoted := make([]string, len(chunk))
		for i, id := range chunk {
			quoted[i] = "'" + id + "'" // ids are validated slugs: no quotes inside
		}
		resp, err := s.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: s.opts.Namespace, PageSize: 1000,
			Query: fmt.Sprintf("%s IN (%s)", workflows.ScheduleIDKey.GetName(), strings.Join(quoted, ",")),
		})
		if err != nil {
			s.opts.Logger.Warn("last runs from visibility unavailable", "error", err)
			continue
		}
		for _, e := range resp.GetExecutions() {
			var id string
			if p, ok := e.GetSearchAttributes().GetIndexedFields()[workflows.ScheduleIDKey.GetName()]; ok {
				_ = converter.GetDefaultDataConverter().FromPayload(p, &id)
			}
			if cur, ok := out[id]; !ok || e.GetStartTime().AsTime().After(cur.GetStartTime().AsTime()) {
				out[id] = e
			}
		}
	}
	return out
}

// applyLastRun sets last_run_* from the newest of the Schedule's own recent
// actions and the newest job visibility knows (vis, may be nil).
func (s *Service) applyLastRun(ctx context.Context, sc *domain.Schedule, desc *workflowservice.DescribeScheduleResponse, vis *workflowpb.WorkflowExecutionInfo) {
	var newestID string
	var newestMs int64
	if recent := desc.GetInfo().GetRecentActions(); len(recent) > 0 {
		ra := recent[len(recent)-1]
		if ra.GetStartWorkflowResult() != nil {
			newestID, newestMs = ra.GetStartWorkflowResult().GetWorkflowId(), ra.GetActualTime().AsTime().UnixMilli()
		}
	}
	if vis != nil && vis.GetStartTime().AsTime().UnixMilli() >= newestMs {
		newestID, newestMs = vis.GetExecution().GetWorkflowId(), vis.GetStartTime().AsTime().UnixMilli()
	}
	if newestID == "" {
		return
	}
	if vis == nil || vis.GetExecution().GetWorkflowId() != newestID {
		// Visibility has not caught up with the newest run yet.
		d, err := s.c.DescribeWorkflowExecution(ctx, newestID, "")
		if err != nil {
			sc.LastJobID, sc.LastRunMs = newestID, newestMs
			return
		}
		vis = d.GetWorkflowExecutionInfo()
	}
	sc.LastJobID, sc.LastRunMs, sc.LastRunState = newestID, newestMs, s.jobFromInfo(vis).State
}

// ListSchedules lists maintenance schedules sorted by name, from the read
// model (no describe per schedule).
func (s *Service) ListSchedules(ctx context.Context) (api.ScheduleList, error) {
	if err := s.rm.fresh(ctx); err != nil {
		return api.ScheduleList{}, err
	}
	res, asOf, rev := s.rm.scheduleList()
	sort.Slice(res, func(i, j int) bool { return res[i].Name < res[j].Name })
	return api.ScheduleList{Schedules: res, Count: len(res), AsOfMs: asOf.UnixMilli(), Revision: rev}, nil
}

// checkNameFree returns domain.ErrConflict when another schedule than
// exceptID is called name. It reads the schedule list's search attributes
// (one call per page) and describes only schedules that lack the name
// attribute.
func (s *Service) checkNameFree(ctx context.Context, name, exceptID string) error {
	iter, err := s.c.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 500})
	if err != nil {
		return mapErr(fmt.Errorf("list schedules: %w", err))
	}
	dc := converter.GetDefaultDataConverter()
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			return mapErr(fmt.Errorf("list schedules: %w", err))
		}
		if e.ID == exceptID || e.WorkflowType.Name != workflows.MaintenanceWorkflowName {
			continue
		}
		var other string
		if p, ok := e.SearchAttributes.GetIndexedFields()[workflows.ScheduleNameKey.GetName()]; ok {
			_ = dc.FromPayload(p, &other)
		} else if sc, err := s.GetSchedule(ctx, e.ID); err == nil {
			other = sc.Name
		}
		if other == name {
			return fmt.Errorf("%w: a schedule named %q already exists (id %s)", domain.ErrConflict, name, e.ID)
		}
	}
	return nil
}

// Write confirmation bounds.
const (
	// defaultWriteConfirmTimeout bounds how long an update waits for the
	// Temporal Schedule to show it.
	defaultWriteConfirmTimeout = 10 * time.Second
	// updateContentionTimeout bounds the retries of an update that keeps
	// losing to concurrent writers.
	updateContentionTimeout = 60 * time.Second
)

// writeOutcome is what the read-back of an update found.
type writeOutcome int

const (
	writeApplied     writeOutcome = iota // the Schedule shows this write
	writeSuperseded                      // another change came first: this write was dropped (or overwritten)
	writeUnconfirmed                     // not visible within the bound
)

// UpdateSchedule applies mutate to the schedule's stored entry and writes
// the result, paused state included, in one Temporal Schedule update.
//
// Writers through this service take the schedule's write claim first (one
// update in flight per schedule, cluster-wide, see lockScheduleWrites). The
// update is computed from a fresh describe and sent with that describe's
// conflict token: the Schedule drops an update whose token is stale (a
// change from elsewhere, the UI or pause-on-failure, came first), so no
// change is overwritten. The write is then read
// back: once the Schedule shows it (its write id in the memo), the answer is
// that stored state; when another write came first, mutate is applied again
// to the newer entry and sent again; when the Schedule shows neither within
// the bound, the answer is domain.ErrUnconfirmed and nothing is claimed to
// be stored. mutate may thus run more than once and must depend on its
// argument only.
func (s *Service) UpdateSchedule(ctx context.Context, id, principal string, mutate func(*domain.ScheduleSpec) error) (domain.Schedule, error) {
	unlock, err := s.lockScheduleWrites(ctx, id)
	if err != nil {
		return domain.Schedule{}, err
	}
	defer unlock()
	var (
		claimed   []string // names this call claimed for id
		finalName string
		keep      bool // the outcome is unknown: keep the claims
	)
	defer func() {
		if keep {
			return
		}
		for _, n := range claimed {
			if n != finalName {
				s.releaseQuietly(workflows.ClaimScheduleName, n, id)
			}
		}
	}()
	giveUp := time.Now().Add(updateContentionTimeout)
	for attempt := 1; ; attempt++ {
		desc, err := s.describe(ctx, id)
		if err != nil {
			return domain.Schedule{}, err
		}
		cur, err := s.fromDescription(id, desc)
		if err != nil {
			return domain.Schedule{}, err
		}
		_, curMeta, _ := decodeEntry(id, desc)
		spec := cur.ScheduleSpec
		if spec.Frequency != domain.FrequencyCustom {
			// Derived, not chosen: Normalize derives it again from the result.
			spec.CronExpression = ""
		}
		if err := mutate(&spec); err != nil {
			return domain.Schedule{}, err
		}
		if err := spec.Normalize(s.TargetKnown); err != nil {
			return domain.Schedule{}, err
		}
		if err := s.checkSupported(spec); err != nil {
			return domain.Schedule{}, err
		}
		if spec.Name != cur.Name && !slices.Contains(claimed, spec.Name) {
			if err := s.claimName(ctx, spec.Name, id); err != nil {
				return domain.Schedule{}, err
			}
			claimed = append(claimed, spec.Name)
			if err := s.checkNameFree(ctx, spec.Name, id); err != nil {
				return domain.Schedule{}, err
			}
		}
		writeID := newWriteID()
		m := meta{CreatedAtMs: cur.CreatedAtMs, CreatedBy: cur.CreatedBy, UpdatedAtMs: s.opts.Now().UnixMilli(), UpdatedBy: principal,
			Writes: curMeta.withWrite(writeID)}
		req, err := s.updateRequest(id, desc, spec, cur.Enabled, m)
		if err != nil {
			return domain.Schedule{}, err
		}
		if _, err := s.c.WorkflowService().UpdateSchedule(ctx, req); err != nil {
			return domain.Schedule{}, mapErr(fmt.Errorf("update schedule %s: %w", id, err))
		}
		sc, outcome, err := s.confirmWrite(ctx, id, desc.GetConflictToken(), writeID)
		if err != nil {
			return domain.Schedule{}, err
		}
		switch outcome {
		case writeApplied:
			finalName = sc.Name
			if cur.Name != sc.Name {
				s.releaseQuietly(workflows.ClaimScheduleName, cur.Name, id)
			}
			s.rm.putSchedule(sc)
			return sc, nil
		case writeUnconfirmed:
			keep = true
			return domain.Schedule{}, fmt.Errorf("%w: the update of schedule %s was sent to Temporal but the Schedule did not show it within %s; it may still be applied: read the schedule to see what is stored",
				domain.ErrUnconfirmed, id, s.writeConfirmTimeout())
		}
		if time.Now().After(giveUp) {
			return domain.Schedule{}, fmt.Errorf("%w: schedule %s kept changing under %d attempts of this update; retry", domain.ErrConflict, id, attempt)
		}
		s.opts.Logger.Debug("schedule update superseded by a concurrent write; retrying", "schedule_id", id, "attempt", attempt)
		sleepCtx(ctx, time.Duration(10+mathrand.IntN(40*min(attempt, 5)))*time.Millisecond)
	}
}

func (s *Service) writeConfirmTimeout() time.Duration {
	if s.opts.WriteConfirmTimeout > 0 {
		return s.opts.WriteConfirmTimeout
	}
	return defaultWriteConfirmTimeout
}

// confirmWrite reads the Schedule back until it shows the write writeID
// (applied: the entry is it or descends from it), or a change without it
// (superseded: the Schedule drops an update whose conflict token is stale),
// or the bound passes. An applied write is answered with the stored state,
// which includes any write that already landed on top of it.
func (s *Service) confirmWrite(ctx context.Context, id string, sentToken []byte, writeID string) (domain.Schedule, writeOutcome, error) {
	deadline := time.Now().Add(s.writeConfirmTimeout())
	delay := 40 * time.Millisecond
	for {
		desc, err := s.describe(ctx, id)
		switch {
		case errors.Is(err, domain.ErrNotFound):
			return domain.Schedule{}, 0, err // deleted meanwhile
		case err == nil:
			_, m, derr := decodeEntry(id, desc)
			if derr == nil && slices.Contains(m.Writes, writeID) {
				sc, err := s.fromDescription(id, desc)
				if err != nil {
					return domain.Schedule{}, 0, err
				}
				s.applyLastRun(ctx, &sc, desc, s.newestRuns(ctx, []string{id})[id])
				return sc, writeApplied, nil
			}
			if !bytes.Equal(desc.GetConflictToken(), sentToken) {
				return domain.Schedule{}, writeSuperseded, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return domain.Schedule{}, writeUnconfirmed, nil
		}
		sleepCtx(ctx, delay)
		delay = min(2*delay, 250*time.Millisecond)
	}
}

// updateRequest is the full-replacement update of the Schedule described by
// desc: the new entry in its action (input, memo, search attributes, UI
// summary), the cron spec, and the paused state, sent with desc's conflict
// token. The action's task queue is the target's (its group's queue: a
// schedule moved to another target, or whose target changed group, starts
// its next job where that target's workers poll). Everything else
// (policies, the action's workflow id and headers) is kept as described.
func (s *Service) updateRequest(id string, desc *workflowservice.DescribeScheduleResponse, spec domain.ScheduleSpec, wasEnabled bool, m meta) (*workflowservice.UpdateScheduleRequest, error) {
	sched, ok := proto.Clone(desc.GetSchedule()).(*schedulepb.Schedule)
	if !ok || sched.GetAction().GetStartWorkflow() == nil {
		return nil, fmt.Errorf("%w: schedule %s is not a maintenance schedule", domain.ErrNotFound, id)
	}
	sched.Spec = &schedulepb.ScheduleSpec{CronString: []string{spec.CronExpression}, TimezoneName: spec.Timezone}
	act := sched.GetAction().GetStartWorkflow()
	dc := converter.GetDefaultDataConverter()
	var err error
	if act.Input, err = dc.ToPayloads(workflows.MaintenanceInput{ScheduleID: id, ScheduleName: spec.Name, Spec: spec, TriggeredBy: "schedule"}); err != nil {
		return nil, fmt.Errorf("encode schedule %s: %w", id, err)
	}
	memo := &commonpb.Memo{Fields: map[string]*commonpb.Payload{}}
	for k, v := range map[string]any{memoMeta: m, memoSchedule: spec} {
		if memo.Fields[k], err = dc.ToPayload(v); err != nil {
			return nil, fmt.Errorf("encode schedule %s memo: %w", id, err)
		}
	}
	act.Memo = memo
	act.TaskQueue = &taskqueuepb.TaskQueue{Name: s.queueOf(spec.Target), Kind: enums.TASK_QUEUE_KIND_NORMAL}
	if act.SearchAttributes, err = keywordSearchAttributes(map[string]string{
		workflows.ScheduleIDKey.GetName(): id, workflows.TargetKey.GetName(): spec.Target}); err != nil {
		return nil, err
	}
	summary, err := dc.ToPayload(jobSummary(spec.Name, spec.Target, domain.RunOptions{}))
	if err != nil {
		return nil, err
	}
	details, err := dc.ToPayload(jobDetails(spec))
	if err != nil {
		return nil, err
	}
	act.UserMetadata = &sdkpb.UserMetadata{Summary: summary, Details: details}
	if sched.State == nil {
		sched.State = &schedulepb.ScheduleState{}
	}
	sched.State.Paused = !spec.Enabled
	if spec.Enabled != wasEnabled {
		verb := "disabled"
		if spec.Enabled {
			verb = "enabled"
		}
		sched.State.Notes = verb + " by " + m.UpdatedBy
	}
	sas, err := keywordSearchAttributes(map[string]string{
		workflows.TargetKey.GetName(): spec.Target, workflows.ScheduleNameKey.GetName(): spec.Name})
	if err != nil {
		return nil, err
	}
	return &workflowservice.UpdateScheduleRequest{
		Namespace: s.opts.Namespace, ScheduleId: id, Schedule: sched,
		ConflictToken: desc.GetConflictToken(), Identity: "themis-api " + m.UpdatedBy, RequestId: newWriteID(), SearchAttributes: sas,
	}, nil
}

// DeleteSchedule deletes the Temporal Schedule and frees its name; running
// jobs keep running.
func (s *Service) DeleteSchedule(ctx context.Context, id, principal string) error {
	cur, err := s.GetSchedule(ctx, id)
	if err != nil {
		return err
	}
	if err := s.c.ScheduleClient().GetHandle(ctx, id).Delete(ctx); err != nil {
		return mapErr(fmt.Errorf("delete schedule %s: %w", id, err))
	}
	s.rm.removeSchedule(id)
	if err := s.release(ctx, workflows.ClaimScheduleName, cur.Name, id); err != nil {
		s.opts.Logger.Warn("name claim of a deleted schedule not released; it will be taken over as stale", "schedule_id", id, "error", err)
	}
	s.opts.Logger.Info("schedule deleted", "schedule_id", id, "principal", principal)
	return nil
}

// newWriteID is a random id marking one write (and a request id).
func newWriteID() string {
	var b [12]byte
	_, _ = cryptorand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sleepCtx sleeps d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
