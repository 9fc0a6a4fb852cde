// Package telemetry sets up OpenTelemetry for Themis Maintenance: a tracer
// provider (exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set), a
// meter provider exported in Prometheus format for /metrics, the Temporal
// SDK metrics handler on that provider (temporal_* worker metrics and the
// replay-safe counters workflows record), and the maintenance metrics of
// docs/METRICS.md.
package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/instrumentation"
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
	// The SDK's timers (activity execution, schedule-to-start, workflow
	// end-to-end latency) are histograms in seconds; maintenance tasks run
	// for minutes to hours, past the default buckets' 10 s.
	sdkLatency := sdkmetric.NewView(
		sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram, Scope: instrumentation.Scope{Name: TemporalMeterName}},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: TemporalLatencyBucketsSeconds}},
	)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res), sdkmetric.WithView(sdkLatency))
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

// Metrics are the maintenance histograms and gauges of docs/METRICS.md. A
// nil *Metrics records nothing, so tests need not set one up.
type Metrics struct {
	meter        metric.Meter
	taskDuration metric.Float64Histogram
	jobDuration  metric.Float64Histogram
	lockWait     metric.Float64Histogram
	// targetsOnce and healthOnce register each gauge callback once per
	// process, however many times the daemon wires it.
	targetsOnce, healthOnce sync.Once
}

// Instrument names of the histograms (milliseconds; no unit is set, so the
// Prometheus exporter adds no "_milliseconds" suffix to names that already
// say "_ms").
const (
	TaskDurationMetric   = "maintenance_task_duration_ms"
	JobDurationMetric    = "maintenance_job_duration_ms"
	TargetLockWaitMetric = "maintenance_target_lock_wait_ms"
)

// DurationBucketsMs are the bucket boundaries of the duration histograms:
// 10 ms to 6 h, so a long VACUUM or restore lands in a bucket, not in +Inf.
var DurationBucketsMs = []float64{
	10, 25, 50, 100, 250, 500, // sub-second
	1_000, 2_500, 5_000, 10_000, 30_000, // seconds
	60_000, 120_000, 300_000, 600_000, 1_200_000, 1_800_000, // minutes
	3_600_000, 7_200_000, 10_800_000, 14_400_000, 21_600_000, // hours, up to 6 h
}

// TemporalLatencyBucketsSeconds are the bucket boundaries of the Temporal
// SDK's latency histograms (seconds): 5 ms to 6 h.
var TemporalLatencyBucketsSeconds = []float64{
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
	60, 120, 300, 600, 1200, 1800, 3600, 7200, 10800, 14400, 21600,
}

// NewMetrics creates the instruments on meter. Job and task outcome
// counters (maintenance_jobs_*_total, maintenance_tasks_*_total,
// themis_*_total) are counted by the workflows through the Temporal SDK's
// replay-safe metrics handler, once per outcome; here are the duration
// histograms, recorded when a finished job is stored, and the gauges
// (ObserveTargets, ObserveHealth).
func NewMetrics(meter metric.Meter) (*Metrics, error) {
	m := &Metrics{meter: meter}
	var errs []error
	hist := func(name, desc string) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(DurationBucketsMs...))
		errs = append(errs, err)
		return h
	}
	m.taskDuration = hist(TaskDurationMetric, "Task duration in milliseconds (retries included)")
	m.jobDuration = hist(JobDurationMetric, "Job duration in milliseconds (waits for the target included)")
	m.lockWait = hist(TargetLockWaitMetric, "Time a heavy task waited for a slot of its target, in milliseconds")
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("create metrics: %w", err)
	}
	return m, nil
}

// scheduleLabel is the schedule a job ran under: its schedule id, or
// "manual" for a job started by hand (as workflows.ScheduleLabelManual;
// this package cannot import workflows).
func scheduleLabel(job domain.Job) string {
	if job.ScheduleID != "" {
		return job.ScheduleID
	}
	return "manual"
}

// JobDurations records a finished job's duration, each of its tasks' and
// each wait of a heavy task for its target's slot.
func (m *Metrics) JobDurations(ctx context.Context, job domain.Job) {
	if m == nil {
		return
	}
	schedule := scheduleLabel(job)
	m.jobDuration.Record(ctx, float64(job.DurationMs), metric.WithAttributes(
		attribute.String("schedule", schedule), attribute.String("target", job.Target), attribute.String("state", string(job.State))))
	for _, t := range job.Tasks {
		attrs := metric.WithAttributes(attribute.String("schedule", schedule),
			attribute.String("task_type", string(t.TaskType)), attribute.String("target", job.Target), attribute.String("state", string(t.State)))
		if waited, ok := waitedMs(t.Details); ok {
			m.lockWait.Record(ctx, waited, metric.WithAttributes(attribute.String("schedule", schedule),
				attribute.String("task_type", string(t.TaskType)), attribute.String("target", job.Target)))
		}
		if t.FinishedAtMs == 0 || t.StartedAtMs == 0 {
			continue
		}
		m.taskDuration.Record(ctx, float64(t.FinishedAtMs-t.StartedAtMs), attrs)
	}
}

// waitedMs reads the "waited_for_target_ms" detail the maintenance
// workflow sets on a task that waited for its target's slot.
func waitedMs(details map[string]any) (float64, bool) {
	switch v := details["waited_for_target_ms"].(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
	case int:
		return float64(v), true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	}
	return 0, false
}
