package schedule

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
)

// ListOptions are the inputs of `schedule list`.
type ListOptions struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)

	Output string
}

// NewCmdList returns `schedule list`. runF replaces listRun in tests.
func NewCmdList(f *cmdutil.Factory, runF func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, APIClient: f.APIClient}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List schedules with their next and last runs",
		Args:    cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return listRun(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

func listRun(ctx context.Context, opts *ListOptions) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	list, err := c.ListSchedules(ctx)
	if err != nil {
		return err
	}
	if cmdutil.Structured(opts.Output) {
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, api.ScheduleList{Schedules: list, Count: len(list)})
	}
	tty := opts.IO.IsTTY
	if len(list) == 0 && tty {
		fmt.Fprintln(opts.IO.ErrOut, "No schedules. Create one with: themisctl schedule create --name NAME --tasks TASK,...")
		return nil
	}
	tp := cmdutil.NewTablePrinter(opts.IO)
	tp.AddHeader("ID", "NAME", "TARGET", "ENABLED", "CRON", "TIMEZONE", "WINDOW", "TASKS", "NEXT RUN", "LAST RUN")
	for _, s := range list {
		tasks := tasksList(s.Tasks)
		if tty {
			tasks = fmt.Sprintf("%d", len(s.Tasks))
		}
		last := string(s.LastRunState)
		if tty && last == "" {
			last = "-"
		}
		tp.AddRow(s.ID, s.Name, s.Target, cmdutil.YesNo(s.Enabled), s.CronExpression, s.Timezone, window(s), tasks,
			cmdutil.FormatTime(s.NextRunMs, tty), last)
	}
	return tp.Render()
}
