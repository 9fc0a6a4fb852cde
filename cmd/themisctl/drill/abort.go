package drill

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
)

// AbortOptions are the inputs of `drill abort`.
type AbortOptions struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)

	ID     string
	Reason string
	Output string
}

// NewCmdAbort returns `drill abort <id> --reason …`. runF replaces abortRun
// in tests.
func NewCmdAbort(f *cmdutil.Factory, runF func(context.Context, *AbortOptions) error) *cobra.Command {
	opts := &AbortOptions{IO: f.IOStreams, APIClient: f.APIClient}
	cmd := &cobra.Command{
		Use:   "abort <drill-id>",
		Short: "Abort a drill (its clean-up still runs)",
		Long: "Abort a running drill. The scratch instance is still cleaned up. A finished drill is an\n" +
			"error (HTTP 409, exit 1). Needs the maintenance:admin scope.",
		Example: `  themisctl drill abort drill-orders-1735696800000 --reason "incident on the primary"`,
		Args:    cmdutil.ExactArgs(1, "<drill-id>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			opts.ID = args[0]
			if err := checkID(opts.ID); err != nil {
				return err
			}
			if strings.TrimSpace(opts.Reason) == "" {
				return cmdutil.FlagErrorf("--reason is required: say why the drill is aborted")
			}
			if n := len([]rune(opts.Reason)); n > api.MaxCommentLen {
				return cmdutil.FlagErrorf("--reason is %d characters long; the limit is %d", n, api.MaxCommentLen)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return abortRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Reason, "reason", "r", "", "why the drill is aborted (required)")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

func abortRun(ctx context.Context, opts *AbortOptions) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	d, err := c.AbortDrill(ctx, opts.ID, opts.Reason)
	if err != nil {
		return err
	}
	switch {
	case cmdutil.Structured(opts.Output):
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, d)
	case opts.IO.IsTTY:
		fmt.Fprintf(opts.IO.Out, "✓ Abort requested for drill %s; it is now %s (cleaned up: %s)\n", d.ID, stateLabel(d), cmdutil.YesNo(d.CleanedUp))
	default:
		fmt.Fprintf(opts.IO.Out, "%s\t%s\n", d.ID, d.State)
	}
	return nil
}
