// Package root assembles the themisctl command tree: process commands
// (dev, worker, api, server) and client commands over the API (schedule,
// job, drill, health, status, task-types, targets, audit, token), and runs
// it with one-line errors and exit codes.
package root

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/cmd/themisctl/audit"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/cmd/themisctl/drill"
	"github.com/themis-maintenance/themis/cmd/themisctl/health"
	"github.com/themis-maintenance/themis/cmd/themisctl/history"
	"github.com/themis-maintenance/themis/cmd/themisctl/info"
	"github.com/themis-maintenance/themis/cmd/themisctl/job"
	"github.com/themis-maintenance/themis/cmd/themisctl/schedule"
	"github.com/themis-maintenance/themis/cmd/themisctl/serve"
	"github.com/themis-maintenance/themis/cmd/themisctl/target"
	"github.com/themis-maintenance/themis/cmd/themisctl/token"
	"github.com/themis-maintenance/themis/starter"
)

// NewCmdRoot builds the command tree on f.
func NewCmdRoot(f *cmdutil.Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "themisctl",
		Short: "Themis Maintenance: durable database maintenance on Temporal",
		Long: `themisctl runs Themis Maintenance (dev, server, worker, api) and drives it
through its HTTP API (schedule, job, drill, health, status, task-types, targets, audit).

Client commands talk to the API at --api-url ($THEMIS_API_URL, default
http://127.0.0.1:8080) with --token ($THEMIS_TOKEN).

Shell completion (schedule names, job and drill ids, task types, targets are
fetched from the API): source <(themisctl completion bash), or zsh, fish,
powershell.`,
		Version:       f.Version,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	f.AddConnectionFlags(root.PersistentFlags())
	out := f.IOStreams.Out
	root.AddGroup(&cobra.Group{ID: "run", Title: "Run Themis Maintenance:"}, &cobra.Group{ID: "client", Title: "Operate it:"})
	for _, c := range []*cobra.Command{serve.NewCmdDev(out), serve.NewCmdServer(out), serve.NewCmdWorker(out), serve.NewCmdAPI(out)} {
		c.GroupID = "run"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{schedule.NewCmdSchedule(f), job.NewCmdJob(f), drill.NewCmdDrill(f), health.NewCmdHealth(f, nil), info.NewCmdStatus(f, nil), info.NewCmdTaskTypes(f, nil), info.NewCmdTargets(f, nil),
		audit.NewCmdAudit(f, nil), history.NewCmdHistory(f, nil), target.NewCmdTarget(f), token.NewCmdToken(f)} {
		c.GroupID = "client"
		root.AddCommand(c)
	}
	root.AddCommand(newCmdVersion(f.Version))
	return cmdutil.Group(root)
}

// Main runs themisctl with the process's arguments and returns its exit code.
func Main() int { return MainWith(nil) }

// MainWith is Main for a binary that links extension modules in: customize,
// when not nil, sees the command tree before it runs (e.g. to add a hook or
// a command of the module's own).
func MainWith(customize func(*cobra.Command)) int {
	ios := cmdutil.System()
	version := ResolvedVersion()
	// The server run by this binary (dev, server, api) reports the same
	// version in GET /status.
	starter.Version = version
	f := cmdutil.NewFactory(ios, version)
	cmd := NewCmdRoot(f)
	if customize != nil {
		customize(cmd)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cmdutil.Execute(ctx, cmd, ios)
}
