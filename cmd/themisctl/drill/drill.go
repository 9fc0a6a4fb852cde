// Package drill holds the `themisctl drill` commands: start (with
// --wait-step), list, get (steps with timings, RTO/RPO against the
// objectives), approve, reject and abort. Approvals and aborts need a token
// with the maintenance:admin scope.
package drill

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/domain"
)

// NewCmdDrill returns `themisctl drill` with its subcommands.
func NewCmdDrill(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "drill <command>",
		Aliases: []string{"drills"},
		Short:   "Run disaster-recovery drills and answer their approvals",
		Long: "A DR drill restores the target into an isolated scratch instance (never touching production),\n" +
			"verifies it and measures RTO and RPO against the target's objectives. It waits twice for an\n" +
			"operator: approval \"start\" before the simulated failure and approval \"complete\" before the\n" +
			"clean-up. Each wait times out and aborts the drill. Starting, approving, rejecting and aborting\n" +
			"need the maintenance:admin scope.",
		Example: `  themisctl drill start --target orders --wait-step
  themisctl drill approve drill-orders-1735696800000 --step start --comment "CHG-1234"
  themisctl drill get drill-orders-1735696800000
  themisctl drill approve drill-orders-1735696800000 --step complete`,
	}
	cmd.AddCommand(NewCmdStart(f, nil), NewCmdList(f, nil), NewCmdGet(f, nil),
		NewCmdApprove(f, nil), NewCmdReject(f, nil), NewCmdAbort(f, nil), NewCmdTrend(f, nil))
	for _, c := range cmd.Commands() {
		switch c.Name() {
		case "get", "approve", "reject", "abort":
			c.ValidArgsFunction = cmdutil.CompleteDrillArg(f)
		case "start":
			_ = c.RegisterFlagCompletionFunc("target", cmdutil.CompleteTargets(f))
		}
	}
	return cmdutil.Group(cmd)
}

// checkID refuses an id that cannot be a drill (workflow) id.
func checkID(id string) error {
	if !api.ValidJobID(id) {
		return cmdutil.FlagErrorf("malformed drill id %q", id)
	}
	return nil
}

// stateLabel is the state with a mark a terminal reader can scan.
func stateLabel(d domain.Drill) string {
	switch d.State {
	case domain.DrillPassed:
		return "✓ passed"
	case domain.DrillFailed:
		return "✗ failed"
	case domain.DrillRejected:
		return "✗ rejected"
	case domain.DrillAborted:
		return "⊘ aborted"
	case domain.DrillCancelled:
		return "⊘ cancelled"
	case domain.DrillAwaiting:
		return "⏸ awaiting approval " + d.Awaiting
	case domain.DrillRunning:
		return "● running"
	}
	return string(d.State)
}

// objective renders a measurement against its objective.
func objective(ms, objMs int64, measured bool) string {
	if !measured {
		return fmt.Sprintf("- (objective %s)", cmdutil.FormatDuration(objMs))
	}
	mark := "✓ met"
	if objMs > 0 && ms > objMs {
		mark = "✗ missed"
	}
	return fmt.Sprintf("%s (objective %s) %s", fmtMs(ms), cmdutil.FormatDuration(objMs), mark)
}

// fmtMs is FormatDuration that shows 0 as "0s" (a measured RPO may be 0).
func fmtMs(ms int64) string {
	if ms == 0 {
		return "0s"
	}
	return cmdutil.FormatDuration(ms)
}

func passedLabel(d domain.Drill) string {
	switch {
	case !d.Measured:
		return "- (not measured)"
	case d.Passed:
		return "yes"
	}
	return "no"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// nextHint tells the operator what the drill waits for.
func nextHint(d domain.Drill) string {
	if d.Awaiting == "" || d.State.Terminal() {
		return ""
	}
	return fmt.Sprintf("Awaiting approval %q: themisctl drill approve %s --step %s --comment \"…\" (or reject)", d.Awaiting, d.ID, d.Awaiting)
}

// writeDrill prints a drill. On a terminal: a summary, the steps with their
// timings, the approvals and the next action. Otherwise tab-separated lines:
// "key<TAB>value", then "step<TAB>name<TAB>state<TAB>started<TAB>finished
// <TAB>duration_ms<TAB>detail" and "approval<TAB>step<TAB>decision<TAB>
// approver<TAB>at<TAB>comment".
func writeDrill(w io.Writer, d domain.Drill, tty bool) {
	if !tty {
		kv := [][2]string{
			{"id", d.ID}, {"target", d.Target}, {"state", string(d.State)}, {"step", d.Step}, {"awaiting_approval", d.Awaiting},
			{"requested_by", d.RequestedBy}, {"started_at", cmdutil.FormatTime(d.StartedAtMs, false)},
			{"finished_at", cmdutil.FormatTime(d.FinishedAtMs, false)},
			{"rto_ms", fmt.Sprint(d.RTOMs)}, {"rto_objective_ms", fmt.Sprint(d.RTOObjectiveMs)},
			{"rpo_ms", fmt.Sprint(d.RPOMs)}, {"rpo_objective_ms", fmt.Sprint(d.RPOObjectiveMs)},
			{"measured", fmt.Sprint(d.Measured)}, {"passed", fmt.Sprint(d.Passed)}, {"reason", oneLine(d.Reason)},
			{"cleaned_up", fmt.Sprint(d.CleanedUp)}, {"ui_url", d.UIURL},
			{"strategy", d.Strategy}, {"backup_id", d.BackupID}, {"backup_at", cmdutil.FormatTime(d.BackupAtMs, false)},
			{"wal_range", d.WALRange}, {"restored_bytes", fmt.Sprint(d.RestoredBytes)}, {"wal_bytes", fmt.Sprint(d.WALBytes)},
			{"restore_mb_per_s", fmt.Sprintf("%.1f", d.RestoreMBps)}, {"replay_mb_per_s", fmt.Sprintf("%.1f", d.ReplayMBps)},
			{"rpo_basis", d.RPOBasis}, {"clock_source", d.ClockSource},
		}
		for _, p := range kv {
			fmt.Fprintf(w, "%s\t%s\n", p[0], p[1])
		}
		for _, s := range d.Steps {
			fmt.Fprintf(w, "step\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Name, s.State, cmdutil.FormatTime(s.StartedAtMs, false),
				cmdutil.FormatTime(s.FinishedAtMs, false), s.DurationMs, oneLine(s.Detail))
		}
		for _, a := range d.Approvals {
			fmt.Fprintf(w, "approval\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Step, a.Decision, a.Approver, cmdutil.FormatTime(a.AtMs, false), oneLine(a.Comment), a.Channel)
		}
		for _, a := range d.Refused {
			fmt.Fprintf(w, "refused\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Step, a.Decision, a.Approver, cmdutil.FormatTime(a.AtMs, false), oneLine(a.Comment), a.Channel, oneLine(a.Reason))
		}
		return
	}
	fmt.Fprintf(w, "Drill %s\n", d.ID)
	fmt.Fprintf(w, "  Target:       %s\n", d.Target)
	fmt.Fprintf(w, "  State:        %s\n", stateLabel(d))
	fmt.Fprintf(w, "  Step:         %s\n", d.Step)
	fmt.Fprintf(w, "  Requested by: %s\n", d.RequestedBy)
	fmt.Fprintf(w, "  Started:      %s\n", cmdutil.FormatTime(d.StartedAtMs, true))
	if d.FinishedAtMs != 0 {
		fmt.Fprintf(w, "  Finished:     %s (took %s)\n", cmdutil.FormatTime(d.FinishedAtMs, true), cmdutil.FormatDuration(d.FinishedAtMs-d.StartedAtMs))
	}
	fmt.Fprintf(w, "  RTO:          %s\n", objective(d.RTOMs, d.RTOObjectiveMs, d.Measured))
	fmt.Fprintf(w, "  RPO:          %s\n", objective(d.RPOMs, d.RPOObjectiveMs, d.Measured))
	fmt.Fprintf(w, "  Passed:       %s\n", passedLabel(d))
	if d.Reason != "" {
		fmt.Fprintf(w, "  Reason:       %s\n", oneLine(d.Reason))
	}
	if d.Scratch != "" {
		fmt.Fprintf(w, "  Scratch:      %s (cleaned up: %s)\n", d.Scratch, cmdutil.YesNo(d.CleanedUp))
	}
	writeRestore(w, d)
	if d.UIURL != "" {
		fmt.Fprintf(w, "  Temporal UI:  %s\n", d.UIURL)
	}
	if len(d.Steps) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  STEP\tSTATE\tSTARTED\tDURATION\tDETAIL")
		for _, s := range d.Steps {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", s.Name, s.State, cmdutil.FormatTime(s.StartedAtMs, true),
				fmtMs(s.DurationMs), cmdutil.Clip(oneLine(s.Detail), 70))
		}
		_ = tw.Flush()
	}
	if len(d.Approvals) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  APPROVAL\tDECISION\tBY\tVIA\tAT\tCOMMENT")
		for _, a := range d.Approvals {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", a.Step, a.Decision, a.Approver, a.Channel, cmdutil.FormatTime(a.AtMs, true), cmdutil.Clip(oneLine(a.Comment), 60))
		}
		_ = tw.Flush()
	}
	if len(d.Refused) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  REFUSED\tDECISION\tBY\tVIA\tAT\tWHY")
		for _, a := range d.Refused {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", cmdutil.Clip(a.Step, 20), a.Decision, a.Approver, a.Channel, cmdutil.FormatTime(a.AtMs, true), cmdutil.Clip(oneLine(a.Reason), 70))
		}
		_ = tw.Flush()
	}
	if h := nextHint(d); h != "" {
		fmt.Fprintf(w, "\n%s\n", h)
	}
}

// writeRestore prints what the restore used (strategy, backup, WAL) and
// how fast it went, and whose clock measured the RTO.
func writeRestore(w io.Writer, d domain.Drill) {
	if d.Strategy != "" {
		fmt.Fprintf(w, "  Strategy:     %s\n", d.Strategy)
	}
	if d.BackupID != "" {
		line := d.BackupID
		if d.BackupAtMs != 0 {
			line += " taken " + cmdutil.FormatTime(d.BackupAtMs, true)
			if d.FailureAtMs > d.BackupAtMs {
				line += fmt.Sprintf(" (%s before the failure instant)", cmdutil.FormatDuration(d.FailureAtMs-d.BackupAtMs))
			}
		}
		fmt.Fprintf(w, "  Backup:       %s\n", line)
	}
	if d.WALRange != "" {
		fmt.Fprintf(w, "  WAL:          %s\n", d.WALRange)
	}
	if d.RestoredBytes > 0 {
		fmt.Fprintf(w, "  Restored:     %s in %s (%.1f MB/s)\n", mb(d.RestoredBytes), fmtMs(d.CopyMs), d.RestoreMBps)
	}
	if d.WALBytes > 0 {
		fmt.Fprintf(w, "  WAL replayed: %s in %s (%.1f MB/s)\n", mb(d.WALBytes), fmtMs(d.ReplayMs), d.ReplayMBps)
	}
	if d.RPOBasis != "" {
		basis := "the newest canary row restored"
		if d.RPOBasis == domain.RPOBasisBackup {
			basis = "the restored backup's time"
		}
		fmt.Fprintf(w, "  RPO from:     %s\n", basis)
	}
	if d.ClockSource != "" {
		fmt.Fprintf(w, "  Clock:        %s\n", d.ClockSource)
	}
}

// mb formats bytes in MB (10^6 bytes).
func mb(bytes int64) string { return fmt.Sprintf("%.1f MB", float64(bytes)/1e6) }
