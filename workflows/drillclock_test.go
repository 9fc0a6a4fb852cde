package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/themis-maintenance/themis/activities"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// runPassingDrill runs a drill through both approvals and returns it with
// the task queue each activity ran on.
func runPassingDrill(t *testing.T, in DrillInput, setup func(f *fakeDrill)) (domain.Drill, *fakeDrill, map[string]string) {
	t.Helper()
	env, f := newDrillEnv(t)
	setup(f)
	var mu sync.Mutex
	queues := map[string]string{}
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		mu.Lock()
		queues[info.ActivityType.Name] = info.TaskQueue
		mu.Unlock()
	})
	signal(env, ApproveSignal, domain.ApprovalStart, time.Minute)
	signal(env, ApproveSignal, domain.ApprovalComplete, time.Hour)
	env.ExecuteWorkflow(DrillWorkflowName, in)
	d := drillResult(t, env)
	require.NoError(t, env.GetWorkflowError(), d.Reason)
	mu.Lock()
	defer mu.Unlock()
	return d, f, queues
}

// Item 6 of docs/DR_DRILL.md's RTO: the host that wrote the canary (its
// clock 90 s fast) restores and verifies; a worker of the shared queue
// (another host, its clock 2 min slow) never reads the serving instant, so
// the RTO is the true 3 s whatever the clocks say.
func TestDrillRTOFromOneClock(t *testing.T) {
	hostA := activities.Host{ID: "host-a", Queue: "themis@host-a"}
	d, _, queues := runPassingDrill(t, DrillInput{Target: "demo"}, func(f *fakeDrill) {
		f.canaryHost = hostA
		f.host = activities.Host{ID: "host-b", Queue: "themis@host-b"}
		f.skew = map[string]time.Duration{hostA.Queue: 90 * time.Second, "default-test-taskqueue": -2 * time.Minute}
	})
	require.Equal(t, int64(3000), d.RTOMs, "RTO read on one clock")
	require.Equal(t, int64(400), d.RPOMs)
	require.Equal(t, "host host-a", d.ClockSource)
	require.Equal(t, hostA.Queue, queues[DrillRestoreActivity])
	require.Equal(t, hostA.Queue, queues[DrillVerifyActivity])
	require.Equal(t, hostA.Queue, queues[DrillCleanupActivity])
	measure := stepDetail(d, "measure")
	require.Contains(t, measure, "clock of host host-a")
	require.Contains(t, stepDetail(d, "restore"), "on host host-a")
}

// A worker without a host queue cannot be pinned: the drill says the
// instants came from the workers' clocks.
func TestDrillWithoutHostQueueSaysWorkers(t *testing.T) {
	d, _, queues := runPassingDrill(t, DrillInput{Target: "demo"}, func(f *fakeDrill) {})
	require.Equal(t, "workers", d.ClockSource)
	require.Equal(t, "default-test-taskqueue", queues[DrillRestoreActivity])
	require.Equal(t, int64(3000), d.RTOMs)
}

// A restored backup older than the canary holds no canary row: the RPO is
// the age of that backup at the failure instant.
func TestDrillRPOOfARestoredBackup(t *testing.T) {
	failure := time.Date(2026, 11, 22, 3, 0, 10, 0, time.UTC)
	backupAt := failure.Add(-30 * time.Second)
	d, f, _ := runPassingDrill(t, DrillInput{Target: "demo", Strategy: domain.DrillStrategyBackupRestore}, func(f *fakeDrill) {
		f.noCanaryRows = true
		f.rpoObjective = time.Hour
		f.scratch = driver.Scratch{
			Strategy: driver.StrategyBackupRestore, BackupID: "demo-20261122T025940.000Z.db", BackupAt: backupAt,
			RestoredBytes: 50_000_000, CopyMs: 2000, WALRange: "000000010000000000000003-000000010000000000000005",
			WALBytes: 48_000_000, ReplayMs: 4000,
		}
	})
	require.True(t, d.Measured)
	require.Equal(t, int64(30_000), d.RPOMs)
	require.Equal(t, domain.RPOBasisBackup, d.RPOBasis)
	require.Zero(t, d.NewestCanaryMs)
	require.Equal(t, domain.DrillStrategyBackupRestore, d.Strategy)
	require.Equal(t, "demo-20261122T025940.000Z.db", d.BackupID)
	require.Equal(t, backupAt.UnixMilli(), d.BackupAtMs)
	require.Equal(t, int64(50_000_000), d.RestoredBytes)
	require.InDelta(t, 25.0, d.RestoreMBps, 1e-9)
	require.InDelta(t, 12.0, d.ReplayMBps, 1e-9)
	restore := stepDetail(d, "restore")
	for _, want := range []string{"strategy backup_restore", "backup demo-20261122T025940.000Z.db taken 2026-11-22T02:59:40Z",
		"WAL 000000010000000000000003-000000010000000000000005", "restored 50.0 MB in 2000 ms (25.0 MB/s)", "(12.0 MB/s)"} {
		require.Contains(t, restore, want)
	}
	require.Contains(t, stepDetail(d, "measure"), "the restored backup's time")
	p := domain.TrendPoint(d)
	require.Equal(t, int64(30_000), p.BackupAgeMs)
	require.Equal(t, domain.DrillStrategyBackupRestore, p.Strategy)

	// The drill's strategy and failure instant reach preflight and restore.
	require.Equal(t, domain.DrillStrategyBackupRestore, f.inputs["preflight"].Strategy)
	require.Equal(t, domain.DrillStrategyBackupRestore, f.inputs["restore"].Strategy)
	require.True(t, f.inputs["restore"].FailureAt.Equal(failure), "failure instant %s", f.inputs["restore"].FailureAt)
}

// Canary rows newer than the backup (WAL replayed past it) are the
// recovery point.
func TestDrillRPOPrefersTheNewestCanaryRow(t *testing.T) {
	failure := time.Date(2026, 11, 22, 3, 0, 10, 0, time.UTC)
	d, _, _ := runPassingDrill(t, DrillInput{Target: "demo"}, func(f *fakeDrill) {
		f.scratch = driver.Scratch{Strategy: driver.StrategyBackupRestore, BackupID: "base-1", BackupAt: failure.Add(-time.Hour)}
	})
	require.Equal(t, int64(400), d.RPOMs)
	require.Equal(t, domain.RPOBasisCanary, d.RPOBasis)
}

// No canary row and no backup time: nothing to measure the RPO against.
func TestDrillWithoutRecoveryPointFails(t *testing.T) {
	env, f := newDrillEnv(t)
	f.noCanaryRows = true
	signal(env, ApproveSignal, domain.ApprovalStart, time.Minute)
	env.ExecuteWorkflow(DrillWorkflowName, DrillInput{Target: "demo"})
	require.Error(t, env.GetWorkflowError())
	d := drillResult(t, env)
	require.Equal(t, domain.DrillFailed, d.State)
	require.Contains(t, d.Reason, "RPO cannot be measured")
	require.Equal(t, 1, f.cleanups)
}

// An unknown strategy fails the drill before anything runs.
func TestDrillRefusesUnknownStrategy(t *testing.T) {
	env, f := newDrillEnv(t)
	env.ExecuteWorkflow(DrillWorkflowName, DrillInput{Target: "demo", Strategy: "pitr"})
	err := env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, driver.KindInvalidInput, appErr.Type())
	require.Contains(t, err.Error(), `unknown drill strategy "pitr"`)
	require.Empty(t, f.calls)
	require.Zero(t, f.cleanups)
	for _, s := range append(domain.DrillStrategies(), "") {
		require.NoError(t, domain.ValidateDrillStrategy(s))
	}
}

func stepDetail(d domain.Drill, name string) string {
	for _, s := range d.Steps {
		if s.Name == name {
			return s.Detail
		}
	}
	return ""
}
