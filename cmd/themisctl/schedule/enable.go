package schedule

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
)

// ToggleOptions are the inputs of `schedule enable` and `schedule disable`.
type ToggleOptions struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)

	Ref     string // id or exact name
	Enabled bool
	Output  string
}

// NewCmdEnable returns `schedule enable <id|name>`. runF replaces
// toggleRun in tests.
func NewCmdEnable(f *cmdutil.Factory, runF func(context.Context, *ToggleOptions) error) *cobra.Command {
	return newToggleCmd(f, runF, true, "enable <id|name>", "Resume a schedule (unpause its Temporal Schedule)")
}

func newToggleCmd(f *cmdutil.Factory, runF func(context.Context, *ToggleOptions) error, enabled bool, use, short string) *cobra.Command {
	opts := &ToggleOptions{IO: f.IOStreams, APIClient: f.APIClient, Enabled: enabled}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cmdutil.ExactArgs(1, "<id|name>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			opts.Ref = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return toggleRun(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

func toggleRun(ctx context.Context, opts *ToggleOptions) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	s, err := cmdutil.ResolveSchedule(ctx, c, opts.Ref)
	if err != nil {
		return err
	}
	was := s.Enabled
	s, err = c.PatchSchedule(ctx, s.ID, map[string]any{"enabled": opts.Enabled})
	if err != nil {
		return err
	}
	switch {
	case cmdutil.Structured(opts.Output):
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, s)
	case opts.IO.IsTTY:
		verb := "Disabled"
		if opts.Enabled {
			verb = "Enabled"
		}
		note := ""
		if was == opts.Enabled {
			note = " (it already was)"
		}
		fmt.Fprintf(opts.IO.Out, "✓ %s schedule %q (%s)%s\n", verb, s.Name, s.ID, note)
		if s.Enabled {
			fmt.Fprintf(opts.IO.Out, "  Next run: %s\n", cmdutil.FormatTime(s.NextRunMs, true))
		}
	default:
		fmt.Fprintf(opts.IO.Out, "%s\t%t\n", s.ID, s.Enabled)
	}
	return nil
}
