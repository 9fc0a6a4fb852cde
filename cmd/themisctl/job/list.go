package job

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/domain"
)

// ListOptions are the inputs of `job list`.
type ListOptions struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)

	Active    bool
	Schedule  string // id or exact name
	State     string
	Limit     int
	PageToken string
	Output    string
}

// NewCmdList returns `job list`. runF replaces listRun in tests.
func NewCmdList(f *cmdutil.Factory, runF func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, APIClient: f.APIClient}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Example: `  themisctl job list --active
  themisctl job list --schedule "Daily Maintenance" --state failed
  themisctl job list -o json | jq '.jobs[].id'`,
		Aliases: []string{"ls"},
		Args:    cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			if opts.State != "" && !domain.JobState(opts.State).Valid() {
				return cmdutil.FlagErrorf("invalid --state %q: want pending, running, succeeded, failed, cancelled or skipped", opts.State)
			}
			if opts.Limit < 1 || opts.Limit > api.MaxJobLimit {
				return cmdutil.FlagErrorf("invalid --limit %d: want 1–%d", opts.Limit, api.MaxJobLimit)
			}
			if opts.Active && domain.JobState(opts.State).Terminal() {
				return cmdutil.FlagErrorf("--active cannot be combined with --state %s", opts.State)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return listRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Active, "active", false, "only pending and running jobs")
	cmd.Flags().StringVar(&opts.Schedule, "schedule", "", "only jobs of this schedule (id or exact name)")
	cmd.Flags().StringVar(&opts.State, "state", "", "only jobs in this state (pending, running, succeeded, failed, cancelled, skipped)")
	cmd.Flags().IntVarP(&opts.Limit, "limit", "L", api.DefaultJobLimit, fmt.Sprintf("maximum number of jobs (1–%d)", api.MaxJobLimit))
	cmd.Flags().StringVar(&opts.PageToken, "page-token", "", "continue after a previous page (its next_page_token)")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

func listRun(ctx context.Context, opts *ListOptions) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	filter := api.JobFilter{ActiveOnly: opts.Active, State: domain.JobState(opts.State), Limit: opts.Limit, NextPageToken: opts.PageToken}
	if opts.Schedule != "" {
		s, err := cmdutil.ResolveSchedule(ctx, c, opts.Schedule)
		if err != nil {
			return err
		}
		filter.ScheduleID = s.ID
	}
	page, err := c.ListJobs(ctx, filter)
	if err != nil {
		return err
	}
	if cmdutil.Structured(opts.Output) {
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, page)
	}
	tty := opts.IO.IsTTY
	if len(page.Jobs) == 0 && tty {
		fmt.Fprintln(opts.IO.ErrOut, "No jobs match.")
		return nil
	}
	tp := cmdutil.NewTablePrinter(opts.IO)
	tp.AddHeader("ID", "SCHEDULE", "STATE", "PROGRESS", "STARTED", "DURATION", "TRIGGERED BY")
	for _, j := range page.Jobs {
		state, trig := string(j.State), j.TriggeredBy
		if tty {
			state = stateLabel(j.State)
			if j.Forced {
				trig += " (forced)"
			}
		}
		tp.AddRow(j.ID, firstNonEmpty(j.ScheduleName, j.ScheduleID), state, cmdutil.FormatPct(j.ProgressPct),
			cmdutil.FormatTime(j.StartedAtMs, tty), cmdutil.FormatDuration(j.DurationMs), trig)
	}
	if err := tp.Render(); err != nil {
		return err
	}
	if page.NextPageToken != "" && tty {
		args := []string{"themisctl job list"}
		if opts.Active {
			args = append(args, "--active")
		}
		if opts.Schedule != "" {
			args = append(args, fmt.Sprintf("--schedule %q", opts.Schedule))
		}
		if opts.State != "" {
			args = append(args, "--state "+opts.State)
		}
		args = append(args, fmt.Sprintf("--limit %d --page-token %s", opts.Limit, page.NextPageToken))
		fmt.Fprintf(opts.IO.ErrOut, "More jobs: %s\n", strings.Join(args, " "))
	}
	return nil
}
