package postgres_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// mkStale makes a scratch directory that looks abandoned for two hours.
func mkStale(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "themis-scratch.json")
	if err := os.WriteFile(marker, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(marker, old, old); err != nil {
		t.Fatal(err)
	}
}

func TestCapabilities(t *testing.T) {
	d := postgres.New()
	defer d.Close()
	for _, task := range domain.AllTaskTypes() {
		// Run does every task type; the drill is run through driver.Driller.
		if got, want := d.Supports(task), task != domain.TaskDisasterRecoveryDrill; got != want {
			t.Errorf("Supports(%s) = %v", task, got)
		}
		if !driver.Supports(d, task) {
			t.Errorf("driver.Supports(%s) = false", task)
		}
	}
	_, err := d.Run(context.Background(), driver.Request{Task: domain.TaskDisasterRecoveryDrill})
	if !errors.Is(err, driver.ErrNotSupported) {
		t.Errorf("disaster_recovery_drill: %v", err)
	}
}

func TestBadTargetsAndOptions(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	e := newEnv(t, shared, db)
	ctx := context.Background()
	_, _, err := e.run(ctx, domain.TaskMVCCCleanup, domain.TaskOptions{"lock_timeout_ms": "5000; DROP TABLE x"}, nil)
	if permanentKind(err) != driver.KindInvalidInput {
		t.Errorf("string lock_timeout_ms: %v", err)
	}
	_, _, err = e.run(ctx, domain.TaskMVCCCleanup, domain.TaskOptions{"parallelism": 1.5}, nil)
	if permanentKind(err) != driver.KindInvalidInput {
		t.Errorf("fractional parallelism: %v", err)
	}
	_, _, err = e.run(ctx, domain.TaskReplicaValidation, domain.TaskOptions{"degraded_lag_ms": int64(5000), "critical_lag_ms": int64(10)}, nil)
	if permanentKind(err) != driver.KindInvalidInput {
		t.Errorf("critical below degraded: %v", err)
	}

	bad := newEnv(t, shared, db)
	bad.target.Name = "missing-db"
	bad.target.DSN = shared.DSN("no_such_database")
	_, _, err = bad.run(ctx, domain.TaskQuotaCheck, nil, nil)
	if permanentKind(err) != driver.KindMisconfigured {
		t.Errorf("unknown database: %v (kind %q)", err, permanentKind(err))
	}
	bad.target.Name, bad.target.DSN = "garbage", "host=' unterminated password=secret"
	_, _, err = bad.run(ctx, domain.TaskQuotaCheck, nil, nil)
	if permanentKind(err) != driver.KindMisconfigured || strings.Contains(err.Error(), "secret") {
		t.Errorf("unparsable DSN: %v", err)
	}
	bad.target.Name = "down"
	bad.target.DSN = "postgres://postgres:secret@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"
	_, _, err = bad.run(ctx, domain.TaskQuotaCheck, nil, nil)
	if err == nil || permanentKind(err) != "" || strings.Contains(err.Error(), "secret") {
		t.Errorf("unreachable server: %v (kind %q), want a retryable error without the password", err, permanentKind(err))
	}
}

func TestMetricsQuotaCapacityBaseline(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Seed(t, db, pgcluster.SeedOptions{Tables: 1, Rows: 5000})
	e := newEnv(t, shared, db)

	res := e.mustRun(domain.TaskMetricsCollection, nil)
	t.Log(res.Summary)
	sizes, _ := e.history.Samples(context.Background(), e.target.Name, postgres.MetricSizeBytes, time.Time{})
	if len(sizes) != 1 || sizes[0].Value < 1<<20 {
		t.Fatalf("size samples %+v", sizes)
	}
	d := detailsJSON(t, res)
	if d["user_tables"].(float64) != 1 || d["bgwriter"] == nil {
		t.Errorf("details %v", d)
	}

	res = e.mustRun(domain.TaskQuotaCheck, nil)
	if detailsJSON(t, res)["quota_configured"] != false || len(res.Alerts) != 0 {
		t.Errorf("no quota: %s %+v", res.Summary, res.Alerts)
	}
	size := int64(sizes[0].Value)
	for _, c := range []struct {
		quota int64
		level string
	}{
		{size * 100 / 85, domain.AlertWarning}, // 85 %
		{size * 100 / 95, domain.AlertHigh},    // 95 %: past half-way from 80 to 100
		{size / 2, domain.AlertCritical},       // 200 %
		{size * 10, ""},                        // 10 %
	} {
		e.target.QuotaBytes = c.quota
		res = e.mustRun(domain.TaskQuotaCheck, nil)
		if c.level == "" && len(res.Alerts) != 0 || c.level != "" && !hasAlert(res, c.level, "quota") {
			t.Errorf("quota %d: %s %+v, want %q", c.quota, res.Summary, res.Alerts, c.level)
		}
	}

	// Capacity: one sample only spans no time yet.
	res = e.mustRun(domain.TaskCapacityTrendAnalysis, nil)
	if detailsJSON(t, res)["trend"] != false {
		t.Errorf("trend from samples seconds apart: %s", res.Summary)
	}
	// A sample 10 days ago at half today's size: growth of about size/20 per
	// day leaves ~180 days to a 10x quota, ~20 (HIGH) to a 2x quota and
	// ~4 (CRITICAL) to a 1.2x quota.
	e.history.RecordSamples(context.Background(), driver.Sample{Target: e.target.Name, Metric: postgres.MetricSizeBytes,
		At: time.Now().Add(-10 * 24 * time.Hour), Value: float64(size) / 2})
	for _, c := range []struct {
		quota   int64
		level   string
		minDays float64
	}{{size * 10, "", 100}, {size * 2, domain.AlertHigh, 10}, {size * 12 / 10, domain.AlertCritical, 1}} {
		e.target.QuotaBytes = c.quota
		res = e.mustRun(domain.TaskCapacityTrendAnalysis, nil)
		t.Log(res.Summary)
		d = detailsJSON(t, res)
		if d["trend"] != true || d["runway_days"].(float64) < c.minDays {
			t.Errorf("capacity with quota %d: %v", c.quota, d)
		}
		if c.level == "" && len(res.Alerts) != 0 || c.level != "" && !hasAlert(res, c.level, "capacity runway") {
			t.Errorf("capacity with quota %d: %+v, want %q", c.quota, res.Alerts, c.level)
		}
	}

	res = e.mustRun(domain.TaskBaselineUpdate, nil)
	if d := detailsJSON(t, res); len(d["previous_ms"].(map[string]any)) != 0 || len(d["probes_ms"].(map[string]any)) != 4 {
		t.Errorf("first baseline: %s %v", res.Summary, d)
	}
	// Pretend the stored baseline was much faster: probes slower by more
	// than the 2 ms floor are regressions.
	base, _ := e.history.Baseline(context.Background(), e.target.Name)
	for k := range base {
		base[k] = 0.0001
	}
	e.history.SaveBaseline(context.Background(), e.target.Name, base)
	res = e.mustRun(domain.TaskBaselineUpdate, domain.TaskOptions{"regression_pct": 10.0})
	t.Log(res.Summary)
	d = detailsJSON(t, res)
	if len(d["previous_ms"].(map[string]any)) != 4 {
		t.Errorf("second baseline: %v", d)
	}
	regs := d["regressions"].([]any)
	if len(regs) != len(res.Alerts) {
		t.Errorf("%d regressions, %d alerts", len(regs), len(res.Alerts))
	}
	for _, r := range regs {
		if r.(map[string]any)["current_ms"].(float64) < 2 {
			t.Errorf("regression under the floor reported: %v", r)
		}
	}
	if got, _ := e.history.Baseline(context.Background(), e.target.Name); got["round_trip"] == 0.0001 {
		t.Error("baseline not replaced")
	}
}

func TestPerformanceAnalysis(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Exec(t, db, `CREATE TABLE public.accounts (id int PRIMARY KEY, secret text)`)
	shared.Exec(t, db, `INSERT INTO public.accounts VALUES (1, 'hunter2')`)
	bg := context.Background()
	holder := shared.Conn(t, db)
	tx, err := holder.Begin(bg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(bg, `UPDATE public.accounts SET secret = 'hunter3' WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	waiter := shared.Conn(t, db)
	waited := make(chan struct{})
	go func() {
		defer close(waited)
		_, _ = waiter.Exec(bg, `UPDATE public.accounts SET secret = 'swordfish' WHERE id = 1`)
	}()
	// Runs before the connections are closed: end the holder's transaction,
	// which lets the waiter finish.
	t.Cleanup(func() { _ = tx.Rollback(bg); <-waited })
	waitFor(t, 10*time.Second, "the second update to wait", func() bool {
		return pgcluster.Scalar[int64](t, shared, db, `SELECT count(*) FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0`) == 1
	})
	time.Sleep(1100 * time.Millisecond)
	e := newEnv(t, shared, db)
	res := e.mustRun(domain.TaskPerformanceAnalysis, domain.TaskOptions{"long_txn_seconds": int64(1), "top_n": int64(5)})
	t.Log(res.Summary)
	d := detailsJSON(t, res)
	chains := d["blocking_chains"].([]any)
	if len(chains) != 1 || len(chains[0].(map[string]any)["waiters"].([]any)) != 1 {
		t.Fatalf("blocking chains %v", chains)
	}
	if st := d["top_statements"].([]any); len(st) == 0 || d["pg_stat_statements"] != "used" {
		t.Errorf("top statements %v (%v)", st, d["pg_stat_statements"])
	}
	if len(d["long_transactions"].([]any)) < 1 {
		t.Errorf("long transactions %v", d["long_transactions"])
	}
	if !hasAlert(res, domain.AlertHigh, "") || !hasAlert(res, domain.AlertWarning, "") {
		t.Errorf("alerts %+v: want HIGH (idle in transaction) and WARNING (blocker)", res.Alerts)
	}
	raw, _ := jsonString(res)
	for _, s := range []string{"hunter2", "hunter3", "swordfish"} {
		if strings.Contains(raw, s) {
			t.Errorf("result leaks literal %q", s)
		}
	}
}

func TestProbe(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	e := newEnv(t, shared, db)
	e.target.QuotaBytes = 1 << 30
	e.history.RecordBackup(context.Background(), driver.BackupRecord{Target: e.target.Name, Verified: true, TakenAt: time.Now().Add(-time.Hour)})
	th, err := e.d.Probe(context.Background(), e.target, e.history)
	if err != nil {
		t.Fatal(err)
	}
	if !th.Reachable || th.InRecovery || th.SizeBytes < 1<<20 || th.QuotaUsedPct <= 0 || th.ReplicaLagMs != -1 ||
		th.LastVerifiedBackupAgeS < 3500 || !strings.HasPrefix(th.Version, "1") {
		t.Errorf("probe %+v", th)
	}
	e.target.Name, e.target.DSN = "down", "postgres://postgres:secret@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"
	if _, err := e.d.Probe(context.Background(), e.target, nil); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("unreachable probe: %v", err)
	}
}
