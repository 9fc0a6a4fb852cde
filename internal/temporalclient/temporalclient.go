// Package temporalclient dials Temporal from the configuration: any cluster
// or Temporal Cloud (address, namespace, TLS/mTLS, API key), with the
// OpenTelemetry tracing interceptor and metrics handler installed.
package temporalclient

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"go.opentelemetry.io/otel"
	"go.temporal.io/sdk/client"
	otelcontrib "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/log"

	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/internal/telemetry"
)

// Options builds client options from the Temporal section of the config.
// The config has already merged, in this order of precedence, the standard
// Temporal environment variables (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
// TEMPORAL_API_KEY, TEMPORAL_TLS, TEMPORAL_TLS_CLIENT_CERT_PATH,
// TEMPORAL_TLS_CLIENT_KEY_PATH, TEMPORAL_TLS_SERVER_CA_CERT_PATH,
// TEMPORAL_TLS_SERVER_NAME), the config file's temporal section, and the
// Temporal client config profile (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE).
// TLS is on when asked (tls: true), with a client certificate or CA, and
// with an API key (as Temporal's tools do).
func Options(cfg config.TemporalConfig, logger *slog.Logger) (client.Options, error) {
	opts := client.Options{
		HostPort:  cfg.Address,
		Namespace: cfg.Namespace,
		Logger:    log.NewStructuredLogger(logger),
	}
	tracing, err := otelcontrib.NewTracingInterceptor(otelcontrib.TracerOptions{Tracer: otel.Tracer("themis-maintenance")})
	if err != nil {
		return opts, fmt.Errorf("tracing interceptor: %w", err)
	}
	opts.Interceptors = []interceptor.ClientInterceptor{tracing}
	// The SDK's worker and client metrics (temporal_*) and the counters
	// workflows record through workflow.GetMetricsHandler (skipped during
	// replay) go to the process's meter provider, set by telemetry.Setup
	// before dialling, and so to its /metrics.
	opts.MetricsHandler = telemetry.NewTemporalMetricsHandler(otel.GetMeterProvider())

	if cfg.TLS || cfg.TLSCert != "" || cfg.TLSCA != "" || cfg.APIKey != "" {
		tlsCfg := &tls.Config{ServerName: cfg.TLSServerName, MinVersion: tls.VersionTLS12}
		if cfg.TLSCert != "" || cfg.TLSKey != "" {
			cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
			if err != nil {
				return opts, fmt.Errorf("load temporal client certificate: %w", err)
			}
			tlsCfg.Certificates = []tls.Certificate{cert}
		}
		if cfg.TLSCA != "" {
			pem, err := os.ReadFile(cfg.TLSCA)
			if err != nil {
				return opts, fmt.Errorf("read temporal CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return opts, fmt.Errorf("temporal CA %s: no certificates found", cfg.TLSCA)
			}
			tlsCfg.RootCAs = pool
		}
		opts.ConnectionOptions.TLS = tlsCfg
	}
	if cfg.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(cfg.APIKey)
	}
	return opts, nil
}

// Dial connects to Temporal.
func Dial(cfg config.TemporalConfig, logger *slog.Logger) (client.Client, error) {
	opts, err := Options(cfg, logger)
	if err != nil {
		return nil, err
	}
	c, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to temporal at %s: %w", cfg.Address, err)
	}
	return c, nil
}
