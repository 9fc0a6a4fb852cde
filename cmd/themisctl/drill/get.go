package drill

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/domain"
)

// GetOptions are the inputs of `drill get`.
type GetOptions struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)

	ID     string
	Output string
	// Watch follows the drill until it ends, printing each change.
	Watch bool
}

// NewCmdGet returns `drill get <id>`. runF replaces getRun in tests.
func NewCmdGet(f *cmdutil.Factory, runF func(context.Context, *GetOptions) error) *cobra.Command {
	opts := &GetOptions{IO: f.IOStreams, APIClient: f.APIClient}
	cmd := &cobra.Command{
		Use:     "get <drill-id>",
		Aliases: []string{"show", "view"},
		Short:   "Show a drill: steps with timings, approvals, RTO/RPO against the objectives",
		Args:    cmdutil.ExactArgs(1, "<drill-id>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			opts.ID = args[0]
			if err := checkID(opts.ID); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return getRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Watch, "watch", "w", false, "follow the drill until it ends, a line per change of state or step (long polls, no polling)")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

func getRun(ctx context.Context, opts *GetOptions) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	d, err := c.GetDrill(ctx, opts.ID)
	if err != nil {
		return err
	}
	if opts.Watch && !d.State.Terminal() {
		structured := cmdutil.Structured(opts.Output)
		line := func(d domain.Drill) {
			if !structured {
				fmt.Fprintf(opts.IO.Out, "%s\t%s\t%s\t%s\n", cmdutil.FormatTime(time.Now().UnixMilli(), false), d.State, d.Step, d.Awaiting)
			}
		}
		line(d)
		w := api.DrillWait{Wait: stepWait, SinceState: d.State, SinceStep: d.Step}
		if d, err = follow(ctx, c, opts.ID, 2*time.Second, w, func(domain.Drill) bool { return false }, line); err != nil {
			return err
		}
		if !structured {
			fmt.Fprintln(opts.IO.Out)
		}
	}
	if cmdutil.Structured(opts.Output) {
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, d)
	}
	writeDrill(opts.IO.Out, d, opts.IO.IsTTY)
	return nil
}
