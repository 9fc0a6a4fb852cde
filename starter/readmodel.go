package starter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/workflows"
)

// Read model defaults.
const (
	// DefaultReadModelInterval is the time between two refreshes of the
	// read model from Temporal.
	DefaultReadModelInterval = time.Second
	// readModelJobWindow is how many of the newest jobs the read model
	// keeps (one visibility page); older pages come from the history
	// store.
	readModelJobWindow = 1000
	// readModelDrillWindow is how many of the newest drills it keeps.
	readModelDrillWindow = 200
	// readModelRevisits bounds, per refresh, the schedules described again
	// although their list entry did not change (a task or option edited
	// by another replica shows only in the description), the running jobs
	// and drills whose progress is read, and the finished jobs and drills
	// whose final record is fetched. New and changed schedules are always
	// described.
	readModelRevisits = 20
	// readModelItemTimeout bounds one per-item read of a refresh (a
	// describe, a query of a workflow whose worker is slow or gone): an
	// item that does not answer keeps its last state, and the refresh
	// goes on.
	readModelItemTimeout = 2 * time.Second
)

// readModel is this API replica's view of the schedules, the newest jobs
// and drills, served to list requests from memory. A refresh (one at a
// time, at most one per interval however many requests come) reads the
// schedule list and two visibility pages of jobs and one of drills, and
// describes only what changed plus a bounded number of revisits; the
// replica's own writes are written through at once. It is a cache: the
// truth stays in Temporal (and, for finished jobs, in the history store),
// and any replica builds the same view.
type readModel struct {
	s        *Service
	interval time.Duration
	group    singleflight.Group

	mu        sync.RWMutex
	schedules map[string]*schedEntry
	jobs      []domain.Job
	drills    []domain.Drill
	// finishedJobs and finishedDrills keep what a closed workflow ended
	// with (it no longer changes).
	finishedJobs   map[string]domain.Job
	finishedDrills map[string]domain.Drill
	// running keeps the last progress read of running jobs and drills.
	runningJobs   map[string]domain.Job
	runningDrills map[string]domain.Drill
	// deleted are schedules this replica deleted, until the schedule list
	// stops showing them.
	deleted map[string]time.Time
	asOf    time.Time
	loaded  bool
	// rev counts the changes of the model's data (each refresh and each
	// write-through); the gateway caches encoded answers per revision.
	rev uint64
}

// schedEntry is one schedule of the read model: its description, when it
// was read, and the list-entry fingerprint it was read for.
type schedEntry struct {
	sc          domain.Schedule
	listKey     string
	describedAt time.Time
}

func newReadModel(s *Service, interval time.Duration) *readModel {
	if interval <= 0 {
		interval = DefaultReadModelInterval
	}
	return &readModel{
		s: s, interval: interval, schedules: map[string]*schedEntry{},
		finishedJobs: map[string]domain.Job{}, finishedDrills: map[string]domain.Drill{},
		runningJobs: map[string]domain.Job{}, runningDrills: map[string]domain.Drill{},
		deleted: map[string]time.Time{},
	}
}

// Run refreshes the read model every interval until ctx ends.
func (m *readModel) Run(ctx context.Context) {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		if err := m.refresh(ctx); err != nil && ctx.Err() == nil {
			m.s.opts.Logger.Warn("read model refresh failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// fresh returns once the model can answer a list: at once when it was
// refreshed within the last interval; after starting a refresh in the
// background when it is older (the answer's as_of_ms says how old it is);
// after waiting for a refresh only when it was never loaded, or is older
// than staleLimit (no refresh loop runs and the replica was idle). So a
// slow refresh under load never holds a request. Concurrent callers share
// one refresh.
func (m *readModel) fresh(ctx context.Context) error {
	m.mu.RLock()
	age, loaded := m.s.opts.Now().Sub(m.asOf), m.loaded
	m.mu.RUnlock()
	if loaded && age < m.interval {
		return nil
	}
	ch := m.group.DoChan("refresh", func() (any, error) {
		// Detached from the request: a client going away must not
		// cancel the refresh others wait for.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return nil, m.refresh(ctx)
	})
	if loaded && age < m.staleLimit() {
		return nil
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			m.mu.RLock()
			loaded = m.loaded
			m.mu.RUnlock()
			if loaded {
				// A stale answer that says how stale beats none.
				m.s.opts.Logger.Warn("read model refresh failed; answering from the last one", "error", r.Err)
				return nil
			}
		}
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// staleLimit is the age past which a list waits for a refresh: ten
// intervals, at least 10 s.
func (m *readModel) staleLimit() time.Duration { return max(10*m.interval, 10*time.Second) }

// refresh reads Temporal (and the history store) once.
func (m *readModel) refresh(ctx context.Context) error {
	start := m.s.opts.Now()
	if err := m.refreshJobs(ctx); err != nil {
		return err
	}
	if err := m.refreshSchedules(ctx); err != nil {
		return err
	}
	if err := m.refreshDrills(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	m.asOf, m.loaded = start, true
	m.rev++
	m.mu.Unlock()
	return nil
}

// listKey fingerprints what a schedule's list entry shows; a change means
// the schedule was written and is described again.
func listKey(e *client.ScheduleListEntry) string {
	dc := converter.GetDefaultDataConverter()
	sas := e.SearchAttributes.GetIndexedFields()
	var name, target string
	if p, ok := sas[workflows.ScheduleNameKey.GetName()]; ok {
		_ = dc.FromPayload(p, &name)
	}
	if p, ok := sas[workflows.TargetKey.GetName()]; ok {
		_ = dc.FromPayload(p, &target)
	}
	var cron []string
	var tz string
	if e.Spec != nil {
		cron, tz = e.Spec.CronExpressions, e.Spec.TimeZoneName
		for _, c := range e.Spec.Calendars {
			cron = append(cron, fmt.Sprint(c))
		}
	}
	return fmt.Sprintf("%s|%s|%v|%s|%t|%s", name, target, cron, tz, e.Paused, e.Note)
}

func (m *readModel) refreshSchedules(ctx context.Context) error {
	iter, err := m.s.c.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 1000})
	if err != nil {
		return mapErr(fmt.Errorf("list schedules: %w", err))
	}
	entries := map[string]*client.ScheduleListEntry{}
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			return mapErr(fmt.Errorf("list schedules: %w", err))
		}
		if e.WorkflowType.Name == workflows.MaintenanceWorkflowName {
			entries[e.ID] = e
		}
	}
	m.mu.RLock()
	var describe, revisit []string
	for id, e := range entries {
		if _, gone := m.deleted[id]; gone {
			continue
		}
		cur, ok := m.schedules[id]
		if !ok || cur.listKey != listKey(e) {
			describe = append(describe, id)
		} else {
			revisit = append(revisit, id)
		}
	}
	sort.Slice(revisit, func(i, j int) bool {
		return m.schedules[revisit[i]].describedAt.Before(m.schedules[revisit[j]].describedAt)
	})
	m.mu.RUnlock()
	describe = append(describe, revisit[:min(len(revisit), readModelRevisits)]...)

	read := make([]*schedEntry, len(describe))
	missing := make([]bool, len(describe))
	var g errgroup.Group
	g.SetLimit(8)
	gctx := ctx
	for i, id := range describe {
		g.Go(func() error {
			at := m.s.opts.Now()
			ictx, cancel := context.WithTimeout(gctx, readModelItemTimeout)
			defer cancel()
			desc, err := m.s.describe(ictx, id)
			if errors.Is(err, domain.ErrNotFound) {
				missing[i] = true
				return nil
			}
			if err != nil {
				// Kept as last read; described again next time.
				m.s.opts.Logger.Warn("read model: schedule not described", "schedule_id", id, "error", err)
				return nil
			}
			sc, err := m.s.fromDescription(id, desc)
			if err != nil {
				missing[i] = true // not a maintenance schedule
				return nil
			}
			read[i] = &schedEntry{sc: sc, listKey: listKey(entries[id]), describedAt: at}
			return nil
		})
	}
	_ = g.Wait()

	m.mu.Lock()
	defer m.mu.Unlock()
	for i, id := range describe {
		switch {
		case missing[i]:
			delete(m.schedules, id)
		case read[i] != nil:
			if _, gone := m.deleted[id]; gone {
				continue // deleted by this replica while being described
			}
			// A write-through newer than this describe wins.
			if cur, ok := m.schedules[id]; !ok || !cur.describedAt.After(read[i].describedAt) {
				m.schedules[id] = read[i]
			}
		}
	}
	for id, e := range m.schedules {
		le, listed := entries[id]
		if !listed {
			// The list lags behind a create: keep what this replica wrote
			// for a while.
			if m.s.opts.Now().Sub(e.describedAt) > 30*time.Second {
				delete(m.schedules, id)
			}
			continue
		}
		// What the list shows is as fresh as the list.
		e.sc.Enabled = !le.Paused
		e.sc.NextRunMs = 0
		if e.sc.Enabled {
			e.sc.NextRunMs = m.s.nextRunMs(e.sc.ScheduleSpec, le.NextActionTimes)
		}
		if n := len(le.RecentActions); n > 0 && le.RecentActions[n-1].StartWorkflowResult != nil {
			ra := le.RecentActions[n-1]
			if ms := ra.ActualTime.UnixMilli(); ms >= e.sc.LastRunMs {
				e.sc.LastJobID, e.sc.LastRunMs, e.sc.LastRunState = ra.StartWorkflowResult.WorkflowID, ms, domain.StateRunning
			}
		}
	}
	for id := range m.deleted {
		if _, listed := entries[id]; !listed {
			delete(m.deleted, id)
		}
	}
	m.applyNewestRunsLocked()
	return nil
}

// applyNewestRunsLocked sets each schedule's last run from the newest job
// of the jobs window (manual runs included) when it is newer than what the
// Schedule reports, and the last run's state from the window.
func (m *readModel) applyNewestRunsLocked() {
	newest := map[string]domain.Job{}
	byID := map[string]domain.JobState{}
	for _, j := range m.jobs {
		byID[j.ID] = j.State
		if cur, ok := newest[j.ScheduleID]; !ok || j.StartedAtMs > cur.StartedAtMs {
			newest[j.ScheduleID] = j
		}
	}
	for id, e := range m.schedules {
		if j, ok := newest[id]; ok && j.StartedAtMs >= e.sc.LastRunMs {
			e.sc.LastJobID, e.sc.LastRunMs = j.ID, j.StartedAtMs
		}
		if st, ok := byID[e.sc.LastJobID]; ok {
			e.sc.LastRunState = st
		}
	}
}

// refreshJobs reads the running jobs and the newest window of all jobs
// (two visibility calls); the progress of running jobs (what their
// activities reported, from a describe, and the task states from the
// workflow) is read for at most readModelRevisits of them, the least
// recently read first; a finished job's record is read once.
func (m *readModel) refreshJobs(ctx context.Context) error {
	// This deployment's jobs: its task queues, the base queue and every
	// target group's (another deployment may share the namespace).
	base := fmt.Sprintf("WorkflowType = '%s' AND %s", workflows.MaintenanceWorkflowName, m.s.queueFilter())
	running, err := m.listExecutions(ctx, base+" AND ExecutionStatus = 'Running'", readModelJobWindow)
	if err != nil {
		return fmt.Errorf("list running jobs: %w", err)
	}
	recent, err := m.listExecutions(ctx, base, readModelJobWindow)
	if err != nil {
		return fmt.Errorf("list jobs: %w", err)
	}
	seen := map[string]bool{}
	var infos []*workflowpb.WorkflowExecutionInfo
	for _, e := range append(running, recent...) {
		if id := e.GetExecution().GetWorkflowId(); !seen[id] {
			seen[id] = true
			infos = append(infos, e)
		}
	}

	m.mu.RLock()
	var toRead []*workflowpb.WorkflowExecutionInfo
	finishedBudget, runningBudget := readModelRevisits*5, readModelRevisits
	for _, e := range infos {
		id := e.GetExecution().GetWorkflowId()
		if e.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			if runningBudget > 0 {
				toRead, runningBudget = append(toRead, e), runningBudget-1
			}
		} else if _, ok := m.finishedJobs[id]; !ok && finishedBudget > 0 {
			toRead, finishedBudget = append(toRead, e), finishedBudget-1
		}
	}
	m.mu.RUnlock()

	read := readEach(ctx, toRead, m.readJob)

	m.mu.Lock()
	defer m.mu.Unlock()
	fileReads(toRead, read, m.runningJobs, m.finishedJobs)
	jobs := make([]domain.Job, 0, len(infos))
	keep := map[string]bool{}
	for _, e := range infos {
		id := e.GetExecution().GetWorkflowId()
		keep[id] = true
		j := m.s.jobFromInfo(e)
		if e.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			if p, ok := m.runningJobs[id]; ok && !p.State.Terminal() {
				j = p
			}
		} else if f, ok := m.finishedJobs[id]; ok {
			j = f
		}
		jobs = append(jobs, j)
	}
	jobs = append(jobs, dropUnlisted(m, keep, m.runningJobs, m.finishedJobs, func(j domain.Job) int64 { return j.StartedAtMs })...)
	sortJobs(jobs)
	m.jobs = jobs
	return nil
}

// readEach reads each execution of toRead with read, at most 8 at a time,
// each bounded by readModelItemTimeout; the result of one that did not
// answer is nil.
func readEach[T any](ctx context.Context, toRead []*workflowpb.WorkflowExecutionInfo,
	read func(context.Context, *workflowpb.WorkflowExecutionInfo) (T, bool)) []*T {
	out := make([]*T, len(toRead))
	var g errgroup.Group
	g.SetLimit(8)
	for i, e := range toRead {
		g.Go(func() error {
			ictx, cancel := context.WithTimeout(ctx, readModelItemTimeout)
			defer cancel()
			if v, ok := read(ictx, e); ok {
				out[i] = &v
			}
			return nil
		})
	}
	_ = g.Wait()
	return out
}

// fileReads keeps what readEach read: a running execution's state in
// running, a closed one's (final) in finished, by workflow id.
func fileReads[T any](toRead []*workflowpb.WorkflowExecutionInfo, read []*T, running, finished map[string]T) {
	for i, e := range toRead {
		if read[i] == nil {
			continue
		}
		if e.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			running[e.GetExecution().GetWorkflowId()] = *read[i]
		} else {
			finished[e.GetExecution().GetWorkflowId()] = *read[i]
		}
	}
}

// readJob reads one job in full: a finished one from the history store
// when it holds the record, otherwise (and a running one always) from
// Temporal.
func (m *readModel) readJob(ctx context.Context, e *workflowpb.WorkflowExecutionInfo) (domain.Job, bool) {
	id := e.GetExecution().GetWorkflowId()
	if e.GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING && m.s.opts.Records != nil {
		if rec, err := m.s.opts.Records.JobRecord(ctx, id); err == nil {
			rec.UIURL = m.s.uiURL(id, e.GetExecution().GetRunId())
			return rec, true
		}
	}
	j, err := m.s.describeJob(ctx, id)
	return j, err == nil
}

// sortJobs orders jobs running first, then by start time, newest first
// (ties by id, descending), the order GET /jobs pages through.
func sortJobs(jobs []domain.Job) {
	sort.SliceStable(jobs, func(a, b int) bool {
		ra, rb := !jobs[a].State.Terminal(), !jobs[b].State.Terminal()
		if ra != rb {
			return ra
		}
		if jobs[a].StartedAtMs != jobs[b].StartedAtMs {
			return jobs[a].StartedAtMs > jobs[b].StartedAtMs
		}
		return jobs[a].ID > jobs[b].ID
	})
}

// refreshDrills reads the newest drills (one visibility call); running
// drills are queried (at most readModelRevisits), a finished drill once.
func (m *readModel) refreshDrills(ctx context.Context) error {
	infos, err := m.listExecutions(ctx, fmt.Sprintf("WorkflowType = '%s' AND %s", workflows.DrillWorkflowName, m.s.queueFilter()), readModelDrillWindow)
	if err != nil {
		return fmt.Errorf("list drills: %w", err)
	}
	m.mu.RLock()
	var toRead []*workflowpb.WorkflowExecutionInfo
	for _, e := range infos {
		_, done := m.finishedDrills[e.GetExecution().GetWorkflowId()]
		if !done && len(toRead) < readModelRevisits {
			toRead = append(toRead, e)
		}
	}
	m.mu.RUnlock()
	read := readEach(ctx, toRead, func(ctx context.Context, e *workflowpb.WorkflowExecutionInfo) (domain.Drill, bool) {
		d, err := m.s.GetDrill(ctx, e.GetExecution().GetWorkflowId())
		return d, err == nil
	})

	m.mu.Lock()
	defer m.mu.Unlock()
	fileReads(toRead, read, m.runningDrills, m.finishedDrills)
	keep := map[string]bool{}
	drills := make([]domain.Drill, 0, len(infos))
	for _, e := range infos {
		id := e.GetExecution().GetWorkflowId()
		keep[id] = true
		d, ok := m.finishedDrills[id]
		if !ok {
			d, ok = m.runningDrills[id]
		}
		if !ok {
			d = domain.Drill{ID: id, RunID: e.GetExecution().GetRunId(), State: domain.DrillRunning,
				StartedAtMs: e.GetStartTime().AsTime().UnixMilli(), Steps: []domain.DrillStep{}, Approvals: []domain.Approval{}}
		}
		if e.GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING || !ok {
			settleDrillState(&d, e.GetStatus(), e.GetCloseTime().AsTime().UnixMilli())
		}
		drills = append(drills, d)
	}
	drills = append(drills, dropUnlisted(m, keep, m.runningDrills, m.finishedDrills, func(d domain.Drill) int64 { return d.StartedAtMs })...)
	sort.SliceStable(drills, func(a, b int) bool { return drills[a].StartedAtMs > drills[b].StartedAtMs })
	m.drills = drills
	return nil
}

// listExecutions reads up to limit executions matching query, newest
// first as visibility orders them, in pages of at most 1000.
func (m *readModel) listExecutions(ctx context.Context, query string, limit int) ([]*workflowpb.WorkflowExecutionInfo, error) {
	var out []*workflowpb.WorkflowExecutionInfo
	var token []byte
	for {
		resp, err := m.s.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: m.s.opts.Namespace, PageSize: int32(min(limit-len(out), 1000)), NextPageToken: token, Query: query,
		})
		if err != nil {
			return nil, mapErr(err)
		}
		out = append(out, resp.GetExecutions()...)
		token = resp.GetNextPageToken()
		if len(token) == 0 || len(out) >= limit {
			return out, nil
		}
	}
}

// putSchedule writes a schedule this replica stored through to the model.
func (m *readModel) putSchedule(sc domain.Schedule) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rev++
	delete(m.deleted, sc.ID)
	e := &schedEntry{sc: sc, describedAt: m.s.opts.Now()}
	if cur, ok := m.schedules[sc.ID]; ok {
		e.listKey = cur.listKey // the next list shows the write: described again
		if sc.LastRunMs < cur.sc.LastRunMs {
			e.sc.LastJobID, e.sc.LastRunMs, e.sc.LastRunState = cur.sc.LastJobID, cur.sc.LastRunMs, cur.sc.LastRunState
		}
	}
	m.schedules[sc.ID] = e
}

// removeSchedule drops a schedule this replica deleted.
func (m *readModel) removeSchedule(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rev++
	delete(m.schedules, id)
	m.deleted[id] = m.s.opts.Now()
}

// putJob writes a job this replica started through to the model.
func (m *readModel) putJob(j domain.Job) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rev++
	// Readers hold the old slice: build a new one.
	jobs := slices.DeleteFunc(slices.Clone(m.jobs), func(o domain.Job) bool { return o.ID == j.ID })
	jobs = append(jobs, j)
	sortJobs(jobs)
	m.jobs = jobs
	m.runningJobs[j.ID] = j
	if e, ok := m.schedules[j.ScheduleID]; ok && j.StartedAtMs >= e.sc.LastRunMs {
		e.sc.LastJobID, e.sc.LastRunMs, e.sc.LastRunState = j.ID, j.StartedAtMs, j.State
	}
}

// dropUnlisted forgets the running and finished items the lists no
// longer show (not in keep), except a running one started here less than
// 30 s ago: visibility lags behind a start, so it is returned to be listed
// still.
func dropUnlisted[T any](m *readModel, keep map[string]bool, running, finished map[string]T, started func(T) int64) []T {
	var still []T
	for id, v := range running {
		switch {
		case keep[id]:
		case m.recent(started(v)):
			still = append(still, v)
		default:
			delete(running, id)
		}
	}
	for id := range finished {
		if !keep[id] {
			delete(finished, id)
		}
	}
	return still
}

// recent reports whether a job or drill started at startedMs may still be
// missing from visibility (which lags behind a start).
func (m *readModel) recent(startedMs int64) bool {
	return m.s.opts.Now().Sub(time.UnixMilli(startedMs)) < 30*time.Second
}

// putDrill writes a drill this replica started through to the model.
func (m *readModel) putDrill(d domain.Drill) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rev++
	drills := slices.DeleteFunc(slices.Clone(m.drills), func(o domain.Drill) bool { return o.ID == d.ID })
	drills = append([]domain.Drill{d}, drills...)
	sort.SliceStable(drills, func(a, b int) bool { return drills[a].StartedAtMs > drills[b].StartedAtMs })
	m.drills = drills
	m.runningDrills[d.ID] = d
}

// snapshot copies of the model's lists, with the time of the refresh they
// come from.

func (m *readModel) scheduleList() ([]domain.Schedule, time.Time, uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]domain.Schedule, 0, len(m.schedules))
	for _, e := range m.schedules {
		out = append(out, e.sc)
	}
	return out, m.asOf, m.rev
}

func (m *readModel) jobList() ([]domain.Job, time.Time, uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.jobs, m.asOf, m.rev // replaced, never modified in place
}

func (m *readModel) drillList() ([]domain.Drill, time.Time, uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.drills, m.asOf, m.rev
}
