// Package health holds `themisctl health`: the overall status and a table
// of the modules and targets, from the API's cached health probes
// (GET /health).
package health

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
)

// Options are the inputs of `themisctl health`.
type Options struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)

	// Check makes a status other than healthy exit 1 (for scripts and
	// monitoring).
	Check  bool
	Output string
}

// NewCmdHealth returns `themisctl health`. runF replaces healthRun in tests.
func NewCmdHealth(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, APIClient: f.APIClient}
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Show the health of Themis Maintenance: overall and per module",
		Long: "Show the overall health (the worst module status) and each module's and target's status,\n" +
			"from the API's cached probes. Any failed job in the last 24 hours makes it at least degraded.\n\n" +
			"The exit status is 0 whatever the health, unless --check is given: then it is 1 when the\n" +
			"overall status is degraded or critical.",
		Example: `  themisctl health
  themisctl health --check -o json > /dev/null || page-oncall`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return healthRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Check, "check", false, "exit 1 unless the overall status is healthy")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

func label(status string) string {
	switch status {
	case api.HealthOK:
		return "✓ healthy"
	case api.HealthDegraded:
		return "▲ degraded"
	case api.HealthCritical:
		return "✗ critical"
	}
	return status
}

func healthRun(ctx context.Context, opts *Options) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	rep, err := c.Health(ctx)
	if err != nil {
		return err
	}
	if err := writeReport(opts.IO, rep, opts.Output); err != nil {
		return err
	}
	if opts.Check && rep.OverallStatus != api.HealthOK {
		return &cmdutil.ExitError{Code: cmdutil.ExitFailure, Err: fmt.Errorf("overall status is %s", rep.OverallStatus)}
	}
	return nil
}

// writeReport prints the report: JSON; or on a terminal the overall status
// and an aligned table; or tab-separated lines "overall<TAB>status<TAB>
// checked" then "name<TAB>status<TAB>checked<TAB>message" per module.
func writeReport(ios *cmdutil.IOStreams, rep api.HealthReport, output string) error {
	if output == cmdutil.OutputJSON {
		return cmdutil.PrintJSON(ios.Out, rep)
	}
	tty := ios.IsTTY
	if tty {
		checked := cmdutil.FormatTime(rep.CheckedAtMs, true)
		if rep.CheckedAtMs == 0 {
			checked = "not yet"
		}
		fmt.Fprintf(ios.Out, "Overall: %s (checked %s)\n\n", label(rep.OverallStatus), checked)
	} else {
		fmt.Fprintf(ios.Out, "overall\t%s\t%s\n", rep.OverallStatus, cmdutil.FormatTime(rep.CheckedAtMs, false))
	}
	tp := cmdutil.NewTablePrinter(ios)
	tp.AddHeader("MODULE", "STATUS", "CHECKED", "MESSAGE")
	for _, m := range rep.Modules {
		status := m.Status
		if tty {
			status = label(status)
		}
		tp.AddRow(m.Name, status, cmdutil.FormatTime(m.CheckedAtMs, tty), m.Message)
	}
	return tp.Render()
}
