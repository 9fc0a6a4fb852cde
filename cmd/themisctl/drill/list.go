package drill

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
)

// ListOptions are the inputs of `drill list`.
type ListOptions struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)

	Limit  int
	Output string
}

// NewCmdList returns `drill list`. runF replaces listRun in tests.
func NewCmdList(f *cmdutil.Factory, runF func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, APIClient: f.APIClient}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List DR drills, newest first",
		Args:    cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			if opts.Limit < 1 || opts.Limit > api.MaxDrillLimit {
				return cmdutil.FlagErrorf("invalid --limit %d: want 1–%d", opts.Limit, api.MaxDrillLimit)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return listRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVarP(&opts.Limit, "limit", "L", api.DefaultDrillLimit, fmt.Sprintf("maximum number of drills (1–%d)", api.MaxDrillLimit))
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

func listRun(ctx context.Context, opts *ListOptions) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	list, err := c.ListDrills(ctx, opts.Limit)
	if err != nil {
		return err
	}
	if cmdutil.Structured(opts.Output) {
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, api.DrillList{Drills: list, Count: len(list)})
	}
	tty := opts.IO.IsTTY
	if len(list) == 0 && tty {
		fmt.Fprintln(opts.IO.ErrOut, "No drills. Start one with: themisctl drill start --target TARGET --wait-step")
		return nil
	}
	tp := cmdutil.NewTablePrinter(opts.IO)
	tp.AddHeader("ID", "TARGET", "STATE", "STEP", "STARTED", "RTO", "RPO", "PASSED", "REQUESTED BY")
	for _, d := range list {
		state, rto, rpo, passed := string(d.State), fmt.Sprint(d.RTOMs), fmt.Sprint(d.RPOMs), fmt.Sprint(d.Passed)
		if tty {
			state = stateLabel(d)
			rto, rpo, passed = "-", "-", passedLabel(d)
			if d.Measured {
				rto, rpo = fmtMs(d.RTOMs), fmtMs(d.RPOMs)
			}
		}
		tp.AddRow(d.ID, d.Target, state, d.Step, cmdutil.FormatTime(d.StartedAtMs, tty), rto, rpo, passed, d.RequestedBy)
	}
	return tp.Render()
}
