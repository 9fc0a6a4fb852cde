package telemetry

import (
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	"go.temporal.io/sdk/client"
	otelcontrib "go.temporal.io/sdk/contrib/opentelemetry"
)

// TemporalMeterName is the instrumentation scope of the Temporal SDK's
// metrics (temporal_* worker and client metrics, and the counters workflows
// record through workflow.GetMetricsHandler).
const TemporalMeterName = "temporal-sdk-go"

// NewTemporalMetricsHandler returns the Temporal SDK metrics handler backed
// by mp, for client.Options.MetricsHandler. SDK counters are monotonic, so
// Prometheus sees them as counters (with the _total suffix the exporter
// adds, never doubled); timers are histograms in seconds. An instrument
// the meter refuses is logged, not a panic.
func NewTemporalMetricsHandler(mp metric.MeterProvider) client.MetricsHandler {
	return otelcontrib.NewMetricsHandler(otelcontrib.MetricsHandlerOptions{
		Meter:                mp.Meter(TemporalMeterName),
		UseMonotonicCounters: true,
		OnError: func(err error) {
			slog.Warn("temporal sdk metric dropped", "error", err)
		},
	})
}

// TemporalMetricsHandler is NewTemporalMetricsHandler on p's meter provider.
func (p *Provider) TemporalMetricsHandler() client.MetricsHandler {
	return NewTemporalMetricsHandler(p.Meter)
}
