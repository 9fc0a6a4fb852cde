package telemetry

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/internal/history"
	"github.com/themis-maintenance/themis/internal/telemetry/promtest"
)

// value is the sum of name's samples carrying labels, failing the test on
// a malformed sample.
func value(t *testing.T, body, name string, labels ...string) float64 {
	t.Helper()
	v, err := promtest.Sum(body, name, labels...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The duration histograms have explicit buckets from 10 ms to 6 h, keep
// their _ms names (no unit suffix), and the target-lock wait of a task is
// recorded from its waited_for_target_ms detail.
func TestDurationHistogramBuckets(t *testing.T) {
	p, err := Setup("themis-test")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	p.Metrics.JobDurations(context.Background(), domain.Job{Target: "demo", ScheduleID: "daily-demo", State: domain.StateSucceeded, DurationMs: 2 * 3600 * 1000,
		Tasks: []domain.TaskRun{{TaskType: domain.TaskMVCCCleanup, State: domain.StateSucceeded, StartedAtMs: 1, FinishedAtMs: 1 + 5*3600*1000,
			Details: map[string]any{"waited_for_target_ms": float64(42_000)}}}})
	body := scrape(t, p)
	if strings.Contains(body, "_ms_milliseconds") {
		t.Fatalf("unit suffix added to a _ms name:\n%s", body)
	}
	for _, b := range []string{`,le="10"}`, `,le="2.16e+07"}`, `,le="+Inf"}`} {
		if !strings.Contains(body, b) {
			t.Errorf("histograms lack bucket %s", b)
		}
	}
	// 5 h lands under 6 h, not only in +Inf.
	if got := value(t, body, "maintenance_task_duration_ms_bucket", `le="1.44e+07"`); got != 0 {
		t.Errorf("5 h task in the 4 h bucket: %v", got)
	}
	if got := value(t, body, "maintenance_task_duration_ms_bucket", `le="2.16e+07"`, `schedule="daily-demo"`, `task_type="mvcc_cleanup"`); got != 1 {
		t.Errorf("5 h task in the 6 h bucket: %v, want 1", got)
	}
	if got := value(t, body, "maintenance_job_duration_ms_bucket", `le="7.2e+06"`, `schedule="daily-demo"`); got != 1 {
		t.Errorf("2 h job in the 2 h bucket: %v, want 1", got)
	}
	if got := value(t, body, "maintenance_target_lock_wait_ms_sum", `target="demo"`, `task_type="mvcc_cleanup"`); got != 42_000 {
		t.Errorf("target lock wait sum %v, want 42000", got)
	}
}

// The per-target gauges read a real history store: the newest verified
// backup's age, the newest samples, the newest capacity analysis's runway
// and the newest finished drill, with the configured objectives.
func TestTargetGaugesFromHistory(t *testing.T) {
	ctx := context.Background()
	store, err := history.Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now().UTC()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(store.RecordBackup(ctx, driver.BackupRecord{Target: "pg", Path: "/b/1", Method: "pg_basebackup", TakenAt: now.Add(-2 * time.Hour), Verified: true}))
	must(store.RecordBackup(ctx, driver.BackupRecord{Target: "pg", Path: "/b/2", Method: "pg_basebackup", TakenAt: now.Add(-time.Minute), Verified: false}))
	must(store.RecordSamples(ctx,
		driver.Sample{Target: "pg", Metric: "size_bytes", At: now.Add(-time.Hour), Value: 100},
		driver.Sample{Target: "pg", Metric: "size_bytes", At: now.Add(-time.Minute), Value: 850},
		driver.Sample{Target: "pg", Metric: "xid_age", At: now.Add(-time.Minute), Value: 12345},
		driver.Sample{Target: "pg", Metric: "replica_max_lag_ms", At: now.Add(-time.Minute), Value: 2500}))
	must(store.RecordTaskResult(ctx, history.TaskRecord{JobID: "j1", Target: "pg", Task: domain.TaskCapacityTrendAnalysis, State: domain.StateSucceeded,
		StartedAt: now.Add(-time.Hour), FinishedAt: now.Add(-time.Hour), Details: map[string]any{"runway_days": 21.5}}))
	report, _ := json.Marshal(domain.Drill{ID: "d1", Target: "pg", State: domain.DrillPassed, Measured: true, Passed: true,
		RTOMs: 90_000, RPOMs: 4_000, RTOObjectiveMs: 900_000, RPOObjectiveMs: 300_000, FinishedAtMs: now.UnixMilli(),
		RestoredBytes: 400e6, CopyMs: 2000, WALBytes: 30e6, ReplayMs: 3000, BackupAtMs: now.UnixMilli() - 3_600_000 - 60_000,
		FailureAtMs: now.UnixMilli() - 60_000})
	must(store.SaveDrillReport(ctx, "d1", "pg", report))

	p, err := Setup("themis-test")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(ctx)
	targets := []TargetObjectives{{Target: "pg", QuotaBytes: 1000, RTOObjective: 10 * time.Minute}, {Target: "empty"}}
	must(p.Metrics.ObserveTargets(HistoryFigures(store, targets, time.Second)))
	must(p.Metrics.ObserveTargets(HistoryFigures(store, targets, time.Second))) // a second call registers nothing more
	must(p.Metrics.ObserveHealth(func(context.Context) []ModuleHealth {
		return []ModuleHealth{{Module: "history", Status: "healthy"}, {Module: "target:pg", Status: "degraded"}}
	}))
	body := scrape(t, p)
	pg := `target="pg"`
	for name, want := range map[string]float64{
		RunwayDaysMetric: 21.5, SizeBytesMetric: 850, QuotaBytesMetric: 1000, ReplicaLagMetric: 2.5, TransactionIDAgeMetric: 12345,
		DrillRTOMetric: 90, DrillRPOMetric: 4, DrillRTOObjectiveMetric: 600, DrillRPOObjectiveMetric: 300, DrillPassedMetric: 1,
		DrillRestoreRateMetric: 200e6, DrillReplayRateMetric: 10e6, DrillBackupAgeMetric: 3600,
	} {
		if got := value(t, body, name, pg); got != want {
			t.Errorf("%s{target=pg} = %v, want %v", name, got, want)
		}
	}
	if age := value(t, body, BackupAgeMetric, pg); age < 7190 || age > 7300 {
		t.Errorf("backup age %v s, want about 7200 (the unverified newer backup does not count)", age)
	}
	if strings.Contains(body, `maintenance_backup_age_seconds{otel_scope_name="themis-maintenance",otel_scope_schema_url="",otel_scope_version="",target="empty"}`) {
		t.Errorf("a target without backups exports a backup age")
	}
	if got := strings.Count(body, "\n"+RunwayDaysMetric+"{"); got != 1 {
		t.Errorf("%d runway series, want 1 (one callback)", got)
	}
	if value(t, body, HealthStatusMetric, `module="target:pg"`, `status="degraded"`) != 1 ||
		value(t, body, HealthStatusMetric, `module="target:pg"`, `status="healthy"`) != 0 ||
		value(t, body, HealthStatusMetric, `module="history"`) != 1 {
		t.Errorf("health gauge wrong:\n%s", body)
	}
}

// The Temporal SDK's latency histograms get buckets up to 6 h too.
func TestTemporalLatencyBuckets(t *testing.T) {
	p, err := Setup("themis-test")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	p.TemporalMetricsHandler().Timer("temporal_activity_execution_latency").Record(2 * time.Hour)
	body := scrape(t, p)
	if got := value(t, body, "temporal_activity_execution_latency_seconds_bucket", `le="3600"`); got != 0 {
		t.Errorf("2 h in the 1 h bucket: %v", got)
	}
	if got := value(t, body, "temporal_activity_execution_latency_seconds_bucket", `le="7200"`); got != 1 {
		t.Errorf("2 h not in the 2 h bucket: %v\n%s", got, body)
	}
}
