// Package apitest holds test helpers for the gateway and its clients: an
// in-memory fake of api.Service, a validator that checks every request and
// response against the gateway's OpenAPI document (so the document and the
// handlers cannot drift), an httptest server combining both, and the
// contract suite (RunContract) that the fake and the real service must
// both pass.
//
// The fake only stores: what the service computes comes from the packages
// the service uses. Specs are normalised and validated by
// domain.ScheduleSpec.Normalize, the task catalogue and the targets are
// answered by a starter.Service (which needs no Temporal client for them),
// capabilities come from a driver.Registry over the real drivers
// (daemon.Drivers) and unsupported tasks are refused with them by
// domain.ScheduleSpec.CheckSupported, job and drill ids come from package
// workflows, and next run times from domain.ScheduleSpec.NextRun. The fake is for handler, client and CLI
// tests; the real service is exercised end to end by the testsuite, which
// runs the same contract suite against it.
package apitest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/internal/daemon"
	"github.com/themis-maintenance/themis/starter"
	"github.com/themis-maintenance/themis/workflows"
)

// Method names for Fake.FailWith.
const (
	MethodCreateSchedule = "CreateSchedule"
	MethodGetSchedule    = "GetSchedule"
	MethodListSchedules  = "ListSchedules"
	MethodUpdateSchedule = "UpdateSchedule"
	MethodDeleteSchedule = "DeleteSchedule"
	MethodRunSchedule    = "RunSchedule"
	MethodListJobs       = "ListJobs"
	MethodGetJob         = "GetJob"
	MethodCancelJob      = "CancelJob"
	MethodStatus         = "Status"
	MethodReady          = "Ready"
	MethodStartDrill     = "StartDrill"
	MethodGetDrill       = "GetDrill"
	MethodListDrills     = "ListDrills"
	MethodDrillTrend     = "DrillTrend"
	MethodDecideDrill    = "DecideDrill"
	MethodAbortDrill     = "AbortDrill"
	MethodHealth         = "Health"
)

// Counts records the calls the fake saw. Creates, Updates and Deletes count
// writes that happened (an UpdateSchedule whose mutate or validation failed
// is counted in UpdateAttempts only); DrillStarts, DrillDecisions and
// DrillAborts count drill changes that happened.
type Counts struct {
	Creates, Updates, UpdateAttempts, Deletes, Runs, Cancels int
	DrillStarts, DrillDecisions, DrillAborts                 int
}

// Writes is the number of schedule writes that took place.
func (c Counts) Writes() int { return c.Creates + c.Updates + c.Deletes }

// Changes is the number of state changes of any kind that took place:
// schedule writes, runs, cancellations and drill changes.
func (c Counts) Changes() int {
	return c.Writes() + c.Runs + c.Cancels + c.DrillStarts + c.DrillDecisions + c.DrillAborts
}

// Fake is an in-memory api.Service. Its zero value is not usable; call NewFake.
type Fake struct {
	mu sync.Mutex
	// createdAtMs is the as_of_ms of every list: the fake's data is
	// always current, so two reads without a write answer the same.
	createdAtMs int64
	// catalogue answers the task types, targets and target checks with
	// the real service's code; it has no Temporal client and is never
	// asked anything that would need one.
	catalogue *starter.Service
	// capabilities and drivers are what starter refuses unsupported
	// tasks with (see checkSupported).
	capabilities  map[domain.TaskType][]string
	drivers       map[string]string
	defaultTarget string
	schedules     map[string]domain.Schedule
	jobs          map[string]domain.Job
	errs          map[string]error
	counts        Counts
	clock         int64
	seq           int
	lastPrincipal string
	lastFilter    api.JobFilter
	autoProgress  bool
	failTask      domain.TaskType

	drills     map[string]domain.Drill
	drillRTOMs int64
	drillRPOMs int64
	health     api.HealthReport
	healthSet  bool
	audit      *AuditLog
}

var (
	_ api.Service             = (*Fake)(nil)
	_ api.DrillService        = (*Fake)(nil)
	_ api.DrillRequestStarter = (*Fake)(nil)
	_ api.InfoService         = (*Fake)(nil)
)

// Targets of the fake: "orders" on PostgreSQL (the default) and
// "analytics" on SQLite.
var fakeConfig = config.Config{
	DefaultTarget: "orders",
	Targets: []config.TargetConfig{
		{Name: "orders", Driver: "postgres", QuotaBytes: 10 << 30,
			RTOObjective: config.Duration(FakeRTOObjectiveMs * time.Millisecond), RPOObjective: config.Duration(FakeRPOObjectiveMs * time.Millisecond)},
		{Name: "analytics", Driver: "sqlite", QuotaBytes: 10 << 30,
			RTOObjective: config.Duration(FakeRTOObjectiveMs * time.Millisecond), RPOObjective: config.Duration(FakeRPOObjectiveMs * time.Millisecond)},
	},
}

// Capabilities returns what the real drivers (daemon.Drivers) support, as
// the daemon computes it for the service: no target is connected.
func Capabilities() map[domain.TaskType][]string {
	reg, err := driver.NewRegistry(daemon.Drivers(), nil)
	if err != nil {
		panic(fmt.Sprintf("driver registry of the real drivers: %v", err))
	}
	return reg.Capabilities()
}

// NewFake returns a fake with targets "orders" (PostgreSQL, the default)
// and "analytics" (SQLite), the real drivers' capabilities, no schedules,
// no drills, a healthy health report and an empty in-memory audit log.
func NewFake() *Fake {
	caps := Capabilities()
	drivers := map[string]string{}
	for _, t := range fakeConfig.Targets {
		drivers[t.Name] = t.Driver
	}
	return &Fake{
		createdAtMs: time.Now().UnixMilli(),
		catalogue: starter.New(nil, starter.Options{
			Targets: fakeConfig.TargetInfos(), DefaultTarget: fakeConfig.DefaultTarget, Capabilities: caps,
		}),
		capabilities:  caps,
		drivers:       drivers,
		defaultTarget: fakeConfig.DefaultTarget,
		schedules:     map[string]domain.Schedule{},
		jobs:          map[string]domain.Job{},
		errs:          map[string]error{},
		clock:         1_700_000_000_000,
		drills:        map[string]domain.Drill{},
		drillRTOMs:    120_000,
		drillRPOMs:    5_000,
		audit:         NewAuditLog(),
	}
}

// AuditLog is the fake's in-memory audit log (NewServer wires it into the
// gateway unless the options name another).
func (f *Fake) AuditLog() *AuditLog { return f.audit }

// FailWith makes every later call of method return err (nil clears it).
func (f *Fake) FailWith(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.errs, method)
		return
	}
	f.errs[method] = err
}

// SetAutoProgress makes each GetJob of an active job advance it one step
// (first task started → each task to 50 % and done → succeeded), so that
// watchers see progress and an end.
func (f *Fake) SetAutoProgress(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.autoProgress = on
}

// SetFailingTask makes auto-progress fail the job at task t.
func (f *Fake) SetFailingTask(t domain.TaskType) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failTask = t
}

// Counts returns the calls seen so far.
func (f *Fake) Counts() Counts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts
}

// LastPrincipal is the principal of the last write call.
func (f *Fake) LastPrincipal() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastPrincipal
}

// LastFilter is the filter of the last ListJobs call.
func (f *Fake) LastFilter() api.JobFilter {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastFilter
}

// SeedDefaults stores the default schedules (disabled) of the default
// target, as starter installs them, without counting writes, and returns
// them.
func (f *Fake) SeedDefaults() []domain.Schedule {
	var out []domain.Schedule
	for _, d := range domain.DefaultSchedules(f.defaultTarget, f.drivers[f.defaultTarget], domain.SupportedBy(f.capabilities, f.drivers[f.defaultTarget])) {
		out = append(out, f.Seed(d.ID, d.Spec))
	}
	return out
}

// Seed stores a schedule with the given id as if created by "seed".
func (f *Fake) Seed(id string, spec domain.ScheduleSpec) domain.Schedule {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.tick()
	s := domain.Schedule{ID: id, ScheduleSpec: cloneSpec(spec), CreatedAtMs: now, UpdatedAtMs: now,
		CreatedBy: "seed", UpdatedBy: "seed", NextRunMs: f.nextRun(spec)}
	f.schedules[id] = s
	return cloneSchedule(s)
}

// SeedJob stores a job as given.
func (f *Fake) SeedJob(j domain.Job) domain.Job {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs[j.ID] = cloneJob(j)
	return j
}

// Schedule returns the stored schedule with id.
func (f *Fake) Schedule(id string) (domain.Schedule, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.schedules[id]
	return cloneSchedule(s), ok
}

// Job returns the stored job with id.
func (f *Fake) Job(id string) (domain.Job, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	return cloneJob(j), ok
}

func (f *Fake) tick() int64 {
	f.clock += 1000
	return f.clock
}

// nextRun is the first time after the fake's clock the spec's cron
// expression fires in its zone (0 when disabled): domain computes it as
// Temporal's Schedule does for the real service. Normalize has refused
// what it cannot compute.
func (f *Fake) nextRun(spec domain.ScheduleSpec) int64 {
	if !spec.Enabled {
		return 0
	}
	next, err := spec.NextRun(time.UnixMilli(f.clock))
	if err != nil {
		return 0
	}
	return next.UnixMilli()
}

// checkSupported refuses a task the target's driver cannot run, as starter
// does (domain.ScheduleSpec.CheckSupported).
func (f *Fake) checkSupported(spec domain.ScheduleSpec) error {
	return spec.CheckSupported(f.capabilities, f.drivers[spec.Target])
}

func (f *Fake) fail(method string) error { return f.errs[method] }

// CreateSchedule implements api.Service.
func (f *Fake) CreateSchedule(_ context.Context, spec domain.ScheduleSpec, principal string) (domain.Schedule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(MethodCreateSchedule); err != nil {
		return domain.Schedule{}, err
	}
	if err := spec.Normalize(f.TargetKnown); err != nil {
		return domain.Schedule{}, err
	}
	if err := f.checkSupported(spec); err != nil {
		return domain.Schedule{}, err
	}
	if err := f.nameFreeLocked(spec.Name, ""); err != nil {
		return domain.Schedule{}, err
	}
	id := domain.Slug(spec.Name)
	for i := 2; ; i++ {
		if _, taken := f.schedules[id]; !taken {
			break
		}
		id = domain.Slug(spec.Name) + "-" + strconv.Itoa(i)
	}
	now := f.tick()
	s := domain.Schedule{ID: id, ScheduleSpec: cloneSpec(spec), CreatedAtMs: now, UpdatedAtMs: now,
		CreatedBy: principal, UpdatedBy: principal, NextRunMs: f.nextRun(spec)}
	f.schedules[id] = s
	f.counts.Creates++
	f.lastPrincipal = principal
	return cloneSchedule(s), nil
}

func (f *Fake) nameFreeLocked(name, exceptID string) error {
	for id, s := range f.schedules {
		if id != exceptID && s.Name == name {
			return fmt.Errorf("%w: schedule name %q is already used by %s", domain.ErrConflict, name, id)
		}
	}
	return nil
}

// GetSchedule implements api.Service.
func (f *Fake) GetSchedule(_ context.Context, id string) (domain.Schedule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(MethodGetSchedule); err != nil {
		return domain.Schedule{}, err
	}
	s, ok := f.schedules[id]
	if !ok {
		return domain.Schedule{}, fmt.Errorf("%w: schedule %q", domain.ErrNotFound, id)
	}
	return cloneSchedule(s), nil
}

// ListSchedules implements api.Service, ordered by name.
func (f *Fake) ListSchedules(context.Context) (api.ScheduleList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(MethodListSchedules); err != nil {
		return api.ScheduleList{}, err
	}
	out := make([]domain.Schedule, 0, len(f.schedules))
	for _, s := range f.schedules {
		out = append(out, cloneSchedule(s))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return api.ScheduleList{Schedules: out, Count: len(out), AsOfMs: f.createdAtMs}, nil
}

// UpdateSchedule implements api.Service: mutate runs under the lock on a
// copy, and the result is normalised before it is stored.
func (f *Fake) UpdateSchedule(_ context.Context, id, principal string, mutate func(*domain.ScheduleSpec) error) (domain.Schedule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts.UpdateAttempts++
	if err := f.fail(MethodUpdateSchedule); err != nil {
		return domain.Schedule{}, err
	}
	s, ok := f.schedules[id]
	if !ok {
		return domain.Schedule{}, fmt.Errorf("%w: schedule %q", domain.ErrNotFound, id)
	}
	spec := cloneSpec(s.ScheduleSpec)
	if err := mutate(&spec); err != nil {
		return domain.Schedule{}, err
	}
	if err := spec.Normalize(f.TargetKnown); err != nil {
		return domain.Schedule{}, err
	}
	if err := f.checkSupported(spec); err != nil {
		return domain.Schedule{}, err
	}
	if err := f.nameFreeLocked(spec.Name, id); err != nil {
		return domain.Schedule{}, err
	}
	s.ScheduleSpec = cloneSpec(spec)
	s.UpdatedAtMs = f.tick()
	s.UpdatedBy = principal
	s.NextRunMs = f.nextRun(spec)
	f.schedules[id] = s
	f.counts.Updates++
	f.lastPrincipal = principal
	return cloneSchedule(s), nil
}

// DeleteSchedule implements api.Service.
func (f *Fake) DeleteSchedule(_ context.Context, id, principal string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(MethodDeleteSchedule); err != nil {
		return err
	}
	if _, ok := f.schedules[id]; !ok {
		return fmt.Errorf("%w: schedule %q", domain.ErrNotFound, id)
	}
	delete(f.schedules, id)
	f.counts.Deletes++
	f.lastPrincipal = principal
	return nil
}

// RunSchedule implements api.Service: a running job with pending tasks, as
// starter answers it; 409 while another job of the schedule is active.
func (f *Fake) RunSchedule(ctx context.Context, id string, force bool, principal string) (domain.Job, error) {
	return f.RunScheduleWith(ctx, id, domain.RunOptions{Force: force}, principal)
}

// RunScheduleWith implements api.Service (RunSchedule with a dry run).
func (f *Fake) RunScheduleWith(_ context.Context, id string, opts domain.RunOptions, principal string) (domain.Job, error) {
	force := opts.Force
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(MethodRunSchedule); err != nil {
		return domain.Job{}, err
	}
	s, ok := f.schedules[id]
	if !ok {
		return domain.Job{}, fmt.Errorf("%w: schedule %q", domain.ErrNotFound, id)
	}
	for _, j := range f.jobs {
		if j.ScheduleID == id && !j.State.Terminal() {
			return domain.Job{}, &domain.ActiveJobError{ScheduleID: id, JobID: j.ID}
		}
	}
	f.seq++
	now := f.tick()
	j := domain.Job{
		ID: workflows.ManualJobID(id, now), RunID: fmt.Sprintf("run-%d", f.seq),
		ScheduleID: id, ScheduleName: s.Name, Target: s.Target, State: domain.StateRunning,
		Forced: force, DryRun: opts.DryRun, TriggeredBy: principal, StartedAtMs: now,
	}
	j.UIURL = fakeUIURL + "/namespaces/default/workflows/" + j.ID + "/" + j.RunID + "/history"
	for _, t := range s.Tasks {
		j.Tasks = append(j.Tasks, domain.TaskRun{TaskType: t, State: domain.StatePending, Details: map[string]any{}})
	}
	f.jobs[j.ID] = j
	s.LastRunMs, s.LastRunState, s.LastJobID = now, j.State, j.ID
	f.schedules[id] = s
	f.counts.Runs++
	f.lastPrincipal = principal
	return cloneJob(j), nil
}

// fakeUIURL is the Temporal UI the fake's jobs and drills link to.
const fakeUIURL = "http://127.0.0.1:8233"

// ListJobs implements api.Service in Temporal visibility's order (active
// jobs first, then newest first); the page token is the decimal offset of
// the next page.
func (f *Fake) ListJobs(_ context.Context, filter api.JobFilter) (api.JobPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastFilter = filter
	if err := f.fail(MethodListJobs); err != nil {
		return api.JobPage{}, err
	}
	var all []domain.Job
	for _, j := range f.jobs {
		switch {
		case filter.ActiveOnly && j.State.Terminal(),
			filter.ScheduleID != "" && j.ScheduleID != filter.ScheduleID,
			filter.State != "" && j.State != filter.State:
			continue
		}
		all = append(all, cloneJob(j))
	}
	sort.Slice(all, func(a, b int) bool {
		if ta, tb := all[a].State.Terminal(), all[b].State.Terminal(); ta != tb {
			return tb
		}
		if all[a].StartedAtMs != all[b].StartedAtMs {
			return all[a].StartedAtMs > all[b].StartedAtMs
		}
		return all[a].ID < all[b].ID
	})
	// Page tokens are wrapped and checked as starter does: one issued for
	// other filters, or none issued at all, is refused alike.
	query := fmt.Sprintf("active_only=%t schedule_id=%s state=%s", filter.ActiveOnly, filter.ScheduleID, filter.State)
	off := 0
	if filter.NextPageToken != "" {
		raw, err := starter.DecodePageToken(query, filter.NextPageToken)
		if err != nil {
			return api.JobPage{}, err
		}
		n, err := strconv.Atoi(string(raw))
		if err != nil || n < 0 || n > len(all) {
			return api.JobPage{}, &domain.ValidationError{Field: "next_page_token", Message: "the page token is past the end of this listing"}
		}
		off = n
	}
	limit := filter.Limit
	if limit <= 0 {
		limit = api.DefaultJobLimit
	}
	end := min(off+limit, len(all))
	page := api.JobPage{Jobs: all[off:end], AsOfMs: f.createdAtMs}
	page.Count = len(page.Jobs)
	if end < len(all) {
		page.NextPageToken = starter.EncodePageToken(query, []byte(strconv.Itoa(end)))
	}
	return page, nil
}

// GetJob implements api.Service (advancing the job when auto-progress is on).
func (f *Fake) GetJob(_ context.Context, id string) (domain.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(MethodGetJob); err != nil {
		return domain.Job{}, err
	}
	j, ok := f.jobs[id]
	if !ok {
		return domain.Job{}, fmt.Errorf("%w: job %q", domain.ErrNotFound, id)
	}
	if f.autoProgress && !j.State.Terminal() {
		j = f.advanceLocked(cloneJob(j))
		f.jobs[id] = j
	}
	return cloneJob(j), nil
}

// WaitJob implements api.Service without holding the request: it answers
// at once as GetJob does (one step of auto-progress, failures injected for
// MethodGetJob), which is what the real one answers when the wait has
// passed. A job the fake has not finished stays as it is.
func (f *Fake) WaitJob(ctx context.Context, id string, wait time.Duration) (domain.Job, error) {
	if err := ctx.Err(); err != nil {
		return domain.Job{}, err
	}
	return f.GetJob(ctx, id)
}

func (f *Fake) advanceLocked(j domain.Job) domain.Job {
	now := f.tick()
	if j.State == domain.StatePending || (len(j.Tasks) > 0 && j.Tasks[0].State == domain.StatePending) {
		j.State = domain.StateRunning
		if len(j.Tasks) > 0 {
			j.Tasks[0].State, j.Tasks[0].StartedAtMs, j.Tasks[0].Attempt = domain.StateRunning, now, 1
		}
		return j
	}
	done := 0
	for i := range j.Tasks {
		t := &j.Tasks[i]
		if t.State.Terminal() {
			done++
			continue
		}
		if t.State == domain.StatePending {
			t.State, t.StartedAtMs, t.Attempt = domain.StateRunning, now, 1
		}
		t.ProgressPct += 50
		if t.ProgressPct >= 100 {
			t.ProgressPct, t.FinishedAtMs = 100, now
			if t.TaskType == f.failTask {
				t.State, t.ErrorMessage = domain.StateFailed, "injected failure"
				j.State, j.ErrorMessage = domain.StateFailed, string(t.TaskType)+" failed: injected failure"
				j.FinishedAtMs, j.DurationMs = now, now-j.StartedAtMs
				for k := i + 1; k < len(j.Tasks); k++ {
					j.Tasks[k].State = domain.StateSkipped
				}
				j.ProgressPct = progress(j.Tasks)
				return j
			}
			t.State, t.ResultSummary = domain.StateSucceeded, "ok"
			done++
			if i+1 < len(j.Tasks) {
				j.Tasks[i+1].State, j.Tasks[i+1].StartedAtMs, j.Tasks[i+1].Attempt = domain.StateRunning, now, 1
			}
		}
		break
	}
	j.ProgressPct = progress(j.Tasks)
	if done == len(j.Tasks) {
		j.State, j.ProgressPct = domain.StateSucceeded, 100
		j.FinishedAtMs, j.DurationMs = now, now-j.StartedAtMs
		j.ResultSummary = fmt.Sprintf("%d tasks succeeded", len(j.Tasks))
	}
	return j
}

func progress(ts []domain.TaskRun) float64 {
	if len(ts) == 0 {
		return 0
	}
	var sum float64
	for _, t := range ts {
		if t.State.Terminal() {
			sum += 100
		} else {
			sum += t.ProgressPct
		}
	}
	return sum / float64(len(ts))
}

// CancelJob implements api.Service: 409 for a job that is not active. As
// starter does, it answers the job as it was when the cancellation was
// requested; the job reads as cancelled afterwards.
func (f *Fake) CancelJob(_ context.Context, id, principal string) (domain.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(MethodCancelJob); err != nil {
		return domain.Job{}, err
	}
	j, ok := f.jobs[id]
	if !ok {
		return domain.Job{}, fmt.Errorf("%w: job %q", domain.ErrNotFound, id)
	}
	if j.State.Terminal() {
		return cloneJob(j), fmt.Errorf("%w: job %s is already %s", domain.ErrConflict, id, j.State)
	}
	answer := cloneJob(j)
	j = cloneJob(j)
	now := f.tick()
	j.State, j.FinishedAtMs, j.DurationMs = domain.StateCancelled, now, now-j.StartedAtMs
	for i := range j.Tasks {
		if !j.Tasks[i].State.Terminal() {
			j.Tasks[i].State = domain.StateCancelled
		}
	}
	f.jobs[id] = j
	if s, ok := f.schedules[j.ScheduleID]; ok && s.LastJobID == id {
		s.LastRunState = j.State
		f.schedules[j.ScheduleID] = s
	}
	f.counts.Cancels++
	f.lastPrincipal = principal
	return answer, nil
}

// Ready implements api.Service.
func (f *Fake) Ready(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail(MethodReady)
}

// Status implements api.Service.
func (f *Fake) Status(context.Context) (api.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(MethodStatus); err != nil {
		return api.Status{}, err
	}
	st := api.Status{Service: "themis-maintenance", TemporalAddress: "127.0.0.1:7233",
		Namespace: config.DefaultNamespace, TaskQueue: config.DefaultTaskQueue, TemporalUIURL: fakeUIURL, DefaultTarget: f.defaultTarget,
		Schedules: len(f.schedules), AsOfMs: f.createdAtMs}
	for _, s := range f.schedules {
		if s.Enabled {
			st.EnabledSchedules++
		}
	}
	for _, j := range f.jobs {
		if !j.State.Terminal() {
			st.ActiveJobs++
		}
	}
	return st, nil
}

// TargetKnown implements api.Service (starter's answer). It takes no lock
// (the targets never change), so it may be called from inside
// UpdateSchedule's mutate.
func (f *Fake) TargetKnown(name string) bool { return f.catalogue.TargetKnown(name) }

// DefaultTarget implements api.Service.
func (f *Fake) DefaultTarget() string { return f.catalogue.DefaultTarget() }

// Deep copies through JSON keep callers and the store apart (the race
// detector would notice shared slices and maps).

func cloneSpec(s domain.ScheduleSpec) domain.ScheduleSpec {
	var out domain.ScheduleSpec
	mustRoundTrip(s, &out)
	return out
}

func cloneSchedule(s domain.Schedule) domain.Schedule {
	s.ScheduleSpec = cloneSpec(s.ScheduleSpec)
	return s
}

func cloneJob(j domain.Job) domain.Job {
	var out domain.Job
	mustRoundTrip(j, &out)
	return out
}

func mustRoundTrip(in, out any) {
	b, err := json.Marshal(in)
	if err != nil {
		panic(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		panic(err)
	}
}
