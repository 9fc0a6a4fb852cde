package activities

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/sqlite"
	"github.com/themis-maintenance/themis/internal/history"
)

// drillActivities are the activities over a seeded SQLite target "demo"
// and a real history store, run on host h.
func drillActivities(t *testing.T, h Host) (*Activities, *testsuite.TestActivityEnvironment) {
	t.Helper()
	dir := t.TempDir()
	dsn := filepath.Join(dir, "demo.db")
	if err := sqlite.SeedDemo(context.Background(), dsn); err != nil {
		t.Fatal(err)
	}
	reg, err := driver.NewRegistry([]driver.Driver{sqlite.New()}, []driver.Target{{
		Name: "demo", Driver: sqlite.Name, DSN: dsn, BackupDir: filepath.Join(dir, "backups"), ScratchDir: filepath.Join(dir, "scratch"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	store, err := history.Open(filepath.Join(dir, "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	a := &Activities{Registry: reg, History: store}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.SetWorkerOptions(worker.Options{BackgroundActivityContext: WithHost(context.Background(), h)})
	env.RegisterActivity(a.DrillPreflight)
	env.RegisterActivity(a.DrillCanary)
	return a, env
}

// The drill's strategy reaches the driver's preflight (as the target's
// DrillStrategy): SQLite refuses replica_clone by name, non-retryably.
func TestDrillPreflightTakesTheDrillsStrategy(t *testing.T) {
	a, env := drillActivities(t, Host{})
	_, err := env.ExecuteActivity(a.DrillPreflight, DrillTargetInput{DrillID: "d1", Target: "demo", Strategy: driver.StrategyReplicaClone})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != driver.KindNotSupported || !appErr.NonRetryable() ||
		!strings.Contains(err.Error(), `"replica_clone"`) {
		t.Fatalf("preflight by replica_clone: %v", err)
	}
	// backup_restore without a verified backup: told to run one.
	_, err = env.ExecuteActivity(a.DrillPreflight, DrillTargetInput{DrillID: "d1", Target: "demo", Strategy: driver.StrategyBackupRestore})
	if err == nil || !strings.Contains(err.Error(), "run backup_verification first") {
		t.Fatalf("preflight without a backup: %v", err)
	}
}

// The canary names the host whose clock stamped the failure instant.
func TestDrillCanaryReportsItsHost(t *testing.T) {
	h := Host{ID: "host-a", Queue: "themis@host-a"}
	a, env := drillActivities(t, h)
	v, err := env.ExecuteActivity(a.DrillCanary, CanaryInput{DrillID: "d1", Target: "demo", Interval: 10 * time.Millisecond, Duration: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var res CanaryResult
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	if res.Host != h || res.Rows == 0 || res.FailureAt.Before(res.LastWriteAt) {
		t.Fatalf("canary %+v", res)
	}
}
