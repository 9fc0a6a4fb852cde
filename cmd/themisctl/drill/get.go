package drill

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
)

// GetOptions are the inputs of `drill get`.
type GetOptions struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)

	ID     string
	Output string
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
	if cmdutil.Structured(opts.Output) {
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, d)
	}
	writeDrill(opts.IO.Out, d, opts.IO.IsTTY)
	return nil
}
