package telemetry

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
)

func TestMetricsAreExportedForPrometheus(t *testing.T) {
	p, err := Setup("themis-test")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	ctx := context.Background()
	p.Metrics.JobDurations(ctx, domain.Job{Target: "demo", State: domain.StateSucceeded, DurationMs: 1234, Tasks: []domain.TaskRun{
		{TaskType: domain.TaskQuotaCheck, State: domain.StateSucceeded, StartedAtMs: 1000, FinishedAtMs: 1015},
	}})

	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		"# TYPE maintenance_task_duration_ms histogram", "# TYPE maintenance_job_duration_ms histogram", `task_type="quota_check"`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	var nilMetrics *Metrics
	nilMetrics.JobDurations(ctx, domain.Job{}) // a nil Metrics records nothing and does not panic
}

// scrape returns p's /metrics body.
func scrape(t *testing.T, p *Provider) string {
	t.Helper()
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// The naming contract of counters recorded through the Temporal SDK handler
// (workflow.GetMetricsHandler): a name already ending in _total keeps it
// (never _total_total), a bare name gains it, timers are seconds.
func TestTemporalHandlerNames(t *testing.T) {
	p, err := Setup("themis-test")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	h := p.TemporalMetricsHandler().WithTags(map[string]string{"namespace": "default", "workflow_type": "W"})
	h.WithTags(map[string]string{"state": "succeeded", "target": "demo", "triggered_by": "schedule"}).Counter("themis_jobs_total").Inc(1)
	h.WithTags(map[string]string{"task": "vacuum", "target": "demo", "state": "failed"}).Counter("themis_tasks_total").Inc(2)
	h.Counter("temporal_workflow_completed").Inc(1)
	h.Timer("temporal_workflow_endtoend_latency").Record(1500 * time.Millisecond)
	h.Gauge("temporal_num_pollers").Update(2)

	body := scrape(t, p)
	for _, want := range []string{
		"# TYPE themis_jobs_total counter",
		`themis_jobs_total{namespace="default",otel_scope_name="temporal-sdk-go",otel_scope_schema_url="",otel_scope_version="",state="succeeded",target="demo",triggered_by="schedule",workflow_type="W"} 1`,
		"# TYPE themis_tasks_total counter",
		`state="failed",target="demo",task="vacuum",workflow_type="W"} 2`,
		"# TYPE temporal_workflow_completed_total counter",
		"# TYPE temporal_workflow_endtoend_latency_seconds histogram",
		"temporal_workflow_endtoend_latency_seconds_sum{",
		"# TYPE temporal_num_pollers gauge",
		`target_info{service_name="themis-test"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "_total_total") {
		t.Errorf("/metrics has a doubled _total suffix:\n%s", body)
	}

	// Two instruments that map to one Prometheus name do not take the
	// whole scrape down: the rest is still served.
	h.Counter("themis_jobs").Inc(1)
	body = scrape(t, p)
	if !strings.Contains(body, "temporal_num_pollers") {
		t.Errorf("a name clash emptied the scrape:\n%s", body)
	}
}
