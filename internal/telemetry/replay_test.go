package telemetry_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	otelcontrib "go.temporal.io/sdk/contrib/opentelemetry"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/internal/devserver"
	"github.com/themis-maintenance/themis/internal/telemetry"
	"github.com/themis-maintenance/themis/internal/temporalclient"

	"github.com/themis-maintenance/themis/internal/telemetry/promtest"
)

// countingWorkflow records a "triggered" counter on its first workflow task,
// sleeps through three more workflow tasks (each a replay of the history
// from the start, with the sticky cache off) and records an outcome counter
// at the end. naive_replays_total is recorded on the handler's raw meter,
// which does not skip replays: it shows the replays happened.
func countingWorkflow(ctx workflow.Context, target string) error {
	h := workflow.GetMetricsHandler(ctx)
	h.WithTags(map[string]string{"target": target, "triggered_by": "schedule"}).Counter("themis_jobs_triggered_total").Inc(1)
	if raw := otelcontrib.ExtractMetricsHandler(h); raw != nil {
		c, err := raw.GetMeter().Int64Counter("naive_replays_total")
		if err != nil {
			return err
		}
		c.Add(context.Background(), 1)
	}
	for range 3 {
		if err := workflow.Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	h.WithTags(map[string]string{"state": "succeeded", "target": target, "triggered_by": "schedule"}).Counter("themis_jobs_total").Inc(1)
	return nil
}

// metricValue sums the samples of name in a Prometheus text body whose
// labels contain every one of labels.
func metricValue(t *testing.T, body, name string, labels ...string) float64 {
	t.Helper()
	v, err := promtest.Sum(body, name, labels...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// On a real dev server, with every workflow task replaying the history from
// the start, a counter recorded through workflow.GetMetricsHandler is
// exported once per workflow, not once per replay, beside the SDK's own
// temporal_* worker metrics.
func TestWorkflowCountersCountOnceAcrossReplays(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the Temporal dev server")
	}
	// No sticky cache: this test binary starts no other worker, so the
	// process-wide cache is created with size 0 and every workflow task
	// replays the whole history.
	sdkworker.SetStickyWorkflowCacheSize(0)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{})
	if err != nil {
		t.Fatalf("dev server: %v", err)
	}
	defer srv.Stop()

	p, err := telemetry.Setup("themis-test")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	// Dialled as in production: Setup installed p as the global meter
	// provider, which temporalclient gives the SDK.
	copts, err := temporalclient.Options(config.TemporalConfig{Address: srv.FrontendHostPort(), Namespace: "default"},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(copts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	queue := fmt.Sprintf("metrics-replay-%d", time.Now().UnixNano())
	w := sdkworker.New(c, queue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(countingWorkflow, workflow.RegisterOptions{Name: "CountingWorkflow"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: queue}, "CountingWorkflow", "demo")
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatalf("workflow: %v", err)
	}

	// The worker counts the completion after the server has the result,
	// so the client can see the result first: scrape until it is there.
	wf := `workflow_type="CountingWorkflow"`
	var body string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		rec := httptest.NewRecorder()
		p.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		body = rec.Body.String()
		if metricValue(t, body, "temporal_workflow_completed_total", wf) >= 1 || time.Now().After(deadline) {
			break
		}
	}
	if n := metricValue(t, body, "naive_replays_total"); n < 4 {
		t.Fatalf("the workflow code ran %v times; want ≥ 4 (first run + 3 replays), or this test proves nothing\n%s", n, body)
	}
	if n := metricValue(t, body, "themis_jobs_triggered_total", wf, `target="demo"`, `triggered_by="schedule"`, `task_queue="`+queue+`"`); n != 1 {
		t.Errorf("themis_jobs_triggered_total = %v, want 1 (once, not per replay)\n%s", n, body)
	}
	if n := metricValue(t, body, "themis_jobs_total", wf, `state="succeeded"`, `target="demo"`); n != 1 {
		t.Errorf("themis_jobs_total{state=succeeded} = %v, want 1\n%s", n, body)
	}
	// The SDK's own worker metrics reach the same /metrics.
	if n := metricValue(t, body, "temporal_workflow_completed_total", wf); n != 1 {
		t.Errorf("temporal_workflow_completed_total = %v, want 1\n%s", n, body)
	}
	for _, want := range []string{"temporal_workflow_task_execution_latency_seconds_count{", "temporal_worker_start_total{", "temporal_request_total{"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "_total_total") {
		t.Error("/metrics has a doubled _total suffix")
	}
}
