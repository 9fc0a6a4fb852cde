package schedule

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
)

// GetOptions are the inputs of `schedule get`.
type GetOptions struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)

	Ref    string // id or exact name
	Output string
}

// NewCmdGet returns `schedule get <id|name>`. runF replaces getRun in tests.
func NewCmdGet(f *cmdutil.Factory, runF func(context.Context, *GetOptions) error) *cobra.Command {
	opts := &GetOptions{IO: f.IOStreams, APIClient: f.APIClient}
	cmd := &cobra.Command{
		Use:     "get <id|name>",
		Aliases: []string{"show", "view"},
		Short:   "Show one schedule",
		Example: `  themisctl schedule get daily-maintenance
  themisctl schedule get "Daily Maintenance" -o json > daily.json`,
		Args: cmdutil.ExactArgs(1, "<id|name>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			opts.Ref = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return getRun(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

func getRun(ctx context.Context, opts *GetOptions) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	s, err := cmdutil.ResolveSchedule(ctx, c, opts.Ref)
	if err != nil {
		return err
	}
	if cmdutil.Structured(opts.Output) {
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, s)
	}
	writeSchedule(opts.IO.Out, s, opts.IO.IsTTY)
	return nil
}
