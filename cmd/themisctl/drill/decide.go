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

// DecideOptions are the inputs of `drill approve` and `drill reject`.
type DecideOptions struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)

	ID      string
	Approve bool
	Step    string
	Comment string
	Output  string
	// Wait follows the drill after the decision until it awaits the next
	// approval or ends.
	Wait bool
}

// NewCmdApprove returns `drill approve <id> --step start|complete`. runF
// replaces decideRun in tests.
func NewCmdApprove(f *cmdutil.Factory, runF func(context.Context, *DecideOptions) error) *cobra.Command {
	return newDecideCmd(f, runF, true, "approve <drill-id>", "Approve the step a drill awaits (start or complete)",
		`  themisctl drill approve drill-orders-1735696800000 --step start --comment "CHG-1234"`)
}

// NewCmdReject returns `drill reject <id> --step start|complete`. runF
// replaces decideRun in tests.
func NewCmdReject(f *cmdutil.Factory, runF func(context.Context, *DecideOptions) error) *cobra.Command {
	return newDecideCmd(f, runF, false, "reject <drill-id>", "Reject the step a drill awaits; the drill stops and cleans up",
		`  themisctl drill reject drill-orders-1735696800000 --step complete --comment "RPO above objective, investigate"`)
}

func newDecideCmd(f *cmdutil.Factory, runF func(context.Context, *DecideOptions) error, approve bool, use, short, example string) *cobra.Command {
	opts := &DecideOptions{IO: f.IOStreams, APIClient: f.APIClient, Approve: approve}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + ".\n\nThe decision is recorded with your token's name as approver. A drill that does not await\n" +
			"that step is an error (HTTP 409, exit 1). Needs the maintenance:admin scope.",
		Example: example,
		Args:    cmdutil.ExactArgs(1, "<drill-id>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			opts.ID = args[0]
			if err := checkID(opts.ID); err != nil {
				return err
			}
			if opts.Step != domain.ApprovalStart && opts.Step != domain.ApprovalComplete {
				return cmdutil.FlagErrorf("invalid --step %q: want %s or %s", opts.Step, domain.ApprovalStart, domain.ApprovalComplete)
			}
			if n := len([]rune(opts.Comment)); n > api.MaxCommentLen {
				return cmdutil.FlagErrorf("--comment is %d characters long; the limit is %d", n, api.MaxCommentLen)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return decideRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Step, "step", "s", "", "the awaited approval: start or complete (required)")
	cmd.Flags().StringVarP(&opts.Comment, "comment", "m", "", "why (recorded in the drill and the audit log)")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "then wait until the drill awaits its next approval or ends (long polls)")
	_ = cmd.MarkFlagRequired("step")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

func decideRun(ctx context.Context, opts *DecideOptions) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	decide, verb := c.RejectDrill, "Rejected"
	if opts.Approve {
		decide, verb = c.ApproveDrill, "Approved"
	}
	d, err := decide(ctx, opts.ID, opts.Step, opts.Comment)
	if err != nil {
		return err
	}
	if opts.Wait && d.Awaiting == "" && !d.State.Terminal() {
		if opts.IO.IsTTY && !cmdutil.Structured(opts.Output) {
			fmt.Fprintf(opts.IO.ErrOut, "%s step %q; waiting for the drill to reach its next approval or end…\n", verb, opts.Step)
		}
		if d, err = WaitStep(ctx, c, opts.ID, 2*time.Second); err != nil {
			return err
		}
	}
	switch {
	case cmdutil.Structured(opts.Output):
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, d)
	case opts.IO.IsTTY:
		fmt.Fprintf(opts.IO.Out, "✓ %s step %q of drill %s; it is now %s\n", verb, opts.Step, d.ID, stateLabel(d))
		if d.Measured {
			fmt.Fprintf(opts.IO.Out, "  RTO: %s\n  RPO: %s\n", objective(d.RTOMs, d.RTOObjectiveMs, true), objective(d.RPOMs, d.RPOObjectiveMs, true))
		}
		if h := nextHint(d); h != "" {
			fmt.Fprintf(opts.IO.Out, "  %s\n", h)
		}
	default:
		fmt.Fprintf(opts.IO.Out, "%s\t%s\t%s\n", d.ID, d.State, d.Awaiting)
	}
	return nil
}
