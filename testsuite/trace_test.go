package testsuite

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/themis-maintenance/themis/domain"
)

// One trace runs from the API request through the workflow to the task
// activities (docs/METRICS.md).
func TestTraceFromAPIToActivities(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	e := NewEnv(t, EnvOptions{})
	sc := e.CreateSchedule("Traced", domain.TaskMetricsCollection, domain.TaskQuotaCheck)
	req, err := http.NewRequest(http.MethodPost, e.API.URL+"/api/v1/maintenance/schedules/"+sc.ID+"/run", strings.NewReader(`{"force":true}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if tok := e.Token("maintenance:admin"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	var job domain.Job
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&job))
	e.WaitJob(job.ID, time.Minute, Terminal)

	var apiTrace string
	names := map[string]string{} // span name → trace id
	// The workflow's own span ends when its function returns, a moment
	// after the job shows terminal.
	require.Eventually(t, func() bool {
		for _, s := range rec.Ended() {
			names[s.Name()] = s.SpanContext().TraceID().String()
			if strings.HasPrefix(s.Name(), "POST /api/v1/maintenance/schedules/"+sc.ID+"/run") {
				apiTrace = s.SpanContext().TraceID().String()
			}
		}
		return names["RunWorkflow:MaintenanceWorkflow"] != ""
	}, 10*time.Second, 100*time.Millisecond, "the workflow span ends")
	require.NotEmpty(t, apiTrace, "the API request has a span; got %v", names)
	for _, want := range []string{"StartWorkflow:MaintenanceWorkflow", "RunWorkflow:MaintenanceWorkflow",
		"StartActivity:metrics_collection", "RunActivity:metrics_collection", "RunActivity:quota_check"} {
		require.Equal(t, apiTrace, names[want], "span %s belongs to the API request's trace (spans: %v)", want, names)
	}
}
