package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/telemetry"
	"github.com/themis-maintenance/themis/workflows"
)

// sdkTags are the tags the Temporal SDK's metrics handler adds to what the
// workflows record; scrapeLabels are the labels Prometheus adds to every
// series.
var (
	sdkTags      = []string{"namespace", "task_queue", "workflow_type", "activity_type", "client_name", "worker_type"}
	scrapeLabels = []string{"job", "instance", "otel_scope_name", "otel_scope_version", "otel_scope_schema_url"}
)

// emitted is every maintenance_* and themis_* series name the code
// exports with its label names: the telemetry package's instruments, read
// from a real scrape after recording each of them, and the workflows'
// outcome counters.
func emitted(t *testing.T) map[string][]string {
	t.Helper()
	p, err := telemetry.Setup("themis-deploy-test")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	ctx := context.Background()
	p.Metrics.JobDurations(ctx, domain.Job{Target: "t", State: domain.StateSucceeded, DurationMs: 5, Tasks: []domain.TaskRun{{
		TaskType: domain.TaskQuotaCheck, State: domain.StateSucceeded, StartedAtMs: 1, FinishedAtMs: 2,
		Details: map[string]any{"waited_for_target_ms": 3.0}}}})
	one := 1.0
	all := telemetry.TargetFigures{Target: "t"}
	// Every gauge field set: the figures struct's pointer fields.
	for _, f := range []**float64{&all.RunwayDays, &all.SizeBytes, &all.QuotaBytes, &all.BackupAgeSeconds, &all.ReplicaLagSeconds,
		&all.TransactionIDAge, &all.DrillRTOSeconds, &all.DrillRPOSeconds, &all.DrillRTOObjective, &all.DrillRPOObjective,
		&all.DrillPassed, &all.DrillFinishedUnixSeconds, &all.DrillRestoreBytesPerSecond, &all.DrillReplayBytesPerSecond,
		&all.DrillBackupAgeSeconds} {
		*f = &one
	}
	if err := p.Metrics.ObserveTargets(func(context.Context) ([]telemetry.TargetFigures, error) {
		return []telemetry.TargetFigures{all}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.Metrics.ObserveHealth(func(context.Context) []telemetry.ModuleHealth {
		return []telemetry.ModuleHealth{{Module: "history", Status: "healthy"}}
	}); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := map[string][]string{}
	sample := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}`)
	label := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		m := sample.FindStringSubmatch(line)
		if m == nil || !strings.HasPrefix(m[1], "maintenance_") {
			continue
		}
		for _, l := range label.FindAllStringSubmatch(m[2], -1) {
			if !slices.Contains(out[m[1]], l[1]) {
				out[m[1]] = append(out[m[1]], l[1])
			}
		}
	}
	for name, labels := range workflows.OutcomeMetrics() {
		out[name] = append(slices.Clone(labels), sdkTags...)
	}
	for name := range out {
		out[name] = append(out[name], scrapeLabels...)
	}
	// The telemetry package's gauges and histograms must all have shown up.
	for _, name := range []string{telemetry.TaskDurationMetric + "_bucket", telemetry.JobDurationMetric + "_count",
		telemetry.TargetLockWaitMetric + "_sum", telemetry.DrillFinishedMetric, telemetry.HealthStatusMetric} {
		if _, ok := out[name]; !ok {
			t.Fatalf("the scrape lacks %s:\n%s", name, rec.Body.String())
		}
	}
	return out
}

var (
	metricRe   = regexp.MustCompile(`\b((?:maintenance|themis|temporal)_[a-zA-Z0-9_:]*)\s*(\{[^}]*\})?`)
	matcherRe  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	groupingRe = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
)

// checkExpr reports metrics of expr the code does not emit, matchers on
// labels they do not have, and grouping labels one of them lacks.
func checkExpr(t *testing.T, where, expr string, known map[string][]string) {
	t.Helper()
	var names []string
	for _, m := range metricRe.FindAllStringSubmatch(expr, -1) {
		name := m[1]
		labels, ok := known[name]
		if !ok {
			t.Errorf("%s: %s is not a metric the code emits (expr %q)", where, name, expr)
			continue
		}
		names = append(names, name)
		for _, l := range matcherRe.FindAllStringSubmatch(m[2], -1) {
			if !slices.Contains(labels, l[1]) {
				t.Errorf("%s: %s has no label %q (has %v)", where, name, l[1], labels)
			}
		}
	}
	if len(names) == 0 {
		t.Errorf("%s: no metric in %q", where, expr)
	}
	for _, g := range groupingRe.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(g[1], ",") {
			l = strings.TrimSpace(l)
			if l == "" {
				continue
			}
			for _, n := range names {
				if !slices.Contains(known[n], l) {
					t.Errorf("%s: grouping label %q is not a label of %s", where, l, n)
				}
			}
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// decodeStrict decodes YAML into v, failing on unknown fields.
func decodeStrict(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The alert rules issue 14 asks for exist, each with a duration that
// parses, and use only emitted metrics and labels.
func TestAlertRulesUseEmittedMetrics(t *testing.T) {
	known := emitted(t)
	var rf ruleFile
	decodeStrict(t, "prometheus/alerts.yml", &rf)
	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v: alert, expr, severity and summary are required", r)
			}
			if r.For != "" {
				if _, err := parsePromDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			checkExpr(t, "alert "+r.Alert, r.Expr, known)
		}
	}
	for _, want := range []string{"ThemisJobFailed", "ThemisQuotaAbove80Percent", "ThemisReplicaLagDegraded", "ThemisReplicaLagCritical",
		"ThemisCapacityRunwayBelow30Days", "ThemisNoRecentVerifiedBackup", "ThemisNoVerifiedBackup", "ThemisDrillFailed", "ThemisDrillOverdue"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("alert rule %s missing (have %v)", want, alerts)
		}
	}
}

// parsePromDuration parses Prometheus durations, which allow d, w and y.
func parsePromDuration(s string) (time.Duration, error) {
	if m := regexp.MustCompile(`^(\d+)([dwy])$`).FindStringSubmatch(s); m != nil {
		day := 24 * time.Hour
		n, _ := time.ParseDuration(m[1] + "h")
		return n * map[string]time.Duration{"d": day, "w": 7 * day, "y": 365 * day}[m[2]] / time.Hour, nil
	}
	return time.ParseDuration(s)
}

type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// The dashboard's every query uses emitted metrics and labels, and it has
// the panels issue 14 lists.
func TestDashboardUsesEmittedMetrics(t *testing.T) {
	known := emitted(t)
	raw, err := os.ReadFile("grafana/themis-maintenance.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || len(d.Panels) == 0 {
		t.Fatal("dashboard without uid or panels")
	}
	used := map[string]bool{}
	for _, v := range d.Templating.List {
		checkExpr(t, "variable "+v.Name, v.Query, known)
	}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			checkExpr(t, "panel "+p.Title, q.Expr, known)
			for _, m := range metricRe.FindAllStringSubmatch(q.Expr, -1) {
				used[m[1]] = true
			}
		}
	}
	for _, want := range []string{"maintenance_jobs_triggered_total", "maintenance_jobs_failed_total", "maintenance_task_duration_ms_bucket",
		"maintenance_target_lock_wait_ms_bucket", "maintenance_health_status", "maintenance_capacity_runway_days", "maintenance_backup_age_seconds",
		"maintenance_replica_lag_seconds", "maintenance_drill_rto_seconds", "maintenance_drill_rto_objective_seconds",
		"maintenance_drill_rpo_seconds", "maintenance_drill_rpo_objective_seconds"} {
		if !used[want] {
			t.Errorf("no panel shows %s", want)
		}
	}
}

// The checker itself fails on an unknown metric, label or grouping.
func TestCheckExprCatchesMistakes(t *testing.T) {
	known := map[string][]string{"maintenance_x": {"target"}}
	for _, bad := range []string{`maintenance_y`, `maintenance_x{tagret="a"}`, `sum by (schedule) (maintenance_x)`} {
		ft := &testing.T{}
		done := make(chan struct{})
		go func() { defer close(done); checkExpr(ft, "t", bad, known) }()
		<-done
		if !ft.Failed() {
			t.Errorf("%q passed the check", bad)
		}
	}
}
