package schedule

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
)

// DeleteOptions are the inputs of `schedule delete`.
type DeleteOptions struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)

	Ref string // id or exact name
	Yes bool
}

// NewCmdDelete returns `schedule delete <id|name>`. runF replaces
// deleteRun in tests.
func NewCmdDelete(f *cmdutil.Factory, runF func(context.Context, *DeleteOptions) error) *cobra.Command {
	opts := &DeleteOptions{IO: f.IOStreams, APIClient: f.APIClient}
	cmd := &cobra.Command{
		Use:   "delete <id|name>",
		Short: "Delete a schedule",
		Long: "Delete a schedule (its Temporal Schedule). Jobs already started keep running.\n" +
			"Asks for confirmation on a terminal; --yes is required otherwise.",
		Aliases: []string{"rm"},
		Args:    cmdutil.ExactArgs(1, "<id|name>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ref = args[0]
			if !opts.Yes && !(opts.IO.IsTTY && opts.IO.StdinTTY) {
				return cmdutil.FlagErrorf("--yes is required when not running interactively")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return deleteRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	return cmdutil.Silence(cmd)
}

func deleteRun(ctx context.Context, opts *DeleteOptions) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	s, err := cmdutil.ResolveSchedule(ctx, c, opts.Ref)
	if err != nil {
		return err
	}
	if !opts.Yes {
		fmt.Fprintf(opts.IO.ErrOut, "Delete schedule %q (%s)? [y/N] ", s.Name, s.ID)
		answer, _ := bufio.NewReader(opts.IO.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(opts.IO.ErrOut, "Not deleted.")
			return cmdutil.ErrSilent
		}
	}
	if err := c.DeleteSchedule(ctx, s.ID); err != nil {
		return err
	}
	if opts.IO.IsTTY {
		fmt.Fprintf(opts.IO.Out, "✓ Deleted schedule %q (%s)\n", s.Name, s.ID)
	} else {
		fmt.Fprintln(opts.IO.Out, s.ID)
	}
	return nil
}
