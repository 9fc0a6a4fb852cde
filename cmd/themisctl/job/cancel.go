package job

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

// CancelOptions are the inputs of `job cancel`.
type CancelOptions struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)
	Interval  time.Duration

	ID     string
	Wait   bool
	Output string
}

// NewCmdCancel returns `job cancel <id>`. runF replaces cancelRun in tests.
func NewCmdCancel(f *cmdutil.Factory, runF func(context.Context, *CancelOptions) error) *cobra.Command {
	opts := &CancelOptions{IO: f.IOStreams, APIClient: f.APIClient}
	cmd := &cobra.Command{
		Use:   "cancel <job-id>",
		Short: "Cancel an active job",
		Long: "Request cancellation of an active job. The running task stops at its next heartbeat and\n" +
			"cleans up; the remaining tasks do not run. A job that is not active is an error (exit 1).\n\n" +
			"The request returns at once, while the job still runs; with --wait the command waits until\n" +
			"the job has stopped (exit 0 once it reads cancelled, 1 when it ended otherwise first).",
		Example: `  themisctl job cancel weekly-maintenance-manual-20250101T020000Z --wait`,
		Args:    cmdutil.ExactArgs(1, "<job-id>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			opts.ID = args[0]
			if !api.ValidJobID(opts.ID) {
				return cmdutil.FlagErrorf("malformed job id %q", opts.ID)
			}
			opts.Interval = f.Interval()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return cancelRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait until the job has stopped")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

// cancelRun requests the cancellation. The service answers the job as it
// was when the request was made (still active: the running task stops at
// its next heartbeat), so that is what is reported; --wait then follows
// the job until it has ended.
func cancelRun(ctx context.Context, opts *CancelOptions) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	j, err := c.CancelJob(ctx, opts.ID)
	if err != nil {
		return err
	}
	if opts.Wait {
		return cancelWait(ctx, opts, c, j)
	}
	switch {
	case cmdutil.Structured(opts.Output):
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, j)
	case opts.IO.IsTTY:
		fmt.Fprintf(opts.IO.Out, "✓ Cancellation requested for job %s (it was %s; it stops at its next heartbeat)\n", j.ID, j.State)
		fmt.Fprintf(opts.IO.Out, "  Follow it with: themisctl job get %s --watch\n", j.ID)
	default:
		fmt.Fprintf(opts.IO.Out, "%s\tcancel_requested\t%s\n", j.ID, j.State)
	}
	return nil
}

// cancelWait follows a job whose cancellation was requested until it has
// ended. A job that ended otherwise (it finished before the cancellation
// reached it) is an exit-code error.
func cancelWait(ctx context.Context, opts *CancelOptions, c *client.Client, requested domain.Job) error {
	structured := cmdutil.Structured(opts.Output)
	if !structured && opts.IO.IsTTY {
		fmt.Fprintf(opts.IO.ErrOut, "Cancellation requested for job %s (it was %s); waiting for it to stop…\n", requested.ID, requested.State)
	}
	j, err := Watch(ctx, WatchOptions{IO: opts.IO, Client: c, JobID: opts.ID, Interval: opts.Interval, Quiet: true})
	if err != nil {
		return err
	}
	switch {
	case structured:
		if err := cmdutil.PrintStructured(opts.IO.Out, opts.Output, j); err != nil {
			return err
		}
	case opts.IO.IsTTY:
		if j.State == domain.StateCancelled {
			fmt.Fprintf(opts.IO.Out, "✓ Job %s cancelled\n", j.ID)
		} // otherwise the error below says what happened
	default:
		fmt.Fprintf(opts.IO.Out, "%s\t%s\n", j.ID, j.State)
	}
	if j.State != domain.StateCancelled {
		return &cmdutil.ExitError{Code: cmdutil.ExitFailure, Err: fmt.Errorf("job %s ended %s before the cancellation reached it", j.ID, j.State)}
	}
	return nil
}
