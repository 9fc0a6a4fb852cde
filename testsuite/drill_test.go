package testsuite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

func (e *Env) waitDrill(id string, timeout time.Duration, cond func(domain.Drill) bool) domain.Drill {
	e.T.Helper()
	var last domain.Drill
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		d, err := e.Service.GetDrill(context.Background(), id)
		if err == nil {
			last = d
			if cond(d) {
				return d
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.T.Fatalf("drill %s: condition not met in %s; last state %s step %s awaiting %q reason %q", id, timeout, last.State, last.Step, last.Awaiting, last.Reason)
	return last
}

func awaiting(step string) func(domain.Drill) bool {
	return func(d domain.Drill) bool { return d.Awaiting == step }
}

func finished(d domain.Drill) bool { return d.FinishedAtMs > 0 }

// assertNothingLeft checks a drill left no scratch directory behind.
func (e *Env) assertNothingLeft(d domain.Drill) {
	e.T.Helper()
	require.True(e.T, d.CleanedUp, "clean-up ran")
	entries, _ := os.ReadDir(e.Config.Targets[0].ScratchDir)
	for _, en := range entries {
		require.NotContains(e.T, en.Name(), "drill", "scratch entry %s left behind", filepath.Join(e.Config.Targets[0].ScratchDir, en.Name()))
	}
}

// verifiedBackup runs backup_verification on target with the worker's
// driver and history store, as the monthly job does, and returns the
// verified backup it recorded: a SQLite drill restores the latest one.
func (e *Env) verifiedBackup(target string) driver.BackupRecord {
	e.T.Helper()
	ctx := context.Background()
	t, d, err := e.Deps.Registry.Lookup(target)
	require.NoError(e.T, err)
	_, err = d.Run(ctx, driver.Request{Target: t, Task: domain.TaskBackupVerification, History: e.Deps.History, JobID: "test-backup", Attempt: 1})
	require.NoError(e.T, err, "backup_verification of %s", target)
	rec, ok, err := e.Deps.History.LatestBackup(ctx, target)
	require.NoError(e.T, err)
	require.True(e.T, ok, "a verified backup of %s on record", target)
	return rec
}

// The whole drill on the SQLite target: approvals through the service the
// API uses, real canary, restore of the latest verified backup,
// verification and measurement. The RPO is the age of that backup at the
// failure instant; the failure and serving instants come from one host.
func TestDrillOnSQLitePasses(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	ctx := context.Background()
	e.verifiedBackup("demo") // preflight wants one
	d, err := e.Service.StartDrill(ctx, "demo", "alice")
	require.NoError(t, err)
	e.waitDrill(d.ID, time.Minute, awaiting(domain.ApprovalStart))

	_, err = e.Service.DecideDrill(ctx, d.ID, true, domain.ApprovalComplete, "too early", "alice")
	require.True(t, errors.Is(err, domain.ErrConflict), "approving a step not awaited is a conflict: %v", err)

	// The newest backup before the failure instant is the one restored.
	backup := e.verifiedBackup("demo")
	_, err = e.Service.DecideDrill(ctx, d.ID, true, domain.ApprovalStart, "go", "alice")
	require.NoError(t, err)
	mid := e.waitDrill(d.ID, 2*time.Minute, awaiting(domain.ApprovalComplete))
	require.True(t, mid.Measured)
	_, err = e.Service.DecideDrill(ctx, d.ID, true, domain.ApprovalComplete, "restored copy looks right", "bob")
	require.NoError(t, err)

	done := e.waitDrill(d.ID, time.Minute, finished)
	t.Logf("drill %s: RTO %d ms, RPO %d ms, canary rows %d", done.State, done.RTOMs, done.RPOMs, done.CanaryRows)
	for _, s := range done.Steps {
		t.Logf("  step %-15s %-10s %6d ms  %s", s.Name, s.State, s.DurationMs, s.Detail)
	}
	require.Equal(t, domain.DrillPassed, done.State, done.Reason)
	require.Greater(t, done.RTOMs, int64(0))
	require.Greater(t, done.CanaryRows, int64(10))
	require.Len(t, done.Approvals, 2)
	e.assertNothingLeft(done)

	// The restore took the latest verified backup, taken before the canary:
	// no canary row in the copy, RPO = its age at the failure instant.
	require.Equal(t, domain.DrillStrategyBackupRestore, done.Strategy)
	require.Equal(t, filepath.Base(backup.Path), done.BackupID)
	require.Equal(t, backup.Path, done.RestoredFrom)
	require.Equal(t, backup.TakenAt.UnixMilli(), done.BackupAtMs)
	require.Zero(t, done.NewestCanaryMs, "the canary rows came after the backup")
	require.Equal(t, domain.RPOBasisBackup, done.RPOBasis)
	require.Equal(t, done.FailureAtMs-done.BackupAtMs, done.RPOMs, "RPO is the backup's age at the failure instant")
	require.Positive(t, done.RestoredBytes)
	require.Positive(t, done.RestoreMBps)
	host, _ := os.Hostname()
	require.Equal(t, "host "+host, done.ClockSource, "canary, restore and verify on one host")

	// The drill took no backup of its own, and the one it restored is
	// still there.
	backups, err := e.Deps.History.Backups(ctx, "demo", false, 0)
	require.NoError(t, err)
	require.Len(t, backups, 2, "the two backup_verification runs only: %+v", backups)
	_, statErr := os.Stat(backup.Path)
	require.NoError(t, statErr, "the restored backup is kept")

	// The report is stored by the drill's last step, just after it shows finished.
	require.Eventually(t, func() bool {
		raw, err := e.Deps.History.DrillReport(ctx, d.ID)
		return err == nil && strings.Contains(string(raw.Report), `"passed":true`)
	}, 30*time.Second, 100*time.Millisecond, "the report is stored in the history store")
	e.RecordHistory(d.ID, "drill_passed")
}

func TestDrillRejectedAtStartCleansUp(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	ctx := context.Background()
	e.verifiedBackup("demo")
	d, err := e.Service.StartDrill(ctx, "demo", "alice")
	require.NoError(t, err)
	e.waitDrill(d.ID, time.Minute, awaiting(domain.ApprovalStart))
	_, err = e.Service.DecideDrill(ctx, d.ID, false, domain.ApprovalStart, "change freeze", "carol")
	require.NoError(t, err)
	done := e.waitDrill(d.ID, time.Minute, finished)
	require.Equal(t, domain.DrillRejected, done.State)
	e.assertNothingLeft(done)
	e.RecordHistory(d.ID, "drill_rejected")
}

func TestDrillApprovalTimeoutAborts(t *testing.T) {
	e := NewEnv(t, EnvOptions{ApprovalTimeout: 2 * time.Second})
	ctx := context.Background()
	e.verifiedBackup("demo")
	d, err := e.Service.StartDrill(ctx, "demo", "alice")
	require.NoError(t, err)
	done := e.waitDrill(d.ID, time.Minute, finished)
	require.Equal(t, domain.DrillAborted, done.State)
	require.Equal(t, "approval_timeout", done.Reason)
	e.assertNothingLeft(done)
}

func TestDrillAbortedAfterRestoreCleansUp(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	ctx := context.Background()
	e.verifiedBackup("demo")
	d, err := e.Service.StartDrill(ctx, "demo", "alice")
	require.NoError(t, err)
	e.waitDrill(d.ID, time.Minute, awaiting(domain.ApprovalStart))
	_, err = e.Service.DecideDrill(ctx, d.ID, true, domain.ApprovalStart, "go", "alice")
	require.NoError(t, err)
	e.waitDrill(d.ID, 2*time.Minute, awaiting(domain.ApprovalComplete))
	_, err = e.Service.AbortDrill(ctx, d.ID, "incident on the primary", "bob")
	require.NoError(t, err)
	done := e.waitDrill(d.ID, time.Minute, finished)
	require.Equal(t, domain.DrillAborted, done.State)
	require.Contains(t, done.Reason, "incident on the primary")
	e.assertNothingLeft(done)
	_, err = e.Service.AbortDrill(ctx, d.ID, "again", "bob")
	require.True(t, errors.Is(err, domain.ErrConflict))
}
