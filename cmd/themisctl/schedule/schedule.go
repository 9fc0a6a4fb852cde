// Package schedule holds the `themisctl schedule` commands: list, get,
// create, update, enable, disable, delete and run (with --wait). A
// schedule can be named by its id or by its exact name ("Daily
// Maintenance").
package schedule

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/domain"
)

// NewCmdSchedule returns `themisctl schedule` with its subcommands.
func NewCmdSchedule(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "schedule <command>",
		Aliases: []string{"schedules"},
		Short:   "Manage maintenance schedules",
		Long: "A schedule is a named, ordered list of maintenance tasks against one target, run by a\n" +
			"Temporal Schedule on a cron within a maintenance window. Refer to a schedule by its id\n" +
			"(daily-maintenance) or its exact name (\"Daily Maintenance\").",
	}
	cmd.AddCommand(
		NewCmdList(f, nil), NewCmdGet(f, nil), NewCmdCreate(f, nil),
		NewCmdUpdate(f, nil), NewCmdEnable(f, nil), NewCmdDisable(f, nil), NewCmdDelete(f, nil), NewCmdRun(f, nil),
	)
	for _, c := range cmd.Commands() {
		switch c.Name() {
		case "get", "update", "enable", "disable", "delete", "run":
			c.ValidArgsFunction = cmdutil.CompleteScheduleArg(f)
		}
		if c.Flags().Lookup("tasks") != nil {
			_ = c.RegisterFlagCompletionFunc("tasks", cmdutil.CompleteTaskTypes(f))
		}
		if c.Flags().Lookup("target") != nil {
			_ = c.RegisterFlagCompletionFunc("target", cmdutil.CompleteTargets(f))
		}
	}
	return cmdutil.Group(cmd)
}

func window(s domain.Schedule) string {
	w := fmt.Sprintf("%02d-%02d", s.WindowStartHour, s.WindowEndHour)
	if s.WindowStartHour == s.WindowEndHour {
		w = "all day"
	}
	if !s.EnforceWindow {
		w += " (not enforced)"
	}
	return w
}

func tasksList(ts []domain.TaskType) string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return strings.Join(out, ",")
}

// writeSchedule prints one schedule: aligned "Key: value" lines on a
// terminal, "key<TAB>value" lines otherwise.
func writeSchedule(w io.Writer, s domain.Schedule, tty bool) {
	last := "-"
	if s.LastJobID != "" {
		last = fmt.Sprintf("%s %s (%s)", cmdutil.FormatTime(s.LastRunMs, tty), s.LastRunState, s.LastJobID)
	}
	opts := "-"
	if len(s.TaskOptions) > 0 {
		var parts []string
		for _, t := range s.Tasks {
			if o, ok := s.TaskOptions[t]; ok {
				parts = append(parts, fmt.Sprintf("%s%v", t, map[string]any(o)))
			}
		}
		if len(parts) == 0 {
			parts = append(parts, fmt.Sprint(s.TaskOptions))
		}
		opts = strings.Join(parts, " ")
	}
	next := cmdutil.FormatTime(s.NextRunMs, tty)
	if tty && !s.Enabled {
		next = "- (disabled)"
	}
	rows := [][2]string{
		{"ID", s.ID}, {"Name", s.Name}, {"Description", s.Description}, {"Target", s.Target},
		{"Enabled", cmdutil.YesNo(s.Enabled)}, {"Frequency", string(s.Frequency)}, {"Cron", s.CronExpression},
		{"Timezone", s.Timezone}, {"Window", window(s)}, {"Tasks", tasksList(s.Tasks)}, {"Task options", opts},
		{"Halt on failure", cmdutil.YesNo(s.HaltOnTaskFailure)}, {"Time limit", timeLimit(s.TimeLimitMinutes)},
		{"Next run", next}, {"Last run", last},
		{"Created", fmt.Sprintf("%s by %s", cmdutil.FormatTime(s.CreatedAtMs, tty), s.CreatedBy)},
		{"Updated", fmt.Sprintf("%s by %s", cmdutil.FormatTime(s.UpdatedAtMs, tty), s.UpdatedBy)},
	}
	for _, r := range rows {
		v := strings.Join(strings.Fields(r[1]), " ")
		if tty {
			if v == "" {
				v = "-"
			}
			fmt.Fprintf(w, "%-16s %s\n", r[0]+":", v)
		} else {
			fmt.Fprintf(w, "%s\t%s\n", strings.ReplaceAll(strings.ToLower(r[0]), " ", "_"), v)
		}
	}
}

// timeLimit shows time_limit_minutes ("none" for 0).
func timeLimit(minutes int) string {
	if minutes == 0 {
		return "none (the window only)"
	}
	return (time.Duration(minutes) * time.Minute).String()
}
