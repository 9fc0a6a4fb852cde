// Package history holds `themisctl history`: the command log — every
// statement the tasks ran on a target, with object, duration, rows
// affected, time throttled and error — through GET /commands.
package history

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
)

// Options are the inputs of `themisctl history`.
type Options struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)

	Query  client.CommandQuery
	Output string
}

// NewCmdHistory returns `themisctl history`. runF replaces historyRun in
// tests.
func NewCmdHistory(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, APIClient: f.APIClient}
	var since string
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Show the command log: every statement the maintenance tasks ran",
		Long: "Show the command log, newest first: each statement a task ran on a target, with the object\n" +
			"it worked on, when it started, how long it took, the rows it affected, the time the task\n" +
			"waited on its throttle before it, and its error. Filter by target, object, job and time.",
		Example: `  themisctl history --target orders --since 24h
  themisctl history --job weekly-maintenance-2026-12-01T02:00:00Z
  themisctl history --target orders --object public.events -o json | jq '.commands[].duration_ms'`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			t, err := cmdutil.ParseSince(since, time.Now())
			if err != nil {
				return err
			}
			opts.Query.Since = t
			if opts.Query.Limit < 1 || opts.Query.Limit > api.MaxCommandLimit {
				return cmdutil.FlagErrorf("invalid --limit %d: want 1–%d", opts.Query.Limit, api.MaxCommandLimit)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return historyRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Query.Target, "target", "", "only statements run on this target")
	fl.StringVar(&opts.Query.Object, "object", "", "only statements on this object (schema.table or schema.index)")
	fl.StringVar(&opts.Query.JobID, "job", "", "only statements of this job")
	fl.StringVar(&since, "since", "", "only statements started since then: a duration (1h, 7d), an RFC 3339 time or Unix ms")
	fl.IntVarP(&opts.Query.Limit, "limit", "L", api.DefaultCommandLimit, fmt.Sprintf("the newest this many statements (1–%d)", api.MaxCommandLimit))
	fl.StringVar(&opts.Query.PageToken, "page-token", "", "continue after the page that printed this token")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

func historyRun(ctx context.Context, opts *Options) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	page, err := c.ListCommands(ctx, opts.Query)
	if err != nil {
		return err
	}
	if cmdutil.Structured(opts.Output) {
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, page)
	}
	tty := opts.IO.IsTTY
	if page.Count == 0 && tty {
		fmt.Fprintln(opts.IO.ErrOut, "No statements match.")
		return nil
	}
	tp := cmdutil.NewTablePrinter(opts.IO)
	tp.AddHeader("STARTED", "TARGET", "TASK", "OBJECT", "STATEMENT", "DURATION", "ROWS", "THROTTLED", "ERROR", "JOB")
	for _, cm := range page.Commands {
		at := time.UnixMilli(cm.StartMs).UTC()
		started, stmt, errText := at.Format(time.RFC3339Nano), cm.Statement, cm.Error
		dur, throttled := strconv.FormatInt(cm.DurationMs, 10), strconv.FormatInt(cm.ThrottledMs, 10)
		if tty {
			started = at.Format("2006-01-02 15:04:05")
			stmt, errText = cmdutil.Clip(stmt, 60), cmdutil.Clip(errText, 40)
			dur = (time.Duration(cm.DurationMs) * time.Millisecond).String()
			throttled = (time.Duration(cm.ThrottledMs) * time.Millisecond).String()
		}
		tp.AddRow(started, cm.Target, cm.Task, cm.Object, stmt, dur, strconv.FormatInt(cm.RowsAffected, 10), throttled, errText, cm.JobID)
	}
	if err := tp.Render(); err != nil {
		return err
	}
	if page.NextPageToken != "" && tty {
		fmt.Fprintf(opts.IO.ErrOut, "More statements: --page-token %s\n", page.NextPageToken)
	}
	return nil
}
