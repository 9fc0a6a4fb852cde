// Package telemetry sets up OpenTelemetry for Themis Maintenance: a tracer
// provider (exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set), a
// meter provider exported in Prometheus format for /metrics, the Temporal
// SDK metrics handler on that provider (temporal_* worker metrics and the
// replay-safe counters workflows record), and the maintenance metrics of
// docs/METRICS.md.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"

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

	"github.com/themis-maintenance/themis/domain"
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

// Metrics are the maintenance counters and histograms of docs/METRICS.md. A nil
// *Metrics records nothing, so tests need not set one up.
type Metrics struct {
	taskDuration metric.Float64Histogram
	jobDuration  metric.Float64Histogram
}

// NewMetrics creates the instruments on meter. Job and task outcome
// counters (maintenance_jobs_*_total, maintenance_tasks_*_total,
// themis_*_total) are counted by the workflows through the Temporal SDK's
// replay-safe metrics handler, once per outcome; here are only the
// duration histograms, recorded when a finished job is stored.
func NewMetrics(meter metric.Meter) (*Metrics, error) {
	m := &Metrics{}
	var errs []error
	// No unit on the histograms: the Prometheus exporter would append
	// "_milliseconds" to names that already say "_ms".
	var err error
	m.taskDuration, err = meter.Float64Histogram("maintenance_task_duration_ms", metric.WithDescription("Task duration in milliseconds (final attempt included, retries too)"))
	errs = append(errs, err)
	m.jobDuration, err = meter.Float64Histogram("maintenance_job_duration_ms", metric.WithDescription("Job duration in milliseconds"))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("create metrics: %w", err)
	}
	return m, nil
}

// JobDurations records a finished job's duration and each of its tasks'.
func (m *Metrics) JobDurations(ctx context.Context, job domain.Job) {
	if m == nil {
		return
	}
	m.jobDuration.Record(ctx, float64(job.DurationMs), metric.WithAttributes(attribute.String("target", job.Target), attribute.String("state", string(job.State))))
	for _, t := range job.Tasks {
		if t.FinishedAtMs == 0 || t.StartedAtMs == 0 {
			continue
		}
		m.taskDuration.Record(ctx, float64(t.FinishedAtMs-t.StartedAtMs), metric.WithAttributes(
			attribute.String("task_type", string(t.TaskType)), attribute.String("target", job.Target), attribute.String("state", string(t.State))))
	}
}
