package drill

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/domain"
)

// maxPollFailures is how many polls in a row may fail before --wait-step
// gives up.
const maxPollFailures = 5

// StartOptions are the inputs of `drill start`.
type StartOptions struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)
	Interval  time.Duration

	Target   string
	Strategy string
	WaitStep bool
	Output   string
}

// NewCmdStart returns `drill start`. runF replaces startRun in tests.
func NewCmdStart(f *cmdutil.Factory, runF func(context.Context, *StartOptions) error) *cobra.Command {
	opts := &StartOptions{IO: f.IOStreams, APIClient: f.APIClient}
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start a DR drill",
		Long: "Start a disaster-recovery drill on --target (default: the configured default target).\n\n" +
			"--strategy chooses how it restores: backup_restore (the latest verified backup, on PostgreSQL\n" +
			"with archived WAL replayed to the failure instant) or replica_clone (a copy of the standby,\n" +
			"PostgreSQL only); without it the target's drill.strategy applies.\n\n" +
			"With --wait-step the command follows the drill until it awaits an approval (or ends) and\n" +
			"prints the command that answers it; a drill that ends before that (e.g. a failed preflight)\n" +
			"exits 1.",
		Example: `  themisctl drill start --target orders --wait-step
  themisctl drill start --target orders --strategy replica_clone`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			if err := domain.ValidateDrillStrategy(opts.Strategy); err != nil {
				return cmdutil.FlagErrorf("--strategy: %s", strings.TrimPrefix(err.Error(), "strategy: "))
			}
			opts.Interval = f.Interval()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return startRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Target, "target", "t", "", "target to drill (default: the configured default target)")
	cmd.Flags().StringVar(&opts.Strategy, "strategy", "", "how the drill restores: "+strings.Join(domain.DrillStrategies(), " or ")+" (default: the target's drill.strategy)")
	_ = cmd.RegisterFlagCompletionFunc("strategy", cobra.FixedCompletions(domain.DrillStrategies(), cobra.ShellCompDirectiveNoFileComp))
	cmd.Flags().BoolVarP(&opts.WaitStep, "wait-step", "w", false, "wait until the drill awaits an approval (or ends)")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

func startRun(ctx context.Context, opts *StartOptions) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	d, err := c.StartDrillRequest(ctx, api.DrillStartRequest{Target: opts.Target, Strategy: opts.Strategy})
	if err != nil {
		return err
	}
	structured, tty := cmdutil.Structured(opts.Output), opts.IO.IsTTY
	switch {
	case structured:
	case tty:
		fmt.Fprintf(opts.IO.Out, "✓ Started drill %s on target %s\n", d.ID, d.Target)
		if d.Strategy != "" {
			fmt.Fprintf(opts.IO.Out, "  Strategy: %s\n", d.Strategy)
		}
		if d.UIURL != "" {
			fmt.Fprintf(opts.IO.Out, "  Temporal UI: %s\n", d.UIURL)
		}
		if !opts.WaitStep {
			fmt.Fprintf(opts.IO.Out, "  Follow it with: themisctl drill get %s\n", d.ID)
		}
	case !opts.WaitStep:
		fmt.Fprintln(opts.IO.Out, d.ID)
	}
	if opts.WaitStep {
		if tty && !structured {
			fmt.Fprintln(opts.IO.ErrOut, "Waiting for the drill to reach an approval step…")
		}
		if d, err = WaitStep(ctx, c, d.ID, opts.Interval); err != nil {
			return err
		}
		switch {
		case structured:
		case tty:
			fmt.Fprintln(opts.IO.Out)
			writeDrill(opts.IO.Out, d, true)
		default:
			fmt.Fprintf(opts.IO.Out, "%s\t%s\t%s\n", d.ID, d.State, d.Awaiting)
		}
	}
	if structured {
		if err := cmdutil.PrintStructured(opts.IO.Out, opts.Output, d); err != nil {
			return err
		}
	}
	if d.State.Terminal() && d.State != domain.DrillPassed {
		return &cmdutil.ExitError{Code: cmdutil.ExitFailure, Err: fmt.Errorf("drill %s ended %s: %s", d.ID, d.State, oneLine(d.Reason))}
	}
	return nil
}

// stepWait is how long each request of WaitStep and Follow has the server
// hold (GET /drills/{id}?wait=): below the client's 30-second timeout.
const stepWait = 20 * time.Second

// WaitStep follows the drill until it awaits an approval or ends, and
// returns it. Each request is a long poll the server answers as soon as the
// drill gets there (GET /drills/{id}?wait=&until=awaiting_approval,ended);
// interval only spaces out retries of failed requests (up to 5 in a row).
// ctx stops waiting.
func WaitStep(ctx context.Context, c *client.Client, id string, interval time.Duration) (domain.Drill, error) {
	return follow(ctx, c, id, interval, api.DrillWait{Wait: stepWait, Until: []domain.DrillState{domain.DrillAwaiting}},
		func(d domain.Drill) bool { return d.Awaiting != "" }, nil)
}

// follow long-polls drill id with w until stop(d) holds or the drill has
// ended; each answer goes to seen (may be nil). With w.SinceState or
// w.SinceStep set, they follow the last answer.
func follow(ctx context.Context, c *client.Client, id string, interval time.Duration, w api.DrillWait, stop func(domain.Drill) bool, seen func(domain.Drill)) (domain.Drill, error) {
	failures := 0
	var last domain.Drill
	for {
		d, err := c.WaitDrill(ctx, id, w)
		switch {
		case err == nil:
			last, failures = d, 0
			if seen != nil {
				seen(d)
			}
			if stop(d) || d.State.Terminal() {
				return d, nil
			}
			if w.SinceState != "" || w.SinceStep != "" {
				w.SinceState, w.SinceStep = d.State, d.Step
			}
			continue
		case ctx.Err() != nil:
			return last, ctx.Err()
		case client.IsNotFound(err):
			return last, err
		default:
			if failures++; failures >= maxPollFailures {
				return last, fmt.Errorf("waiting for drill %s: %w", id, err)
			}
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(interval):
		}
	}
}
