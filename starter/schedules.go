package starter

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/sync/errgroup"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/workflows"
)

const (
	memoMeta     = "themis_meta"
	memoSchedule = "schedule"
)

// meta holds the schedule entry's bookkeeping fields. It lives in the
// action's memo, which (unlike the Schedule's own memo) can be updated.
type meta struct {
	CreatedAtMs int64  `json:"created_at_ms"`
	CreatedBy   string `json:"created_by"`
	UpdatedAtMs int64  `json:"updated_at_ms"`
	UpdatedBy   string `json:"updated_by"`
}

// CreateSchedule creates a Temporal Schedule for spec, which must already be
// normalised. A duplicate name is domain.ErrConflict.
func (s *Service) CreateSchedule(ctx context.Context, spec domain.ScheduleSpec, principal string) (domain.Schedule, error) {
	if err := spec.Normalize(s.TargetKnown); err != nil {
		return domain.Schedule{}, err
	}
	s.createMu.Lock()
	defer s.createMu.Unlock()
	if err := s.checkNameFree(ctx, spec.Name, ""); err != nil {
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
		err := s.create(ctx, id, spec, m)
		if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
			existing, gerr := s.GetSchedule(ctx, id)
			if gerr == nil && existing.Name == spec.Name {
				return domain.Schedule{}, fmt.Errorf("%w: a schedule named %q already exists (id %s)", domain.ErrConflict, spec.Name, id)
			}
			continue
		}
		if err != nil {
			return domain.Schedule{}, mapErr(fmt.Errorf("create schedule %s: %w", id, err))
		}
		return s.GetSchedule(ctx, id)
	}
	return domain.Schedule{}, fmt.Errorf("%w: no free id for schedule %q", domain.ErrConflict, spec.Name)
}

// EnsureDefaultSchedules creates the four default schedules, disabled, for
// target unless they exist already (by id). It never duplicates them.
func (s *Service) EnsureDefaultSchedules(ctx context.Context, target string) error {
	now := s.opts.Now().UnixMilli()
	for _, d := range domain.DefaultSchedules(target) {
		m := meta{CreatedAtMs: now, CreatedBy: "system", UpdatedAtMs: now, UpdatedBy: "system"}
		err := s.create(ctx, d.ID, d.Spec, m)
		if err != nil && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
			return mapErr(fmt.Errorf("create default schedule %s: %w", d.ID, err))
		}
	}
	return nil
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
		TaskQueue: s.opts.TaskQueue,
		Args: []any{workflows.MaintenanceInput{
			ScheduleID: id, ScheduleName: spec.Name, Spec: spec, TriggeredBy: "schedule",
		}},
		Memo: map[string]any{memoMeta: m, memoSchedule: spec},
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.ScheduleIDKey.ValueSet(id), workflows.TargetKey.ValueSet(spec.Target)),
		StaticSummary: jobSummary(spec.Name, spec.Target, false),
		StaticDetails: jobDetails(spec),
	}
}

func jobSummary(name, target string, forced bool) string {
	s := fmt.Sprintf("%s on %s", name, target)
	if forced {
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

// describe reads one Temporal Schedule, retrying once on a transient error.
func (s *Service) describe(ctx context.Context, id string) (*client.ScheduleDescription, error) {
	desc, err := s.c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
	if err != nil && errors.Is(mapErr(err), domain.ErrUnavailable) {
		desc, err = s.c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
	}
	if err != nil {
		return nil, mapErr(fmt.Errorf("describe schedule %s: %w", id, err))
	}
	return desc, nil
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

func (s *Service) fromDescription(id string, desc *client.ScheduleDescription) (domain.Schedule, error) {
	act, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok || act.Workflow != workflows.MaintenanceWorkflowName || len(act.Args) != 1 {
		return domain.Schedule{}, fmt.Errorf("%w: schedule %s is not a maintenance schedule", domain.ErrNotFound, id)
	}
	dc := converter.GetDefaultDataConverter()
	var in workflows.MaintenanceInput
	if p, ok := act.Args[0].(*commonpb.Payload); ok {
		if err := dc.FromPayload(p, &in); err != nil {
			return domain.Schedule{}, fmt.Errorf("decode schedule %s: %w", id, err)
		}
	}
	var m meta
	if p, ok := act.Memo[memoMeta].(*commonpb.Payload); ok {
		_ = dc.FromPayload(p, &m)
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
	sc.Enabled = desc.Schedule.State == nil || !desc.Schedule.State.Paused
	if sc.Enabled && len(desc.Info.NextActionTimes) > 0 {
		sc.NextRunMs = desc.Info.NextActionTimes[0].UnixMilli()
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
func (s *Service) applyLastRun(ctx context.Context, sc *domain.Schedule, desc *client.ScheduleDescription, vis *workflowpb.WorkflowExecutionInfo) {
	var newestID string
	var newestMs int64
	if n := len(desc.Info.RecentActions); n > 0 {
		ra := desc.Info.RecentActions[n-1]
		if ra.StartWorkflowResult != nil {
			newestID, newestMs = ra.StartWorkflowResult.WorkflowID, ra.ActualTime.UnixMilli()
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

// ListSchedules lists maintenance schedules sorted by name.
func (s *Service) ListSchedules(ctx context.Context) ([]domain.Schedule, error) {
	iter, err := s.c.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 500})
	if err != nil {
		return nil, mapErr(fmt.Errorf("list schedules: %w", err))
	}
	var ids []string
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			return nil, mapErr(fmt.Errorf("list schedules: %w", err))
		}
		if e.WorkflowType.Name == workflows.MaintenanceWorkflowName {
			ids = append(ids, e.ID)
		}
	}
	out := make([]domain.Schedule, len(ids))
	descs := make([]*client.ScheduleDescription, len(ids))
	ok := make([]bool, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, id := range ids {
		g.Go(func() error {
			desc, err := s.describe(gctx, id)
			if errors.Is(err, domain.ErrNotFound) {
				return nil // deleted since the list was read
			}
			if err != nil {
				return err
			}
			sc, err := s.fromDescription(id, desc)
			if err != nil {
				return nil // not a maintenance schedule
			}
			out[i], descs[i], ok[i] = sc, desc, true
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	runs := s.newestRuns(ctx, ids)
	for i := range out {
		if ok[i] {
			s.applyLastRun(ctx, &out[i], descs[i], runs[ids[i]])
		}
	}
	res := make([]domain.Schedule, 0, len(ids))
	for i := range out {
		if ok[i] {
			res = append(res, out[i])
		}
	}
	sort.Slice(res, func(i, j int) bool { return res[i].Name < res[j].Name })
	return res, nil
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

// UpdateSchedule applies mutate to the stored spec, validates the result and
// writes it to the Temporal Schedule, serialised per schedule.
func (s *Service) UpdateSchedule(ctx context.Context, id, principal string, mutate func(*domain.ScheduleSpec) error) (domain.Schedule, error) {
	unlock := s.lock(id)
	defer unlock()
	cur, err := s.GetSchedule(ctx, id)
	if err != nil {
		return domain.Schedule{}, err
	}
	spec := cur.ScheduleSpec
	spec.Tasks = append([]domain.TaskType(nil), cur.Tasks...)
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
	if spec.Name != cur.Name {
		s.createMu.Lock()
		defer s.createMu.Unlock()
		if err := s.checkNameFree(ctx, spec.Name, id); err != nil {
			return domain.Schedule{}, err
		}
	}
	m := meta{CreatedAtMs: cur.CreatedAtMs, CreatedBy: cur.CreatedBy, UpdatedAtMs: s.opts.Now().UnixMilli(), UpdatedBy: principal}
	h := s.c.ScheduleClient().GetHandle(ctx, id)
	err = h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		sched := in.Description.Schedule
		sp := scheduleSpec(spec)
		sched.Spec = &sp
		sched.Action = s.action(id, spec, m)
		sas := scheduleSearchAttributes(spec)
		return &client.ScheduleUpdate{Schedule: &sched, TypedSearchAttributes: &sas}, nil
	}})
	if err != nil {
		return domain.Schedule{}, mapErr(fmt.Errorf("update schedule %s: %w", id, err))
	}
	if spec.Enabled != cur.Enabled {
		note := "by " + principal
		if spec.Enabled {
			err = h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: "enabled " + note})
		} else {
			err = h.Pause(ctx, client.SchedulePauseOptions{Note: "disabled " + note})
		}
		if err != nil {
			return domain.Schedule{}, mapErr(fmt.Errorf("set schedule %s enabled=%t: %w", id, spec.Enabled, err))
		}
	}
	return s.waitWritten(ctx, id, spec, m), nil
}

// waitWritten answers an update with the state it wrote. A Temporal
// Schedule applies updates and pauses asynchronously, so a describe right
// after may still show the old entry; it polls briefly for the new one (for
// next_run_ms) and in any case returns the written spec and enabled flag.
func (s *Service) waitWritten(ctx context.Context, id string, spec domain.ScheduleSpec, m meta) domain.Schedule {
	var sc domain.Schedule
	for deadline := time.Now().Add(5 * time.Second); ; {
		got, err := s.GetSchedule(ctx, id)
		if err == nil {
			sc = got
			if got.UpdatedAtMs == m.UpdatedAtMs && got.Enabled == spec.Enabled && (!spec.Enabled || got.NextRunMs > 0) {
				return got
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	sc.ID, sc.ScheduleSpec = id, spec
	sc.CreatedAtMs, sc.CreatedBy, sc.UpdatedAtMs, sc.UpdatedBy = m.CreatedAtMs, m.CreatedBy, m.UpdatedAtMs, m.UpdatedBy
	if !spec.Enabled {
		sc.NextRunMs = 0
	}
	return sc
}

// DeleteSchedule deletes the Temporal Schedule; running jobs keep running.
func (s *Service) DeleteSchedule(ctx context.Context, id, principal string) error {
	unlock := s.lock(id)
	defer unlock()
	if _, err := s.GetSchedule(ctx, id); err != nil {
		return err
	}
	if err := s.c.ScheduleClient().GetHandle(ctx, id).Delete(ctx); err != nil {
		return mapErr(fmt.Errorf("delete schedule %s: %w", id, err))
	}
	s.opts.Logger.Info("schedule deleted", "schedule_id", id, "principal", principal)
	return nil
}
