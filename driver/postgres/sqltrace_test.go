package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// Each SQL statement a task runs is a span under the caller's span (the
// task activity's, in the worker), with the statement text and no values.
func TestStatementSpansUnderTheTaskSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	db := newDB(t, shared)
	shared.Seed(t, db, pgcluster.SeedOptions{Tables: 2, Rows: 2000})
	e := newEnv(t, shared, db)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctx, parent := tp.Tracer("test").Start(ctx, "RunActivity:statistics_update")
	if _, _, err := e.run(ctx, domain.TaskStatisticsUpdate, nil, nil); err != nil {
		t.Fatal(err)
	}
	parent.End()

	var ops []string
	analyzed := false
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() != parent.SpanContext().TraceID() || !strings.HasPrefix(s.Name(), "sql ") {
			continue
		}
		ops = append(ops, s.Name())
		attrs := map[string]string{}
		for _, a := range s.Attributes() {
			attrs[string(a.Key)] = a.Value.Emit()
		}
		if attrs["db.system"] != "postgresql" || attrs["db.statement"] == "" || attrs["themis.target"] == "" {
			t.Errorf("span %s attributes %v", s.Name(), attrs)
		}
		if s.Name() == "sql ANALYZE" {
			analyzed = true
		}
	}
	if !analyzed {
		t.Errorf("no sql ANALYZE span under the task's span; statement spans: %v", ops)
	}
	t.Logf("%d statement spans: %v", len(ops), ops)
}
