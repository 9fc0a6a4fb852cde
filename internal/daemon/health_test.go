package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/health"
	"github.com/themis-maintenance/themis/internal/audit"
	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/internal/history"
)

func checkOnce(t *testing.T, reg *health.Registry, timeout time.Duration) health.Report {
	t.Helper()
	return health.NewRunner(health.RunnerOptions{Timeout: timeout, Logger: quietLogger()}, reg).Check(context.Background())
}

func moduleOf(t *testing.T, rep health.Report, name string) health.Module {
	t.Helper()
	m, ok := rep.Module(name)
	if !ok {
		t.Fatalf("no module %q in %+v", name, rep.Modules)
	}
	return m
}

func TestBuiltinProbesWithTemporalDown(t *testing.T) {
	dir := t.TempDir()
	store, err := history.Open(filepath.Join(dir, "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	cfg := &config.Config{DataDir: dir, Temporal: config.TemporalConfig{Namespace: "default", TaskQueue: "q"}}
	probes, err := BuiltinProbes(unreachableClient(t), cfg, nil, store)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(probes.Names(), ","); got != "temporal,workers,jobs,history" {
		t.Fatalf("probes %s", got)
	}
	rep := checkOnce(t, probes, 2*time.Second)
	if m := moduleOf(t, rep, "temporal"); m.Status != health.Critical || !strings.HasPrefix(m.Message, "the Temporal frontend does not answer") {
		t.Errorf("temporal: %+v", m)
	}
	// Without Temporal nobody can tell whether workers poll or jobs failed.
	for _, name := range []string{"workers", "jobs"} {
		if m := moduleOf(t, rep, name); m.Status != health.Unknown {
			t.Errorf("%s: %+v", name, m)
		}
	}
	if m := moduleOf(t, rep, "history"); m.Status != health.OK || m.Details["driver"] != "sqlite" || m.Details["schema_version"].(int64) < 1 {
		t.Errorf("history: %+v", m)
	}
	if rep.Overall != health.Critical {
		t.Errorf("overall %s", rep.Overall)
	}

	// A history store that no longer answers is critical.
	_ = store.Close()
	if m := moduleOf(t, checkOnce(t, probes, 2*time.Second), "history"); m.Status != health.Critical || !strings.Contains(m.Message, "closed") {
		t.Errorf("closed history store: %+v", m)
	}
}

func TestAuditProbe(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.Open(filepath.Join(dir, "logs", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	reg := health.NewRegistry()
	if err := reg.RegisterProbe("audit", auditProbe(l)); err != nil {
		t.Fatal(err)
	}
	if m := moduleOf(t, checkOnce(t, reg, time.Second), "audit"); m.Status != health.OK || m.Details["sink"] != "file" {
		t.Errorf("writable: %+v", m)
	}
	// Rotated away: Record would create it again, so it is still fine.
	if err := os.Remove(l.Path()); err != nil {
		t.Fatal(err)
	}
	if m := moduleOf(t, checkOnce(t, reg, time.Second), "audit"); m.Status != health.OK {
		t.Errorf("rotated: %+v", m)
	}
	// The log's directory replaced by a file: nothing can be written (even
	// as root).
	if err := os.RemoveAll(filepath.Join(dir, "logs")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "logs"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if m := moduleOf(t, checkOnce(t, reg, time.Second), "audit"); m.Status != health.Critical || !strings.HasPrefix(m.Message, "audit log") {
		t.Errorf("unwritable: %+v", m)
	}

	store, err := history.Open(filepath.Join(dir, "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	sl, err := audit.OpenStore(store)
	if err != nil {
		t.Fatal(err)
	}
	reg = health.NewRegistry()
	if err := reg.RegisterProbe("audit", auditProbe(sl)); err != nil {
		t.Fatal(err)
	}
	if m := moduleOf(t, checkOnce(t, reg, time.Second), "audit"); m.Status != health.OK || m.Details["sink"] != "history" {
		t.Errorf("history sink: %+v", m)
	}
	_ = store.Close()
	if m := moduleOf(t, checkOnce(t, reg, time.Second), "audit"); m.Status != health.Critical {
		t.Errorf("history sink closed: %+v", m)
	}
	if auditProbe(nil) != nil {
		t.Error("a probe for an unknown sink")
	}
}

func TestJudge(t *testing.T) {
	cases := []struct {
		th   driver.TargetHealth
		want health.Status
		msg  string
	}{
		{driver.TargetHealth{Version: "SQLite 3"}, health.OK, "reachable, SQLite 3"},
		{driver.TargetHealth{Version: "v", QuotaUsedPct: 80}, health.Degraded, "quota 80.0 % used"},
		{driver.TargetHealth{Version: "v", QuotaUsedPct: 96}, health.Critical, "quota 96.0 % used"},
		{driver.TargetHealth{Version: "v", ReplicaLagMs: 1001}, health.Degraded, "replica lag 1001 ms"},
		{driver.TargetHealth{Version: "v", ReplicaLagMs: 5001, QuotaUsedPct: 85}, health.Critical, "replica lag 5001 ms"},
		{driver.TargetHealth{Version: "v", LastVerifiedBackupAgeS: 40 * 86400}, health.Degraded, "40 days old"},
		{driver.TargetHealth{Version: "v", WALChain: "FAILURE", WALChainDetail: "WAL chain FAILURE: missing 0000000100000000000000A3"}, health.Critical, "missing 0000000100000000000000A3"},
		{driver.TargetHealth{Version: "v", WALChain: "WARNING", WALChainDetail: "WAL chain WARNING"}, health.Degraded, "WAL chain WARNING"},
		{driver.TargetHealth{Version: "v", WALChain: "OK", WALChainDetail: "WAL chain OK"}, health.OK, "reachable"},
	}
	for _, c := range cases {
		status, msg := judge(c.th)
		if status != c.want || !strings.Contains(msg, c.msg) {
			t.Errorf("%+v: %s %q", c.th, status, msg)
		}
	}
}
