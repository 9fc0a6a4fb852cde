package schedule

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/cmd/themisctl/job"
	"github.com/themis-maintenance/themis/domain"
)

// RunOptions are the inputs of `schedule run`.
type RunOptions struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)
	Interval  time.Duration

	Ref    string // id or exact name
	Force  bool
	DryRun bool
	Wait   bool
	Output string
}

// NewCmdRun returns `schedule run <id|name>`. runF replaces runRun in tests.
func NewCmdRun(f *cmdutil.Factory, runF func(context.Context, *RunOptions) error) *cobra.Command {
	opts := &RunOptions{IO: f.IOStreams, APIClient: f.APIClient}
	cmd := &cobra.Command{
		Use:   "run <id|name>",
		Short: "Start a job of a schedule now",
		Long: "Start a job of the schedule now, also when the schedule is disabled. Outside the maintenance\n" +
			"window the job is skipped unless --force is given, which needs a token with the\n" +
			"maintenance:admin scope (exit 4 otherwise).\n\n" +
			"With --wait the job is followed until it ends (long polls the server answers as soon as it\n" +
			"ends); the exit status is then 0 for succeeded or skipped and 1 for failed or cancelled.\n\n" +
			"--dry-run runs the same job, but each heavy task only decides what it would do on the real\n" +
			"target and executes nothing; it waits for the job and prints each task's plan (the\n" +
			"statements, with their objects and reasons). It needs no admin scope and ignores the window.",
		Example: `  themisctl schedule run "Daily Maintenance" --force
  themisctl schedule run weekly-maintenance --force --wait
  themisctl schedule run weekly-maintenance --dry-run`,
		Args: cmdutil.ExactArgs(1, "<id|name>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			if opts.Force && opts.DryRun {
				return cmdutil.FlagErrorf("--dry-run and --force exclude each other: a dry run ignores the window already")
			}
			opts.Ref = args[0]
			opts.Interval = f.Interval()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "run even outside the maintenance window")
	cmd.Flags().BoolVarP(&opts.Wait, "wait", "w", false, "follow the job's progress until it ends")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "plan each task on the real target and execute nothing (implies --wait)")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

func runRun(ctx context.Context, opts *RunOptions) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	s, err := cmdutil.ResolveSchedule(ctx, c, opts.Ref)
	if err != nil {
		return err
	}
	j, err := c.RunScheduleWith(ctx, s.ID, domain.RunOptions{Force: opts.Force, DryRun: opts.DryRun}, 0)
	if err != nil {
		return err
	}
	structured := cmdutil.Structured(opts.Output)
	switch {
	case structured:
	case opts.IO.IsTTY:
		forced := ""
		if j.Forced {
			forced = " (forced)"
		}
		if j.DryRun {
			forced = " (dry run: nothing is executed)"
		}
		fmt.Fprintf(opts.IO.Out, "✓ Started job %s for schedule %q%s\n", j.ID, s.Name, forced)
		if j.UIURL != "" {
			fmt.Fprintf(opts.IO.Out, "  Temporal UI: %s\n", j.UIURL)
		}
		if !opts.Wait && !opts.DryRun {
			fmt.Fprintf(opts.IO.Out, "  Follow it with: themisctl job get %s --watch\n", j.ID)
		}
	default:
		fmt.Fprintln(opts.IO.Out, j.ID)
	}
	if !opts.Wait && !opts.DryRun {
		if structured {
			return cmdutil.PrintStructured(opts.IO.Out, opts.Output, j)
		}
		return nil
	}
	if opts.IO.IsTTY && !structured {
		fmt.Fprintln(opts.IO.Out)
	}
	final, err := job.Watch(ctx, job.WatchOptions{IO: opts.IO, Client: c, JobID: j.ID, Interval: opts.Interval, Quiet: structured})
	if err != nil {
		return err
	}
	switch {
	case structured:
		if err := cmdutil.PrintStructured(opts.IO.Out, opts.Output, final); err != nil {
			return err
		}
	case opts.DryRun && !opts.IO.IsTTY:
		// A terminal saw the plan in the job's view; a pipe gets its lines.
		job.WritePlans(opts.IO.Out, final)
	}
	return job.ResultError(opts.IO, final)
}
