package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// DrillTargetInput names a drill and its target.
type DrillTargetInput struct {
	DrillID string `json:"drill_id"`
	Target  string `json:"target"`
	// ScratchHost, for clean-up, is the host that has the scratch instance:
	// clean-up on another host (that host is gone) removes only the canary.
	ScratchHost string `json:"scratch_host,omitempty"`
	// Strategy and FailureAt, for the restore, are the drill's strategy
	// ("" = the target's) and its simulated failure instant.
	Strategy  string    `json:"strategy,omitempty"`
	FailureAt time.Time `json:"failure_at,omitzero"`
}

// CanaryInput runs the canary writer for a fixed time.
type CanaryInput struct {
	DrillID  string        `json:"drill_id"`
	Target   string        `json:"target"`
	Interval time.Duration `json:"interval"`
	Duration time.Duration `json:"duration"`
}

// CanaryResult reports the canary rows written and the simulated failure
// instant: the moment the writer stopped, just after its last commit, read
// from the clock of Host. The drill restores and verifies on that host, so
// the failure and serving instants come from one clock.
type CanaryResult struct {
	Rows         int64     `json:"rows"`
	LastWriteAt  time.Time `json:"last_write_at"`
	FailureAt    time.Time `json:"failure_at"`
	FirstWriteAt time.Time `json:"first_write_at"`
	// Host is the host whose clock stamped the rows and FailureAt (zero
	// when the worker polls no host queue).
	Host Host `json:"host,omitzero"`
}

// VerifyInput asks for verification of a scratch instance.
type VerifyInput struct {
	Target  string         `json:"target"`
	Scratch driver.Scratch `json:"scratch"`
}

// DrillReportInput stores a drill report in the history store.
type DrillReportInput struct {
	DrillID string       `json:"drill_id"`
	Target  string       `json:"target"`
	Report  domain.Drill `json:"report"`
}

// DrillStore is the part of the history store drills use.
type DrillStore interface {
	SaveDrillReport(ctx context.Context, id, target string, report json.RawMessage) error
}

// BackupRemovals is implemented by history stores that can record that a
// backup's file was deleted (history.Store does).
type BackupRemovals interface {
	MarkBackupRemoved(ctx context.Context, target, path string, at time.Time) error
}

func (a *Activities) driller(target string) (driver.Target, driver.Driller, error) {
	t, d, err := a.Registry.Lookup(target)
	if err != nil {
		return t, nil, classify(err, 0, 0)
	}
	dr, ok := d.(driver.Driller)
	if !ok {
		return t, nil, classify(driver.NotSupported(d.Name(), domain.TaskDisasterRecoveryDrill), 0, 0)
	}
	return t, dr, nil
}

// DrillPreflightResult is the preflight finding plus the target's RTO and
// RPO objectives from the worker's configuration.
type DrillPreflightResult struct {
	driver.DrillPreflight
	RTOObjective time.Duration `json:"rto_objective"`
	RPOObjective time.Duration `json:"rpo_objective"`
}

// DrillPreflight checks the target, the restore source and scratch space
// for the drill's strategy: in.Strategy, when set, replaces the target's
// (the driver reads it from Target.DrillStrategy).
func (a *Activities) DrillPreflight(ctx context.Context, in DrillTargetInput) (DrillPreflightResult, error) {
	t, dr, err := a.driller(in.Target)
	if err != nil {
		return DrillPreflightResult{}, err
	}
	if in.Strategy != "" {
		t.DrillStrategy = in.Strategy
	}
	res, err := dr.DrillPreflight(ctx, t, a.History)
	if err != nil {
		return DrillPreflightResult{}, classify(fmt.Errorf("preflight of %s: %w", in.Target, err), int(activity.GetInfo(ctx).Attempt), 0)
	}
	return DrillPreflightResult{DrillPreflight: res, RTOObjective: t.RTOObjective, RPOObjective: t.RPOObjective}, nil
}

// DrillCanary writes timestamped canary rows at a fixed rate for the given
// duration, heartbeating each row, and then stops: that stop is the
// simulated failure instant. A retried attempt continues the sequence.
func (a *Activities) DrillCanary(ctx context.Context, in CanaryInput) (CanaryResult, error) {
	t, dr, err := a.driller(in.Target)
	if err != nil {
		return CanaryResult{}, err
	}
	var res CanaryResult
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &res)
	}
	interval := in.Interval
	if interval <= 0 {
		interval = time.Second
	}
	start := time.Now()
	if !res.FirstWriteAt.IsZero() {
		start = res.FirstWriteAt
	}
	end := start.Add(in.Duration)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		now := time.Now()
		if !now.Before(end) {
			break
		}
		if err := dr.CanaryWrite(ctx, t, in.DrillID, res.Rows+1, now); err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			return res, classify(fmt.Errorf("canary write %d: %w", res.Rows+1, err), int(activity.GetInfo(ctx).Attempt), 0)
		}
		res.Rows++
		res.LastWriteAt = now
		if res.FirstWriteAt.IsZero() {
			res.FirstWriteAt = now
		}
		activity.RecordHeartbeat(ctx, res)
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		}
	}
	res.FailureAt = time.Now()
	res.Host = HostOf(ctx)
	return res, nil
}

// RestoreResult locates the scratch instance and names the host that made
// it: every later step that touches the instance runs on Host.Queue.
type RestoreResult struct {
	driver.Scratch
	Host
}

// DrillRestore restores the target into an isolated scratch instance. A
// failed attempt removes what it left on this host before the retry, which
// may run on another host.
func (a *Activities) DrillRestore(ctx context.Context, in DrillTargetInput) (RestoreResult, error) {
	t, dr, err := a.driller(in.Target)
	if err != nil {
		return RestoreResult{}, err
	}
	host := HostOf(ctx)
	hb := newHeartbeater(ctx, int(activity.GetInfo(ctx).Attempt), Heartbeat{})
	stop := hb.keepAlive(a.heartbeatInterval())
	defer stop()
	s, err := dr.DrillRestore(ctx, t, a.History, driver.DrillRestoreRequest{DrillID: in.DrillID, Strategy: in.Strategy, FailureAt: in.FailureAt}, hb.report)
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		if _, cerr := a.cleanupScratch(cctx, in.Target, in.DrillID); cerr != nil {
			activity.GetLogger(ctx).Warn("removing a failed restore's scratch instance failed; orphan_cleanup on this host removes it", "host", host.ID, "error", cerr)
		}
		if ctx.Err() != nil {
			return RestoreResult{Scratch: s, Host: host}, ctx.Err()
		}
		return RestoreResult{Scratch: s, Host: host}, classify(fmt.Errorf("restore %s on host %s: %w", in.Target, host.ID, err), int(activity.GetInfo(ctx).Attempt), 0)
	}
	return RestoreResult{Scratch: s, Host: host}, nil
}

// DrillVerify verifies the scratch instance and notes when it served.
func (a *Activities) DrillVerify(ctx context.Context, in VerifyInput) (driver.DrillVerification, error) {
	t, dr, err := a.driller(in.Target)
	if err != nil {
		return driver.DrillVerification{}, err
	}
	hb := newHeartbeater(ctx, int(activity.GetInfo(ctx).Attempt), Heartbeat{Note: "verifying"})
	stop := hb.keepAlive(a.heartbeatInterval())
	defer stop()
	v, err := dr.DrillVerify(ctx, t, in.Scratch)
	if err != nil {
		if ctx.Err() != nil {
			return v, ctx.Err()
		}
		return v, classify(fmt.Errorf("verify restored %s: %w", in.Target, err), int(activity.GetInfo(ctx).Attempt), 0)
	}
	return v, nil
}

// DrillCleanup removes the scratch instance and the canary table. It is
// safe to call at any step, any number of times, on any host: a host that
// never had the drill's scratch instance finds nothing to remove there.
func (a *Activities) DrillCleanup(ctx context.Context, in DrillTargetInput) (driver.DrillCleanupReport, error) {
	t, dr, err := a.driller(in.Target)
	if err != nil {
		return driver.DrillCleanupReport{}, err
	}
	host := HostOf(ctx)
	var rep driver.DrillCleanupReport
	if in.ScratchHost == "" || in.ScratchHost == host.ID {
		if rep, err = a.cleanupScratch(ctx, in.Target, in.DrillID); err != nil {
			return rep, err
		}
		if host.ID != "" {
			rep.Removed = append(rep.Removed, "scratch instance on host "+host.ID)
		}
	}
	if err := dr.CanaryCleanup(ctx, t, in.DrillID); err != nil {
		return rep, fmt.Errorf("remove canary of drill %s: %w", in.DrillID, err)
	}
	rep.Removed = append(rep.Removed, "canary table on "+in.Target)
	return rep, nil
}

// cleanupScratch removes the drill's scratch instance on this host and
// records its removed backups.
func (a *Activities) cleanupScratch(ctx context.Context, target, drillID string) (driver.DrillCleanupReport, error) {
	t, dr, err := a.driller(target)
	if err != nil {
		return driver.DrillCleanupReport{}, err
	}
	rep, err := dr.DrillCleanup(ctx, t, drillID)
	if err != nil {
		return rep, fmt.Errorf("clean up drill %s: %w", drillID, err)
	}
	// The drill's backup was verified and recorded; now that its file is
	// gone it must not be reported as the latest verified backup.
	if len(rep.RemovedBackups) > 0 && a.History != nil {
		store, ok := a.History.(BackupRemovals)
		if !ok {
			return rep, fmt.Errorf("history store cannot record removed backups")
		}
		for _, path := range rep.RemovedBackups {
			if err := store.MarkBackupRemoved(ctx, target, path, time.Now()); err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

// SaveDrillReport stores the drill's report in the history store.
func (a *Activities) SaveDrillReport(ctx context.Context, in DrillReportInput) error {
	store, ok := a.History.(DrillStore)
	if !ok {
		return fmt.Errorf("history store cannot keep drill reports")
	}
	raw, err := json.Marshal(in.Report)
	if err != nil {
		return fmt.Errorf("encode drill report %s: %w", in.DrillID, err)
	}
	if err := store.SaveDrillReport(ctx, in.DrillID, in.Target, raw); err != nil {
		return err
	}
	// The report keeps every decision with its channel; the audit log
	// gets those the API did not see. A failure there is logged, never
	// fatal to the drill.
	if err := a.auditDrillDecisions(ctx, in.Report); err != nil {
		activity.GetLogger(ctx).Warn("drill decisions not audited", "drill_id", in.DrillID, "error", err)
	}
	return nil
}
