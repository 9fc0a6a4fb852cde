package drill

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
)

// TrendOptions are the inputs of `drill trend`.
type TrendOptions struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)

	Target string
	Limit  int
	Output string
}

// NewCmdTrend returns `drill trend TARGET`. runF replaces trendRun in tests.
func NewCmdTrend(f *cmdutil.Factory, runF func(context.Context, *TrendOptions) error) *cobra.Command {
	opts := &TrendOptions{IO: f.IOStreams, APIClient: f.APIClient}
	cmd := &cobra.Command{
		Use:   "trend TARGET",
		Short: "Show a target's RTO and RPO over its finished drills against the objectives",
		Long: "Show the target's newest finished drills, oldest first, with the measured RTO and RPO beside\n" +
			"the objectives, and a summary (median and worst). On a terminal each figure is drawn as a bar\n" +
			"scaled to the larger of the worst figure and the objective; the objective is the '|' mark.",
		Example: `  themisctl drill trend orders
  themisctl drill trend orders --limit 12 -o json`,
		Args: cmdutil.ExactArgs(1, "a target name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			if opts.Limit < 1 || opts.Limit > api.MaxDrillLimit {
				return cmdutil.FlagErrorf("invalid --limit %d: want 1–%d", opts.Limit, api.MaxDrillLimit)
			}
			opts.Target = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return trendRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVarP(&opts.Limit, "limit", "L", api.DefaultDrillLimit, fmt.Sprintf("number of newest drills (1–%d)", api.MaxDrillLimit))
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

func trendRun(ctx context.Context, opts *TrendOptions) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	tr, err := c.DrillTrend(ctx, opts.Target, opts.Limit)
	if err != nil {
		return err
	}
	if cmdutil.Structured(opts.Output) {
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, tr)
	}
	tty := opts.IO.IsTTY
	if len(tr.Points) == 0 {
		if tty {
			fmt.Fprintf(opts.IO.ErrOut, "No finished drill of %s yet. Start one with: themisctl drill start --target %s --wait-step\n", tr.Target, tr.Target)
		}
		return nil
	}
	tp := cmdutil.NewTablePrinter(opts.IO)
	if !tty {
		tp.AddHeader("DRILL", "STARTED", "STATE", "RTO_MS", "RTO_OBJECTIVE_MS", "RTO_MET", "RPO_MS", "RPO_OBJECTIVE_MS", "RPO_MET",
			"STRATEGY", "RESTORE_MB_PER_S", "BACKUP_AGE_MS")
		for _, p := range tr.Points {
			tp.AddRow(p.DrillID, fmt.Sprint(p.StartedAtMs), string(p.State), fmt.Sprint(p.RTOMs), fmt.Sprint(p.RTOObjectiveMs),
				fmt.Sprint(p.RTOMet), fmt.Sprint(p.RPOMs), fmt.Sprint(p.RPOObjectiveMs), fmt.Sprint(p.RPOMet),
				p.Strategy, fmt.Sprintf("%.1f", p.RestoreMBps), fmt.Sprint(p.BackupAgeMs))
		}
		return tp.Render()
	}
	rtoScale := max(tr.RTOMaxMs, tr.RTOObjectiveMs)
	rpoScale := max(tr.RPOMaxMs, tr.RPOObjectiveMs)
	tp.AddHeader("STARTED", "STATE", "RTO", "", "RPO", "", "STRATEGY", "RESTORE")
	for _, p := range tr.Points {
		strategy, rate := orDash(p.Strategy), "-"
		if p.RestoreMBps > 0 {
			rate = fmt.Sprintf("%.1f MB/s", p.RestoreMBps)
		}
		rto, rpo, rtoBar, rpoBar := "-", "-", "", ""
		if p.Measured {
			rto, rpo = metLabel(p.RTOMs, p.RTOMet), metLabel(p.RPOMs, p.RPOMet)
			rtoBar, rpoBar = bar(p.RTOMs, p.RTOObjectiveMs, rtoScale), bar(p.RPOMs, p.RPOObjectiveMs, rpoScale)
		}
		tp.AddRow(cmdutil.FormatTime(p.StartedAtMs, true), string(p.State), rto, rtoBar, rpo, rpoBar, strategy, rate)
	}
	if err := tp.Render(); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "\n%s: %d drill(s), %d measured, %d passed. RTO median %s, worst %s (objective %s); RPO median %s, worst %s (objective %s)\n",
		tr.Target, tr.Drills, tr.Measured, tr.Passed, fmtMs(tr.RTOMedianMs), fmtMs(tr.RTOMaxMs), fmtMs(tr.RTOObjectiveMs),
		fmtMs(tr.RPOMedianMs), fmtMs(tr.RPOMaxMs), fmtMs(tr.RPOObjectiveMs))
	return nil
}

// barWidth is the width of a trend bar in cells.
const barWidth = 24

// bar draws v on a scale of 0..scale in barWidth cells, with the objective
// marked '|' (when it is set and within the scale).
func bar(v, objective, scale int64) string {
	if scale <= 0 {
		return ""
	}
	cells := []rune(strings.Repeat(" ", barWidth))
	filled := int(min(v, scale) * barWidth / scale)
	for i := 0; i < filled; i++ {
		cells[i] = '█'
	}
	if objective > 0 {
		cells[min(int(objective*barWidth/scale), barWidth-1)] = '|'
	}
	return strings.TrimRight(string(cells), " ")
}

func metLabel(ms int64, met bool) string {
	if met {
		return "✓ " + fmtMs(ms)
	}
	return "✗ " + fmtMs(ms)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
