package job

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/domain"
)

// progressBar renders pct as a 20-cell bar.
func progressBar(pct float64) string {
	if pct < 0 {
		pct = 0
	}
	if pct > 100 {
		pct = 100
	}
	n := int(pct / 5)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", 20-n) + "] " + cmdutil.FormatPct(pct)
}

// stateLabel is the state with a mark a terminal reader can scan.
func stateLabel(s domain.JobState) string {
	switch s {
	case domain.StateSucceeded:
		return "✓ succeeded"
	case domain.StateFailed:
		return "✗ failed"
	case domain.StateCancelled:
		return "⊘ cancelled"
	case domain.StateSkipped:
		return "- skipped"
	case domain.StateRunning:
		return "● running"
	case domain.StatePending:
		return "○ pending"
	}
	return string(s)
}

// writeJob prints a job with its tasks and returns the number of lines
// written (for redrawing in place). tty selects the human layout; without
// it every line is tab-separated: "key<TAB>value", then
// "task<TAB>type<TAB>state<TAB>progress<TAB>attempt<TAB>duration<TAB>result".
func writeJob(w io.Writer, j domain.Job, tty bool) int {
	lines := 0
	if !tty {
		kv := [][2]string{
			{"id", j.ID}, {"schedule_id", j.ScheduleID}, {"schedule_name", j.ScheduleName}, {"target", j.Target},
			{"state", string(j.State)}, {"progress_pct", fmt.Sprint(j.ProgressPct)}, {"forced", fmt.Sprint(j.Forced)}, {"dry_run", fmt.Sprint(j.DryRun)},
			{"triggered_by", j.TriggeredBy}, {"started_at", cmdutil.FormatTime(j.StartedAtMs, false)},
			{"finished_at", cmdutil.FormatTime(j.FinishedAtMs, false)}, {"duration_ms", fmt.Sprint(j.DurationMs)},
			{"error_message", oneLine(j.ErrorMessage)}, {"result_summary", oneLine(j.ResultSummary)}, {"ui_url", j.UIURL},
		}
		for _, p := range kv {
			fmt.Fprintf(w, "%s\t%s\n", p[0], p[1])
			lines++
		}
		for _, t := range j.Tasks {
			fmt.Fprintf(w, "task\t%s\t%s\t%s\t%d\t%d\t%s\n", t.TaskType, t.State, cmdutil.FormatPct(t.ProgressPct),
				t.Attempt, taskDuration(t), oneLine(firstNonEmpty(t.ErrorMessage, t.ResultSummary)))
			lines++
		}
		return lines + writePlans(w, j, false)
	}
	println := func(format string, args ...any) {
		fmt.Fprintf(w, format+"\n", args...)
		lines++
	}
	println("Job %s", j.ID)
	println("  Schedule:     %s (%s)", j.ScheduleName, j.ScheduleID)
	println("  Target:       %s", j.Target)
	println("  State:        %s  %s", stateLabel(j.State), progressBar(j.ProgressPct))
	if left, ok := j.Remaining(time.Now()); ok {
		println("  ETA:          about %s from now (from past runs of its tasks)", cmdutil.FormatDuration(left.Milliseconds()))
	}
	trig := j.TriggeredBy
	if j.Forced {
		trig += " (forced)"
	}
	if j.DryRun {
		trig += " (dry run: plans only, nothing executed)"
	}
	println("  Triggered by: %s", trig)
	println("  Started:      %s", cmdutil.FormatTime(j.StartedAtMs, true))
	if j.FinishedAtMs != 0 {
		println("  Finished:     %s (took %s)", cmdutil.FormatTime(j.FinishedAtMs, true), cmdutil.FormatDuration(j.DurationMs))
	}
	if j.ResultSummary != "" {
		println("  Result:       %s", oneLine(j.ResultSummary))
	}
	if j.ErrorMessage != "" {
		println("  Error:        %s", oneLine(j.ErrorMessage))
	}
	if j.UIURL != "" {
		println("  Temporal UI:  %s", j.UIURL)
	}
	if len(j.Tasks) == 0 {
		return lines
	}
	println("")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  TASK\tSTATE\tPROGRESS\tATTEMPT\tDURATION\tRESULT")
	lines++
	for _, t := range j.Tasks {
		attempt := "-"
		if t.Attempt > 0 {
			attempt = fmt.Sprint(t.Attempt)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", t.TaskType, stateLabel(t.State), cmdutil.FormatPct(t.ProgressPct),
			attempt, cmdutil.FormatDuration(taskDuration(t)), cmdutil.Clip(oneLine(firstNonEmpty(t.ErrorMessage, t.ResultSummary)), 60))
		lines++
	}
	_ = tw.Flush()
	return lines + writePlans(w, j, true)
}

func taskDuration(t domain.TaskRun) int64 {
	if t.StartedAtMs == 0 || t.FinishedAtMs == 0 {
		return 0
	}
	return t.FinishedAtMs - t.StartedAtMs
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// progressLine is the one-line summary that non-terminal watchers print
// whenever it changes.
func progressLine(j domain.Job) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\t%s\t%s", j.ID, j.State, cmdutil.FormatPct(j.ProgressPct))
	for _, t := range j.Tasks {
		if t.State == domain.StateRunning {
			fmt.Fprintf(&b, "\t%s %s", t.TaskType, cmdutil.FormatPct(t.ProgressPct))
			break
		}
	}
	if left, ok := j.Remaining(time.Now()); ok {
		// Rounded to the minute, so the line changes (and is printed again)
		// only when the estimate does.
		fmt.Fprintf(&b, "\teta %s", cmdutil.FormatDuration(left.Round(time.Minute).Milliseconds()))
	}
	return b.String()
}
