// Package telemetry sets up OpenTelemetry for Themis Maintenance: a tracer
// provider (exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set), a
// meter provider exported in Prometheus format for /metrics, the Temporal
// SDK metrics handler on that provider (temporal_* worker metrics and the
// replay-safe counters workflows record), and the maintenance metrics of
// SPEC §7.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Provider owns the process's OpenTelemetry providers.
type Provider struct {
	Tracer   *sdktrace.TracerProvider
	Meter    *sdkmetric.MeterProvider
	registry *prometheus.Registry
	Metrics  *Metrics
}

// Setup installs global tracer and meter providers for service. Traces are
// exported over OTLP/gRPC when OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, and to any extra span
// processors given (tests record spans this way).
func Setup(service string, spanProcessors ...sdktrace.SpanProcessor) (*Provider, error) {
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		exp, err := otlptracegrpc.New(context.Background())
		if err != nil {
			return nil, fmt.Errorf("otlp trace exporter: %w", err)
		}
		spanProcessors = append(spanProcessors, sdktrace.NewBatchSpanProcessor(exp))
	}
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", service))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	opts := []sdktrace.TracerProviderOption{}
	for _, sp := range spanProcessors {
		opts = append(opts, sdktrace.WithSpanProcessor(sp))
	}
	opts = append(opts, sdktrace.WithResource(res))
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	m, err := NewMetrics(mp.Meter("themis-maintenance"))
	if err != nil {
		return nil, err
	}
	return &Provider{Tracer: tp, Meter: mp, registry: reg, Metrics: m}, nil
}

// Handler serves the metrics in Prometheus text format. A metric that
// cannot be exported (two instruments mapping to one Prometheus name) is
// logged and left out; the rest of the scrape is still served.
func (p *Provider) Handler() http.Handler {
	return promhttp.HandlerFor(p.registry, promhttp.HandlerOpts{
		ErrorLog:      scrapeLog{},
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// scrapeLog sends promhttp's collection errors to slog.
type scrapeLog struct{}

func (scrapeLog) Println(v ...any) { slog.Warn("metrics scrape", "error", fmt.Sprint(v...)) }

// Shutdown flushes and stops the providers.
func (p *Provider) Shutdown(ctx context.Context) error {
	return errors.Join(p.Tracer.Shutdown(ctx), p.Meter.Shutdown(ctx))
}

// Metrics are the maintenance counters and histograms of SPEC §7. A nil
// *Metrics records nothing, so tests need not set one up.
type Metrics struct {
	jobs         map[string]metric.Int64Counter
	tasksOK      metric.Int64Counter
	tasksFailed  metric.Int64Counter
	taskDuration metric.Float64Histogram
	jobDuration  metric.Float64Histogram
}

// NewMetrics creates the instruments on meter.
func NewMetrics(meter metric.Meter) (*Metrics, error) {
	m := &Metrics{jobs: map[string]metric.Int64Counter{}}
	var errs []error
	counter := func(name, help string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithDescription(help))
		errs = append(errs, err)
		return c
	}
	for _, s := range []string{"triggered", "succeeded", "failed", "cancelled", "skipped"} {
		m.jobs[s] = counter("maintenance_jobs_"+s+"_total", "Maintenance jobs "+s)
	}
	m.tasksOK = counter("maintenance_tasks_succeeded_total", "Maintenance tasks that succeeded")
	m.tasksFailed = counter("maintenance_tasks_failed_total", "Maintenance task attempts that failed")
	// No unit on the histograms: the Prometheus exporter would append
	// "_milliseconds" to names that already say "_ms".
	var err error
	m.taskDuration, err = meter.Float64Histogram("maintenance_task_duration_ms", metric.WithDescription("Task attempt duration in milliseconds"))
	errs = append(errs, err)
	m.jobDuration, err = meter.Float64Histogram("maintenance_job_duration_ms", metric.WithDescription("Job duration in milliseconds"))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("create metrics: %w", err)
	}
	return m, nil
}

// JobTriggered counts a job start.
func (m *Metrics) JobTriggered(ctx context.Context, target string) {
	if m == nil {
		return
	}
	m.jobs["triggered"].Add(ctx, 1, metric.WithAttributes(attribute.String("target", target)))
}

// JobDone counts a finished job by state and records its duration.
func (m *Metrics) JobDone(ctx context.Context, state, target string, durationMs int64) {
	if m == nil {
		return
	}
	attrs := metric.WithAttributes(attribute.String("target", target))
	if c, ok := m.jobs[state]; ok {
		c.Add(ctx, 1, attrs)
	}
	m.jobDuration.Record(ctx, float64(durationMs), attrs)
}

// TaskDone counts a task attempt and records its duration.
func (m *Metrics) TaskDone(ctx context.Context, task, target string, ok bool, d time.Duration) {
	if m == nil {
		return
	}
	attrs := metric.WithAttributes(attribute.String("task_type", task), attribute.String("target", target))
	if ok {
		m.tasksOK.Add(ctx, 1, attrs)
	} else {
		m.tasksFailed.Add(ctx, 1, attrs)
	}
	m.taskDuration.Record(ctx, float64(d.Milliseconds()), attrs)
}
