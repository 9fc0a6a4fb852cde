package serve

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/internal/daemon"
	"github.com/themis-maintenance/themis/internal/devserver"
	"github.com/themis-maintenance/themis/internal/telemetry"
	"github.com/themis-maintenance/themis/internal/temporalclient"
)

// NewCmdDev returns `themisctl dev`: a Temporal dev server (file-backed
// under the data dir), a worker and the API in one process, on the demo
// SQLite database unless --config names targets.
func NewCmdDev(out io.Writer) *cobra.Command {
	o := &options{out: out}
	var noServer bool
	var uiPort string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything locally: Temporal dev server, worker and API on a demo database",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.load()
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			demo, err := daemon.EnsureDemoTarget(ctx, cfg)
			if err != nil {
				return err
			}
			tokenFile, err := daemon.EnsureDevToken(cfg)
			if err != nil {
				return err
			}
			log := logger(out)
			if !noServer {
				host, port, err := net.SplitHostPort(cfg.Temporal.Address)
				if err != nil {
					return fmt.Errorf("temporal address %q: %w", cfg.Temporal.Address, err)
				}
				fmt.Fprintf(out, "Starting the Temporal dev server on %s:%s (store %s)...\n", host, port, filepath.Join(cfg.DataDir, "temporal.db"))
				srv, err := devserver.Start(ctx, devserver.Options{
					HostPort: cfg.Temporal.Address, UIPort: uiPort, Namespace: cfg.Temporal.Namespace,
					DBFile: filepath.Join(cfg.DataDir, "temporal.db"),
				})
				if err != nil {
					return err
				}
				defer srv.Stop()
				cfg.Temporal.UIURL = "http://" + net.JoinHostPort(host, uiPort)
			}
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
			return runParts(ctx, c, cfg, tel, log, true, true, func(addr string) {
				fmt.Fprintf(out, "\nThemis Maintenance is running.\n")
				fmt.Fprintf(out, "  API:          http://%s/api/v1/maintenance   (docs: http://%s/docs)\n", addr, addr)
				if cfg.Temporal.UIURL != "" {
					fmt.Fprintf(out, "  Temporal UI:  %s/namespaces/%s/workflows\n", cfg.Temporal.UIURL, cfg.Temporal.Namespace)
				}
				if demo {
					fmt.Fprintf(out, "  Target:       %s (SQLite demo database %s)\n", daemon.DemoTarget, cfg.Targets[0].DSN)
				}
				if tokenFile != "" {
					fmt.Fprintf(out, "  Admin token:  %s (dev-admin; the CLI reads it from there)\n", tokenFile)
					fmt.Fprintf(out, "                for curl: export THEMIS_TOKEN=$(cat %s)\n", tokenFile)
				}
				fmt.Fprintf(out, "  Try:          bin/themisctl schedule list\n")
				fmt.Fprintf(out, "                bin/themisctl schedule run \"Daily Maintenance\" --force --wait\n")
				fmt.Fprintf(out, "                bin/themisctl schedule run \"Monthly Maintenance\" --force --wait   (a verified backup for the drill)\n")
				fmt.Fprintf(out, "                bin/themisctl drill start --target %s\n", cfg.DefaultTarget)
				fmt.Fprintf(out, "Press Ctrl-C to stop.\n\n")
			})
		},
	}
	o.addFlags(cmd, true)
	cmd.Flags().BoolVar(&noServer, "no-dev-server", false, "use the Temporal server at TEMPORAL_ADDRESS instead of starting one")
	cmd.Flags().StringVar(&uiPort, "ui-port", "8233", "Temporal UI port of the dev server")
	return cmd
}
