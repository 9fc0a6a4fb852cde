package schedule

import (
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/domain"
)

// specValues are the flags that describe a schedule, shared by `schedule
// create` and `schedule update`. On create an unset flag takes the server's
// default; on update it keeps the schedule's current value.
type specValues struct {
	name, description, target, frequency, cron, timezone, window string
	tasks, dependsOn                                             []string
	halt, enforce                                                bool
	timeLimit                                                    time.Duration
}

// register adds the shared flags to fl; update says which command it is,
// which changes only what the help says an unset flag means.
func (v *specValues) register(fl *pflag.FlagSet, update bool) {
	orDefault := func(create, upd string) string {
		if update {
			return upd
		}
		return create
	}
	fl.StringVar(&v.name, "name", "", orDefault("schedule name (unique)", "new schedule name (unique)"))
	fl.StringVar(&v.description, "description", "", "free-text description")
	fl.StringVar(&v.target, "target", "", orDefault("target database (default: the server's default target)", "target database"))
	fl.StringSliceVar(&v.tasks, "tasks", nil, orDefault("task types to run in order, comma-separated (e.g. metrics_collection,quota_check)",
		"task types to run in order, comma-separated (replaces the list)"))
	fl.StringVar(&v.frequency, "frequency", "", "daily, weekly, monthly, quarterly or custom"+orDefault(" (default daily)", ""))
	fl.StringVar(&v.cron, "cron", "", "5-field cron expression (implies --frequency custom)")
	fl.StringVar(&v.timezone, "timezone", "", "IANA time zone of the cron and window"+orDefault(" (default UTC)", ""))
	fl.StringVar(&v.window, "window", "", "maintenance window START-END in hours, end exclusive ("+orDefault("default 2-6; ", "")+"22-4 wraps midnight)")
	fl.BoolVar(&v.halt, "halt", false, "skip the remaining tasks after a task fails"+orDefault("", " (--halt=false to go on)"))
	fl.StringArrayVar(&v.dependsOn, "depends-on", nil, "TASK=PRE[,PRE...]: TASK starts after its prerequisites succeeded; tasks with no path between\n"+
		"them run in parallel (repeat for each task"+orDefault("", "; replaces the list, \"none\" clears it")+")")
	fl.BoolVar(&v.enforce, "enforce-window", true, "skip runs outside the window (--enforce-window=false to run any time)")
	fl.DurationVar(&v.timeLimit, "time-limit", 0, "stop starting units of work (tables, indexes) this long after a job starts, e.g. 90m;\n"+
		"what is left is done first by the next run (0: no limit but the window)")
}

// timeLimitMinutes converts --time-limit to whole minutes.
func (v *specValues) timeLimitMinutes() (int, error) {
	d := v.timeLimit
	if d < 0 || d%time.Minute != 0 || d > domain.MaxTimeLimitMinutes*time.Minute {
		return 0, cmdutil.FlagErrorf("invalid --time-limit %s: want whole minutes from 0 to %dh (e.g. 90m)", d, domain.MaxTimeLimitMinutes/60)
	}
	return int(d / time.Minute), nil
}

// dependencies parses the --depends-on values into task_dependencies; the
// single value "none" is the empty list.
func (v *specValues) dependencies() ([]domain.TaskDependency, error) {
	out := []domain.TaskDependency{}
	if len(v.dependsOn) == 1 && strings.TrimSpace(v.dependsOn[0]) == "none" {
		return out, nil
	}
	for _, d := range v.dependsOn {
		task, pre, ok := strings.Cut(d, "=")
		task = strings.TrimSpace(task)
		if !ok || task == "" || strings.TrimSpace(pre) == "" {
			return nil, cmdutil.FlagErrorf("invalid --depends-on %q: want TASK=PRE[,PRE...] (e.g. quota_check=metrics_collection)", d)
		}
		dep := domain.TaskDependency{TaskType: domain.TaskType(task), DependsOn: []domain.TaskType{}}
		for _, p := range strings.Split(pre, ",") {
			if p = strings.TrimSpace(p); p != "" {
				dep.DependsOn = append(dep.DependsOn, domain.TaskType(p))
			}
		}
		out = append(out, dep)
	}
	return out, nil
}
