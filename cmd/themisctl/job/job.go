// Package job holds the `themisctl job` commands: list, get (with a live
// --watch progress view) and cancel. They call the Themis API through the
// typed client, like every themisctl client command.
package job

import (
	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
)

// NewCmdJob returns `themisctl job` with its subcommands.
func NewCmdJob(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "job <command>",
		Aliases: []string{"jobs"},
		Short:   "List, inspect, watch and cancel maintenance jobs",
		Long: "A job is one run of a schedule (one Temporal workflow execution; job id = workflow id).\n" +
			"Jobs are started by their schedule's cron or by `themisctl schedule run`.",
	}
	cmd.AddCommand(NewCmdList(f, nil), NewCmdGet(f, nil), NewCmdCancel(f, nil))
	for _, c := range cmd.Commands() {
		switch c.Name() {
		case "get", "cancel":
			c.ValidArgsFunction = cmdutil.CompleteJobArg(f)
		case "list":
			_ = c.RegisterFlagCompletionFunc("schedule", cmdutil.CompleteScheduleFlag(f))
		}
	}
	return cmdutil.Group(cmd)
}
