package job

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
)

// GetOptions are the inputs of `job get`.
type GetOptions struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)
	Interval  time.Duration

	ID     string
	Watch  bool
	Output string
}

// NewCmdGet returns `job get <id>`. runF replaces getRun in tests.
func NewCmdGet(f *cmdutil.Factory, runF func(context.Context, *GetOptions) error) *cobra.Command {
	opts := &GetOptions{IO: f.IOStreams, APIClient: f.APIClient}
	cmd := &cobra.Command{
		Use:   "get <job-id>",
		Short: "Show a job with its tasks; --watch follows it live until it ends",
		Long: "Show a job with its tasks and progress.\n\n" +
			"With --watch the view is refreshed until the job ends (redrawn in place on a terminal,\n" +
			"one progress line per change otherwise); the exit status is then 0 for succeeded or\n" +
			"skipped and 1 for failed or cancelled. Each request is a long poll the server answers as soon\n" +
			"as the job ends. Ctrl-C stops watching, not the job.",
		Example: `  themisctl job get daily-maintenance-manual-20250101T020000Z --watch`,
		Aliases: []string{"show", "view"},
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
			return getRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Watch, "watch", "w", false, "follow the job's progress until it ends")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

func getRun(ctx context.Context, opts *GetOptions) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	if opts.Watch {
		j, err := Watch(ctx, WatchOptions{IO: opts.IO, Client: c, JobID: opts.ID, Interval: opts.Interval, Quiet: cmdutil.Structured(opts.Output)})
		if err != nil {
			return err
		}
		if cmdutil.Structured(opts.Output) {
			if err := cmdutil.PrintStructured(opts.IO.Out, opts.Output, j); err != nil {
				return err
			}
		}
		return ResultError(opts.IO, j)
	}
	j, err := c.GetJob(ctx, opts.ID)
	if err != nil {
		return err
	}
	if cmdutil.Structured(opts.Output) {
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, j)
	}
	writeJob(opts.IO.Out, j, opts.IO.IsTTY)
	return nil
}
