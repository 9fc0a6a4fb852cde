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

	// FailOn is the least severe overall status that makes the command
	// exit ExitUnhealthy: "critical" (the default), "degraded" or "never".
	FailOn string
	Output string
}

// NewCmdHealth returns `themisctl health`. runF replaces healthRun in tests.
func NewCmdHealth(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, APIClient: f.APIClient}
	var check bool
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Show the health of Themis Maintenance: overall and per module",
		Long: "Show the overall health (the worst module status) and each module's and target's status,\n" +
			"from the API's cached probes (temporal, workers, jobs, history, audit, target:<name>, and\n" +
			"those of extension modules). Any failed job in the last 24 hours makes it at least degraded.\n" +
			"A module is unknown when its probe panicked, did not answer within its timeout or has not run\n" +
			"yet; an unknown module makes the overall status degraded (overall is unknown only when no\n" +
			"probe is registered).\n\n" +
			"Exit status (for checks and monitoring): 3 when the overall status is critical, 0 when it is\n" +
			"healthy, degraded or unknown. With --fail-on degraded, a degraded or unknown status exits 3\n" +
			"too; with --fail-on never, the health never sets the exit status. Failing to reach the API\n" +
			"exits 5 (unavailable) or 4 (credentials refused), whatever --fail-on says.",
		Example: `  themisctl health
  themisctl health --fail-on degraded -o json > /dev/null || page-oncall`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			if check {
				opts.FailOn = failOnDegraded
			}
			if _, ok := severity[opts.FailOn]; !ok {
				return cmdutil.FlagErrorf("invalid --fail-on %q: want critical, degraded or never", opts.FailOn)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return healthRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.FailOn, "fail-on", failOnCritical, "exit 3 when the overall status is this bad or worse: critical, degraded or never")
	cmd.Flags().BoolVar(&check, "check", false, "same as --fail-on degraded")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

// --fail-on values.
const (
	failOnCritical = "critical"
	failOnDegraded = "degraded"
	failOnNever    = "never"
)

// severity ranks --fail-on thresholds and reported statuses.
var severity = map[string]int{failOnNever: 3, failOnCritical: 2, failOnDegraded: 1}

// rank orders an overall status: healthy 0, critical 2, anything else
// (degraded, unknown, a status this client does not know) 1, so that
// --fail-on degraded fails on unknown too and the default (critical)
// does not.
func rank(status string) int {
	switch status {
	case api.HealthOK:
		return 0
	case api.HealthCritical:
		return 2
	}
	return 1
}

func label(status string) string {
	switch status {
	case api.HealthOK:
		return "✓ healthy"
	case api.HealthDegraded:
		return "▲ degraded"
	case api.HealthCritical:
		return "✗ critical"
	case api.HealthUnknown:
		return "? unknown"
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
	failOn := opts.FailOn
	if failOn == "" {
		failOn = failOnCritical
	}
	if rank(rep.OverallStatus) >= severity[failOn] {
		return &cmdutil.ExitError{Code: cmdutil.ExitUnhealthy, Err: fmt.Errorf("overall status is %s", rep.OverallStatus)}
	}
	return nil
}

// writeReport prints the report: JSON; or on a terminal the overall status
// and an aligned table; or tab-separated lines "overall<TAB>status<TAB>
// checked" then "name<TAB>status<TAB>checked<TAB>message" per module.
func writeReport(ios *cmdutil.IOStreams, rep api.HealthReport, output string) error {
	if cmdutil.Structured(output) {
		return cmdutil.PrintStructured(ios.Out, output, rep)
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
