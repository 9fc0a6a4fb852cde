// Package serve holds the themisctl commands that run processes: dev (dev
// server + worker + API in one process), worker, api, and server (worker +
// api). They read the config file (--config / THEMIS_CONFIG) and the
// environment overrides of package config.
package serve

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/internal/daemon"
	"github.com/themis-maintenance/themis/internal/logging"
	"github.com/themis-maintenance/themis/internal/telemetry"
	"github.com/themis-maintenance/themis/internal/temporalclient"
)

// options shared by the process commands.
type options struct {
	configPath string
	listen     string
	dataDir    string
	// metricsListen is the worker's --metrics-listen.
	metricsListen string
	out           io.Writer
}

func (o *options) addFlags(cmd *cobra.Command, withListen bool) {
	cmd.Flags().StringVar(&o.configPath, "config", os.Getenv("THEMIS_CONFIG"), "config file (YAML) [$THEMIS_CONFIG]")
	cmd.Flags().StringVar(&o.dataDir, "data-dir", "", "data directory (default ./.data) [$THEMIS_DATA_DIR]")
	if withListen {
		cmd.Flags().StringVar(&o.listen, "listen", "", "API listen address (default 127.0.0.1:8080) [$THEMIS_API_LISTEN]")
	}
}

func (o *options) load() (*config.Config, error) {
	if o.dataDir != "" {
		os.Setenv("THEMIS_DATA_DIR", o.dataDir)
	}
	if o.listen != "" {
		os.Setenv("THEMIS_API_LISTEN", o.listen)
	}
	if o.metricsListen != "" {
		os.Setenv("THEMIS_WORKER_METRICS_LISTEN", o.metricsListen)
	}
	return config.Load(o.configPath)
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func logger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// NewCmdWorker returns `themisctl worker`.
func NewCmdWorker(out io.Writer) *cobra.Command {
	o := &options{out: out}
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a worker that executes maintenance jobs",
		Long: `Run a worker that executes maintenance jobs.

It serves GET /metrics (Prometheus: temporal_* worker metrics and the job and
task outcome counters workflows record), /healthz and /readyz on
worker.metrics_listen (--metrics-listen, $THEMIS_WORKER_METRICS_LISTEN,
default 127.0.0.1:9464; "off" serves none). Give each worker on one host
its own address.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(true, false)
		},
	}
	o.addFlags(cmd, false)
	cmd.Flags().StringVar(&o.metricsListen, "metrics-listen", "", `address of /metrics and /healthz (default 127.0.0.1:9464, "off" for none) [$THEMIS_WORKER_METRICS_LISTEN]`)
	return cmd
}

// NewCmdAPI returns `themisctl api`.
func NewCmdAPI(out io.Writer) *cobra.Command {
	o := &options{out: out}
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Run the HTTP API gateway",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(false, true)
		},
	}
	o.addFlags(cmd, true)
	return cmd
}

// NewCmdServer returns `themisctl server` (worker + API).
func NewCmdServer(out io.Writer) *cobra.Command {
	o := &options{out: out}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the worker and the API gateway in one process",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(true, true)
		},
	}
	o.addFlags(cmd, true)
	return cmd
}

func (o *options) run(withWorker, withAPI bool) error {
	cfg, err := o.load()
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	log, err := logging.New(o.out, cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	tel, err := telemetry.Setup("themis-maintenance")
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.Background())
	c, err := temporalclient.Dial(cfg.Temporal, log)
	if err != nil {
		return err
	}
	defer c.Close()
	return runParts(ctx, c, cfg, tel, log, withWorker, withAPI, func(addr string) {
		fmt.Fprintf(o.out, "API listening on http://%s/api/v1/maintenance (docs: http://%s/docs)\n", addr, addr)
	})
}

func runParts(ctx context.Context, c client.Client, cfg *config.Config, tel *telemetry.Provider, log *slog.Logger,
	withWorker, withAPI bool, ready func(string)) error {
	g, gctx := errgroup.WithContext(ctx)
	// The worker's drivers and history store also serve the API's
	// /task-types and target health probes; an API-only process opens its
	// own (probing read-only).
	deps, err := daemon.NewWorkerDeps(cfg, tel.Metrics, nil)
	switch {
	case err != nil && withWorker:
		return err
	case err != nil:
		log.Warn("target health probes disabled: this API process cannot open the targets", "error", err)
		deps = &daemon.WorkerDeps{}
		// The history store (retained jobs and drills, the shared audit
		// log) does not depend on reaching the targets.
		if deps.History, err = daemon.OpenHistory(ctx, cfg); err != nil {
			return err
		}
		defer deps.Close()
	default:
		defer deps.Close()
	}
	if withWorker {
		g.Go(func() error { return daemon.RunWorker(gctx, c, cfg, deps) })
	}
	if withWorker && !withAPI {
		// A worker-only process serves its own /metrics (temporal_* SDK
		// metrics, workflow outcome counters) and /healthz on
		// worker.metrics_listen. With the API in the process, the API
		// port's /metrics exports the same meter provider instead: one
		// endpoint, one registry.
		g.Go(func() error { return daemon.ServeWorkerMetrics(gctx, cfg, tel, c, log, nil) })
	}
	if withAPI {
		svc, err := daemon.NewService(ctx, c, cfg, tel.Metrics, log, deps.Registry, deps.History)
		if err != nil {
			return err
		}
		g.Go(func() error { svc.RunHealthProbes(gctx); return nil })
		g.Go(func() error { svc.RunReadModel(gctx); return nil })
		h, err := daemon.Handler(svc, cfg, tel, log, daemon.HandlerOptions{History: deps.History})
		if err != nil {
			return err
		}
		g.Go(func() error { return daemon.ServeAPI(gctx, cfg, h, ready) })
	}
	return g.Wait()
}
