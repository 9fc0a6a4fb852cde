package job

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
)

// CancelOptions are the inputs of `job cancel`.
type CancelOptions struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)

	ID     string
	Output string
}

// NewCmdCancel returns `job cancel <id>`. runF replaces cancelRun in tests.
func NewCmdCancel(f *cmdutil.Factory, runF func(context.Context, *CancelOptions) error) *cobra.Command {
	opts := &CancelOptions{IO: f.IOStreams, APIClient: f.APIClient}
	cmd := &cobra.Command{
		Use:   "cancel <job-id>",
		Short: "Cancel an active job",
		Long: "Request cancellation of an active job. The running task stops at its next heartbeat and\n" +
			"cleans up; the remaining tasks do not run. A job that is not active is an error (exit 1).",
		Args: cmdutil.ExactArgs(1, "<job-id>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			opts.ID = args[0]
			if !api.ValidJobID(opts.ID) {
				return cmdutil.FlagErrorf("malformed job id %q", opts.ID)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return cancelRun(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

func cancelRun(ctx context.Context, opts *CancelOptions) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	j, err := c.CancelJob(ctx, opts.ID)
	if err != nil {
		return err
	}
	switch {
	case cmdutil.Structured(opts.Output):
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, j)
	case opts.IO.IsTTY:
		fmt.Fprintf(opts.IO.Out, "✓ Cancellation requested for job %s (now %s)\n", j.ID, j.State)
	default:
		fmt.Fprintf(opts.IO.Out, "%s\t%s\n", j.ID, j.State)
	}
	return nil
}
