// Package target holds `themisctl target`: commands on one configured
// target. `target throttle` shows, sets or clears the target's manual
// pause (POST/GET/DELETE /targets/{name}/throttle): while one is in force
// the heavy tasks on the target wait between units of work.
package target

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
)

// NewCmdTarget returns `themisctl target` with its subcommands.
func NewCmdTarget(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "target <command>",
		Short: "Act on one target: pause its maintenance",
		Long:  "Commands on one configured target. `themisctl targets` lists them.",
		Example: `  themisctl target throttle orders --for 30m --reason "release freeze"
  themisctl target throttle orders
  themisctl target throttle orders --clear`,
	}
	cmd.AddCommand(NewCmdThrottle(f, nil))
	return cmdutil.Group(cmd)
}

// ThrottleOptions are the inputs of `target throttle`.
type ThrottleOptions struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)

	Target string
	For    time.Duration
	Until  time.Time
	Reason string
	Clear  bool
	Output string
}

// set reports whether the command sets a pause.
func (o *ThrottleOptions) set() bool { return o.For != 0 || !o.Until.IsZero() }

// NewCmdThrottle returns `target throttle <name>`. runF replaces
// throttleRun in tests.
func NewCmdThrottle(f *cmdutil.Factory, runF func(context.Context, *ThrottleOptions) error) *cobra.Command {
	opts := &ThrottleOptions{IO: f.IOStreams, APIClient: f.APIClient}
	var until string
	cmd := &cobra.Command{
		Use:   "throttle <target>",
		Short: "Show, set or clear a target's manual pause",
		Long: "Without flags, show whether maintenance on the target is paused. With --for or --until, pause\n" +
			"it: the heavy tasks running or starting on the target wait between units of work (a table, an\n" +
			"index) until the pause ends or is cleared, on every worker. --clear ends the pause at once.\n" +
			"Setting and clearing need the maintenance:write scope and are audited.",
		Example: `  themisctl target throttle orders --for 30m --reason "release freeze"
  themisctl target throttle orders --until 2026-12-24T18:00:00Z
  themisctl target throttle orders --clear`,
		Args:              cmdutil.ExactArgs(1, "<target>"),
		ValidArgsFunction: cmdutil.CompleteTargets(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			opts.Target = args[0]
			if until != "" {
				t, err := time.Parse(time.RFC3339, until)
				if err != nil {
					return cmdutil.FlagErrorf("invalid --until %q: want an RFC 3339 time such as 2026-12-24T18:00:00Z", until)
				}
				opts.Until = t
			}
			switch {
			case opts.For < 0 || cmd.Flags().Changed("for") && opts.For == 0:
				return cmdutil.FlagErrorf("invalid --for %s: want a positive duration such as 30m", opts.For)
			case opts.For != 0 && !opts.Until.IsZero():
				return cmdutil.FlagErrorf("give --for or --until, not both")
			case opts.Clear && (opts.set() || opts.Reason != ""):
				return cmdutil.FlagErrorf("--clear takes no --for, --until or --reason")
			case opts.Reason != "" && !opts.set():
				return cmdutil.FlagErrorf("--reason needs --for or --until")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return throttleRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&opts.For, "for", 0, "pause for this long (30m, 2h)")
	fl.StringVar(&until, "until", "", "pause until this RFC 3339 time")
	fl.StringVarP(&opts.Reason, "reason", "r", "", "why (shown to whoever looks at the pause and in the tasks' heartbeat)")
	fl.BoolVar(&opts.Clear, "clear", false, "end the pause now")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

func throttleRun(ctx context.Context, opts *ThrottleOptions) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	var st api.ThrottleState
	switch {
	case opts.Clear:
		st, err = c.ClearTargetThrottle(ctx, opts.Target)
	case opts.set():
		st, err = c.SetTargetThrottle(ctx, opts.Target, client.ThrottleRequest{Until: opts.Until, For: opts.For, Reason: opts.Reason})
	default:
		st, err = c.TargetThrottle(ctx, opts.Target)
	}
	if err != nil {
		return err
	}
	if cmdutil.Structured(opts.Output) {
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, st)
	}
	fmt.Fprintln(opts.IO.Out, describe(st, time.Now()))
	return nil
}

// describe is the one-line human answer.
func describe(st api.ThrottleState, now time.Time) string {
	if !st.Paused {
		s := "Maintenance on " + st.Target + " is not paused."
		if st.Cleared != nil && *st.Cleared {
			s = "Pause of " + st.Target + " cleared: maintenance goes on."
		}
		return s
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Maintenance on %s is paused until %s (%s from now)", st.Target,
		st.Until.UTC().Format(time.RFC3339), st.Until.Sub(now).Round(time.Second))
	if st.Reason != "" {
		fmt.Fprintf(&b, ": %s", st.Reason)
	}
	if st.CreatedBy != "" {
		fmt.Fprintf(&b, " (set by %s)", st.CreatedBy)
	}
	b.WriteString(".")
	return b.String()
}
