package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
)

func decode(t *testing.T, line string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("not a JSON line: %q: %v", line, err)
	}
	return m
}

// A buffer is not a terminal: auto is JSON, and each line carries the
// span's trace id and the job id and target of the context.
func TestJSONLinesCarryTraceJobAndTarget(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "", "info")
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "op")
	ctx = WithJob(ctx, "job-1", "demo")
	log.InfoContext(ctx, "vacuum done", "tables", 3)
	log.DebugContext(ctx, "hidden at info")
	span.End()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want 1 line (debug filtered), got %q", lines)
	}
	m := decode(t, lines[0])
	if m["trace_id"] != span.SpanContext().TraceID().String() || m["job_id"] != "job-1" || m["target"] != "demo" || m["msg"] != "vacuum done" {
		t.Errorf("line lacks trace/job/target: %v", m)
	}
}

func TestTextFormatAndLevel(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, FormatText, "debug")
	if err != nil {
		t.Fatal(err)
	}
	log.With("k", "v").DebugContext(WithJob(context.Background(), "j", ""), "hello")
	if got := buf.String(); !strings.Contains(got, "level=DEBUG") || !strings.Contains(got, "job_id=j") || !strings.Contains(got, "k=v") {
		t.Errorf("text line: %q", got)
	}
	if _, err := New(&buf, "xml", ""); err == nil {
		t.Error("format xml accepted")
	}
	if _, err := New(&buf, "", "loud"); err == nil {
		t.Error("level loud accepted")
	}
}

// Inside a Temporal activity the job id is the workflow id.
func TestActivityRecordsCarryJobID(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, FormatJSON, "info")
	if err != nil {
		t.Fatal(err)
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivityWithOptions(func(ctx context.Context) error {
		log.InfoContext(ctx, "in activity")
		return nil
	}, activity.RegisterOptions{Name: "quota_check"})
	if _, err := env.ExecuteActivity("quota_check"); err != nil {
		t.Fatal(err)
	}
	m := decode(t, strings.TrimSpace(buf.String()))
	if m["job_id"] == nil || m["job_id"] == "" || m["activity"] != "quota_check" {
		t.Errorf("activity line: %v", m)
	}
}
