package apitest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/audit"
	"github.com/themis-maintenance/themis/workflows"
)

// The fake's drills follow the real drill's state machine in one jump per
// call, so that handler, client and CLI tests exercise every transition:
//
//	StartDrill                → running, step preflight
//	(first GetDrill/ListDrills) → awaiting_approval "start"
//	approve start             → canary, restore, verify, measure done;
//	                            awaiting_approval "complete"
//	approve complete          → cleanup, report; passed or failed (objectives)
//	reject (awaited step)     → cleanup, report; rejected
//	abort (not finished)      → cleanup, report; aborted
//
// A decision for a step that is not awaited, and an abort of a finished
// drill, are domain.ErrConflict (409), as in package starter.

// Drill objectives of the fake's targets.
const (
	FakeRTOObjectiveMs = 900_000
	FakeRPOObjectiveMs = 60_000
)

// SetDrillMeasurement sets the RTO and RPO that later drills measure
// (default 2 minutes and 5 seconds: both objectives met).
func (f *Fake) SetDrillMeasurement(rtoMs, rpoMs int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drillRTOMs, f.drillRPOMs = rtoMs, rpoMs
}

// SeedDrill stores a drill as given.
func (f *Fake) SeedDrill(d domain.Drill) domain.Drill {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drills[d.ID] = cloneDrill(d)
	return d
}

// Drill returns the stored drill with id, as stored (not advanced).
func (f *Fake) Drill(id string) (domain.Drill, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.drills[id]
	return cloneDrill(d), ok
}

// StartDrill implements api.DrillService.
func (f *Fake) StartDrill(ctx context.Context, target, principal string) (domain.Drill, error) {
	return f.StartDrillRequest(ctx, api.DrillStartRequest{Target: target}, principal)
}

// StartDrillRequest implements api.DrillRequestStarter: the drill records
// the requested strategy.
func (f *Fake) StartDrillRequest(_ context.Context, req api.DrillStartRequest, principal string) (domain.Drill, error) {
	target := req.Target
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(MethodStartDrill); err != nil {
		return domain.Drill{}, err
	}
	if target == "" {
		target = f.defaultTarget
	}
	if !f.TargetKnown(target) {
		return domain.Drill{}, &domain.ValidationError{Field: "target", Message: fmt.Sprintf("unknown target %q", target)}
	}
	now := f.tick()
	d := domain.Drill{
		ID: workflows.ManualDrillID(target, now), RunID: fmt.Sprintf("drill-run-%d", now), Target: target,
		State: domain.DrillRunning, Step: "preflight", RequestedBy: principal, StartedAtMs: now,
		Steps: []domain.DrillStep{}, Approvals: []domain.Approval{}, Strategy: req.Strategy,
	}
	d.UIURL = fakeUIURL + "/namespaces/default/workflows/" + d.ID + "/" + d.RunID + "/history"
	f.drills[d.ID] = d
	f.counts.DrillStarts++
	f.lastPrincipal = principal
	return cloneDrill(d), nil
}

// observeLocked lets a drill in preflight reach its first approval; the
// objectives are known from preflight on, as in the drill workflow.
func (f *Fake) observeLocked(d domain.Drill) domain.Drill {
	if d.State != domain.DrillRunning || d.Step != "preflight" {
		return d
	}
	now := f.tick()
	d.Steps = append(d.Steps, domain.DrillStep{Name: "preflight", State: "succeeded", StartedAtMs: d.StartedAtMs,
		FinishedAtMs: now, DurationMs: now - d.StartedAtMs, Detail: "target healthy; backup-1 present; scratch space free"})
	d.RTOObjectiveMs, d.RPOObjectiveMs = FakeRTOObjectiveMs, FakeRPOObjectiveMs
	d.State, d.Step, d.Awaiting = domain.DrillAwaiting, "await_start", domain.ApprovalStart
	f.drills[d.ID] = d
	return d
}

// GetDrill implements api.DrillService.
func (f *Fake) GetDrill(_ context.Context, id string) (domain.Drill, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(MethodGetDrill); err != nil {
		return domain.Drill{}, err
	}
	d, ok := f.drills[id]
	if !ok {
		return domain.Drill{}, fmt.Errorf("%w: drill %q", domain.ErrNotFound, id)
	}
	return cloneDrill(f.observeLocked(d)), nil
}

// WaitDrill implements api.DrillService: the drill as GetDrill answers it,
// once it meets w (another call moved it) or w.Wait has passed.
func (f *Fake) WaitDrill(ctx context.Context, id string, w api.DrillWait) (domain.Drill, error) {
	deadline := time.Now().Add(w.Wait)
	for {
		d, err := f.GetDrill(ctx, id)
		if err != nil || w.Done(d) || !time.Now().Before(deadline) {
			return d, err
		}
		select {
		case <-ctx.Done():
			return domain.Drill{}, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ListDrills implements api.DrillService: newest first.
func (f *Fake) ListDrills(_ context.Context, limit int) (api.DrillList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(MethodListDrills); err != nil {
		return api.DrillList{}, err
	}
	out := make([]domain.Drill, 0, len(f.drills))
	for _, d := range f.drills {
		out = append(out, cloneDrill(f.observeLocked(d)))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].StartedAtMs != out[j].StartedAtMs {
			return out[i].StartedAtMs > out[j].StartedAtMs
		}
		return out[i].ID < out[j].ID
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return api.DrillList{Drills: out, Count: len(out), AsOfMs: f.createdAtMs}, nil
}

// DecideDrill implements api.DrillService.
func (f *Fake) DecideDrill(_ context.Context, id string, approve bool, step, comment, principal string) (domain.Drill, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(MethodDecideDrill); err != nil {
		return domain.Drill{}, err
	}
	if step != domain.ApprovalStart && step != domain.ApprovalComplete {
		return domain.Drill{}, &domain.ValidationError{Field: "step", Message: fmt.Sprintf("must be %q or %q", domain.ApprovalStart, domain.ApprovalComplete)}
	}
	d, ok := f.drills[id]
	if !ok {
		return domain.Drill{}, fmt.Errorf("%w: drill %q", domain.ErrNotFound, id)
	}
	d = cloneDrill(d)
	if d.Awaiting != step {
		awaiting := d.Awaiting
		if awaiting == "" {
			awaiting = "nothing"
		}
		return domain.Drill{}, fmt.Errorf("%w: drill %s is awaiting %s, not approval %q", domain.ErrConflict, id, awaiting, step)
	}
	now := f.tick()
	decision := "approved"
	if !approve {
		decision = "rejected"
	}
	d.Approvals = append(d.Approvals, domain.Approval{Step: step, Decision: decision, Approver: principal, Comment: comment, AtMs: now, Channel: domain.ChannelAPI})
	waitStart := now - 1000
	if n := len(d.Steps); n > 0 {
		waitStart = d.Steps[n-1].FinishedAtMs
	}
	d.Steps = append(d.Steps, domain.DrillStep{Name: "await_" + step, State: domain.StepState(decision), StartedAtMs: waitStart, FinishedAtMs: now,
		DurationMs: now - waitStart, Detail: decision + " by " + principal})
	switch {
	case !approve:
		d.Reason = fmt.Sprintf("rejected by %s at %s: %s", principal, step, comment)
		f.finishLocked(&d, domain.DrillRejected)
	case step == domain.ApprovalStart:
		f.measureLocked(&d)
	default:
		state := domain.DrillFailed
		if d.Passed {
			state = domain.DrillPassed
			d.Reason = "RTO and RPO within objectives"
		}
		f.finishLocked(&d, state)
	}
	f.drills[id] = d
	f.counts.DrillDecisions++
	f.lastPrincipal = principal
	return cloneDrill(d), nil
}

// measureLocked runs the steps between the approvals.
func (f *Fake) measureLocked(d *domain.Drill) {
	t := f.tick()
	add := func(name string, ms int64, detail string) {
		d.Steps = append(d.Steps, domain.DrillStep{Name: name, State: "succeeded", StartedAtMs: t, FinishedAtMs: t + ms, DurationMs: ms, Detail: detail})
		t += ms
	}
	add("canary", 10_000, "20 canary rows; simulated failure")
	d.FailureAtMs = t
	d.CanaryRows = 20
	add("restore", f.drillRTOMs*3/4, "restored backup-1 into scratch")
	add("verify", f.drillRTOMs-f.drillRTOMs*3/4, "integrity ok; serving queries")
	d.VerifiedAtMs = t
	d.NewestCanaryMs = d.FailureAtMs - f.drillRPOMs
	d.RTOMs, d.RPOMs = d.VerifiedAtMs-d.FailureAtMs, d.FailureAtMs-d.NewestCanaryMs
	d.Measured = true
	d.Passed = d.RTOMs <= d.RTOObjectiveMs && d.RPOMs <= d.RPOObjectiveMs
	add("measure", 0, fmt.Sprintf("RTO %d ms (objective %d), RPO %d ms (objective %d)", d.RTOMs, d.RTOObjectiveMs, d.RPOMs, d.RPOObjectiveMs))
	d.RestoredFrom, d.Scratch = "backup-1", "scratch/"+d.ID
	if d.Strategy == "" {
		d.Strategy = domain.DrillStrategyBackupRestore
	}
	d.BackupID, d.BackupAtMs = "backup-1", d.FailureAtMs-f.drillRPOMs
	d.RestoredBytes, d.CopyMs = 200_000_000, f.drillRTOMs/2
	d.RestoreMBps = domain.MBPerSecond(d.RestoredBytes, d.CopyMs)
	d.RPOBasis, d.ClockSource = domain.RPOBasisBackup, "host fake-host"
	f.clock = max(f.clock, t)
	d.State, d.Step, d.Awaiting = domain.DrillAwaiting, "await_complete", domain.ApprovalComplete
}

// finishLocked cleans up and reports.
func (f *Fake) finishLocked(d *domain.Drill, state domain.DrillState) {
	now := f.tick()
	d.Steps = append(d.Steps,
		domain.DrillStep{Name: "cleanup", State: "succeeded", StartedAtMs: now, FinishedAtMs: now + 500, DurationMs: 500, Detail: "removed 1 item(s)"},
		domain.DrillStep{Name: "report", State: "succeeded", StartedAtMs: now + 500, FinishedAtMs: now + 500, Detail: string(state)})
	f.clock = max(f.clock, now+500)
	d.CleanedUp = true
	d.State, d.Step, d.Awaiting, d.FinishedAtMs = state, "report", "", now+500
}

// AbortDrill implements api.DrillService.
func (f *Fake) AbortDrill(_ context.Context, id, reason, principal string) (domain.Drill, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(MethodAbortDrill); err != nil {
		return domain.Drill{}, err
	}
	d, ok := f.drills[id]
	if !ok {
		return domain.Drill{}, fmt.Errorf("%w: drill %q", domain.ErrNotFound, id)
	}
	d = cloneDrill(d)
	if d.State.Terminal() {
		return domain.Drill{}, fmt.Errorf("%w: drill %s is already %s", domain.ErrConflict, id, d.State)
	}
	d.Reason = fmt.Sprintf("aborted by %s: %s", principal, reason)
	f.finishLocked(&d, domain.DrillAborted)
	f.drills[id] = d
	f.counts.DrillAborts++
	f.lastPrincipal = principal
	return cloneDrill(d), nil
}

// SetHealth makes Health answer rep (instead of the computed report).
func (f *Fake) SetHealth(rep api.HealthReport) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.health, f.healthSet = rep, true
}

// Health implements api.InfoService with the modules and messages of
// starter's prober: every module healthy, except "jobs" (degraded) when a
// job failed.
func (f *Fake) Health(context.Context) (api.HealthReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(MethodHealth); err != nil {
		return api.HealthReport{}, err
	}
	if f.healthSet {
		var out api.HealthReport
		mustRoundTrip(f.health, &out)
		return out, nil
	}
	at := f.clock
	rep := api.HealthReport{OverallStatus: api.HealthOK, CheckedAtMs: at, Modules: []api.HealthSignal{
		{Name: "temporal", Status: api.HealthOK, Message: "answered in 1 ms", CheckedAtMs: at},
		{Name: "jobs", Status: api.HealthOK, Message: "no failed job in the last 24 hours", CheckedAtMs: at},
	}}
	failed := 0
	for _, j := range f.jobs {
		if j.State == domain.StateFailed {
			failed++
		}
	}
	if failed > 0 {
		rep.Modules[1].Status, rep.Modules[1].Message = api.HealthDegraded, fmt.Sprintf("%d failed job(s) in the last 24 hours", failed)
		rep.Modules[1].Details = map[string]any{"failed_jobs_24h": failed}
		rep.OverallStatus = api.HealthDegraded
	}
	for _, t := range f.catalogue.Targets() {
		rep.Modules = append(rep.Modules, api.HealthSignal{Name: "target:" + t.Name, Status: api.HealthOK, Message: "reachable", CheckedAtMs: at})
	}
	return rep, nil
}

// TaskTypes implements api.InfoService with starter's answer over the real
// drivers' capabilities.
func (f *Fake) TaskTypes() []api.TaskTypeInfo { return f.catalogue.TaskTypes() }

// Targets implements api.InfoService with starter's answer.
func (f *Fake) Targets() []api.TargetInfo { return f.catalogue.Targets() }

func cloneDrill(d domain.Drill) domain.Drill {
	var out domain.Drill
	mustRoundTrip(d, &out)
	return out
}

// AuditLog is an in-memory api.AuditLog with the file log's rules
// (audit.Marshal normalisation, audit.Select for reads).
type AuditLog struct {
	mu     sync.Mutex
	events []audit.Event
	err    error
}

var _ api.AuditLog = (*AuditLog)(nil)

// NewAuditLog returns an empty log.
func NewAuditLog() *AuditLog { return &AuditLog{} }

// FailWith makes later Record calls fail with err (nil: succeed again).
func (a *AuditLog) FailWith(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.err = err
}

// Record implements api.AuditLog.
func (a *AuditLog) Record(_ context.Context, e audit.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	line, err := audit.Marshal(e)
	if err != nil {
		return err
	}
	var stored audit.Event
	if err := json.Unmarshal(line, &stored); err != nil {
		return err
	}
	a.events = append(a.events, stored)
	return nil
}

// Read implements api.AuditLog.
func (a *AuditLog) Read(_ context.Context, since time.Time, limit int) (audit.Page, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return audit.Select(a.events, since, limit), nil
}

// Events returns every recorded event in order.
func (a *AuditLog) Events() []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.events)
}

// DrillTrend implements api.DrillService: the fake's finished drills of
// target, as starter builds the trend from the history store.
func (f *Fake) DrillTrend(_ context.Context, target string, limit int) (domain.DrillTrend, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(MethodDrillTrend); err != nil {
		return domain.DrillTrend{}, err
	}
	if !f.catalogue.TargetKnown(target) {
		return domain.DrillTrend{}, fmt.Errorf("%w: target %q is not configured", domain.ErrNotFound, target)
	}
	var points []domain.DrillTrendPoint
	for _, d := range f.drills {
		if d.Target == target && d.State.Terminal() {
			points = append(points, domain.TrendPoint(d))
		}
	}
	tr := domain.NewDrillTrend(target, points)
	if limit > 0 && len(tr.Points) > limit {
		tr = domain.NewDrillTrend(target, tr.Points[len(tr.Points)-limit:])
	}
	return tr, nil
}
