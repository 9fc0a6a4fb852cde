package telemetry

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMetricsAreExportedForPrometheus(t *testing.T) {
	p, err := Setup("themis-test")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	ctx := context.Background()
	p.Metrics.JobTriggered(ctx, "demo")
	p.Metrics.JobDone(ctx, "succeeded", "demo", 1234)
	p.Metrics.JobDone(ctx, "failed", "demo", 10)
	p.Metrics.TaskDone(ctx, "quota_check", "demo", true, 15*time.Millisecond)
	p.Metrics.TaskDone(ctx, "vacuum", "demo", false, time.Second)

	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`maintenance_jobs_triggered_total{`, `maintenance_jobs_succeeded_total{`, `maintenance_jobs_failed_total{`,
		`maintenance_tasks_succeeded_total{`, `maintenance_tasks_failed_total{`,
		`maintenance_task_duration_ms`, `maintenance_job_duration_ms`, `task_type="quota_check"`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	var nilMetrics *Metrics
	nilMetrics.JobDone(ctx, "succeeded", "demo", 1) // a nil Metrics records nothing and does not panic
}
