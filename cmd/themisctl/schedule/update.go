package schedule

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/domain"
)

// UpdateOptions are the inputs of `schedule update`.
type UpdateOptions struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)

	Ref string // id or exact name
	// Patch holds the fields to change, by their JSON names, except the
	// task options, which are in Options.
	Patch map[string]any
	// Options are task option changes: task → option → value; a nil value
	// removes the option (back to its default). They are merged into the
	// schedule's current task options.
	Options map[domain.TaskType]map[string]any
	Output  string
}

// Writable schedule fields (the API's ScheduleWrite) by JSON type.
var (
	stringFields = []string{"name", "description", "target", "frequency", "cron_expression", "timezone"}
	boolFields   = []string{"enabled", "enforce_window", "halt_on_task_failure"}
	intFields    = []string{"window_start_hour", "window_end_hour", "time_limit_minutes"}
)

func writableFields() []string {
	f := slices.Concat(stringFields, boolFields, intFields, []string{"tasks", "task_options"})
	slices.Sort(f)
	return f
}

// NewCmdUpdate returns `schedule update <id|name>`. runF replaces updateRun
// in tests.
func NewCmdUpdate(f *cmdutil.Factory, runF func(context.Context, *UpdateOptions) error) *cobra.Command {
	opts := &UpdateOptions{IO: f.IOStreams, APIClient: f.APIClient}
	var (
		spec          specValues
		sets, options []string
		enabled       bool
	)
	cmd := &cobra.Command{
		Use:   "update <id|name>",
		Short: "Change fields of a schedule",
		Long: "Change some fields of a schedule; the others keep their values (PATCH).\n\n" +
			"Fields are set by flag, or by JSON name with --set key=value (repeatable): " + strings.Join(writableFields(), ", ") + ".\n" +
			"Booleans and hours are read as JSON, tasks as a comma-separated list, task_options as a JSON\n" +
			"object (it replaces all options); task_options.TASK.OPTION=VALUE sets one option, like --option.\n\n" +
			"--option TASK.OPTION=VALUE sets one task option, keeping the schedule's other options; the value\n" +
			"is read as JSON when it parses (30, 0.2, true), as a string otherwise; an empty value removes\n" +
			"the option (back to its default). `themisctl task-types -o yaml` lists the options.\n\n" +
			"Changing the frequency or window start derives the cron again unless the frequency is custom;\n" +
			"--cron implies --frequency custom.",
		Example: `  themisctl schedule update daily-maintenance --window 1-5 --timezone Europe/Berlin
  themisctl schedule update "Weekly Maintenance" --set halt_on_task_failure=true --set window_end_hour=7
  themisctl schedule update weekly-maintenance --option mvcc_cleanup.dead_tuple_threshold=5000
  themisctl schedule update daily-maintenance --tasks metrics_collection,quota_check --cron "15 3 * * *"`,
		Args: cmdutil.ExactArgs(1, "<id|name>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			opts.Ref = args[0]
			fl := cmd.Flags()
			patch, err := patchFromFlags(fl, spec, enabled)
			if err != nil {
				return err
			}
			opts.Options = map[domain.TaskType]map[string]any{}
			for _, kv := range sets {
				if err := applySet(patch, opts.Options, kv); err != nil {
					return err
				}
			}
			for _, kv := range options {
				if err := applyOption(opts.Options, kv, "--option"); err != nil {
					return err
				}
			}
			if _, ok := patch["task_options"]; ok && len(opts.Options) > 0 {
				return cmdutil.FlagErrorf("--set task_options=... replaces every option: do not combine it with single options")
			}
			if len(patch) == 0 && len(opts.Options) == 0 {
				return cmdutil.FlagErrorf("nothing to change: give a field flag, --set key=value or --option TASK.OPTION=VALUE")
			}
			opts.Patch = patch
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return updateRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	spec.register(fl, true)
	fl.BoolVar(&enabled, "enabled", true, "run the schedule (--enabled=false pauses it)")
	fl.StringArrayVar(&sets, "set", nil, "set a field by its JSON name: key=value (repeatable)")
	fl.StringArrayVar(&options, "option", nil, "set a task option: TASK.OPTION=VALUE; empty VALUE removes it (repeatable)")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

func patchFromFlags(fl *pflag.FlagSet, v specValues, enabled bool) (map[string]any, error) {
	patch := map[string]any{}
	for flag, field := range map[string]string{"name": "name", "description": "description", "target": "target",
		"frequency": "frequency", "cron": "cron_expression", "timezone": "timezone"} {
		if fl.Changed(flag) {
			patch[field] = map[string]string{"name": v.name, "description": v.description, "target": v.target,
				"frequency": v.frequency, "cron": v.cron, "timezone": v.timezone}[flag]
		}
	}
	if fl.Changed("cron") && !fl.Changed("frequency") {
		patch["frequency"] = string(domain.FrequencyCustom)
	}
	if fl.Changed("tasks") {
		list, err := taskList(v.tasks)
		if err != nil {
			return nil, err
		}
		patch["tasks"] = list
	}
	if fl.Changed("depends-on") {
		deps, err := v.dependencies()
		if err != nil {
			return nil, err
		}
		patch["task_dependencies"] = deps
	}
	if fl.Changed("window") {
		start, end, err := parseWindow(v.window)
		if err != nil {
			return nil, err
		}
		patch["window_start_hour"], patch["window_end_hour"] = start, end
	}
	if fl.Changed("time-limit") {
		n, err := v.timeLimitMinutes()
		if err != nil {
			return nil, err
		}
		patch["time_limit_minutes"] = n
	}
	for flag, field := range map[string]string{"halt": "halt_on_task_failure", "enabled": "enabled", "enforce-window": "enforce_window"} {
		if fl.Changed(flag) {
			patch[field] = map[string]bool{"halt": v.halt, "enabled": enabled, "enforce-window": v.enforce}[flag]
		}
	}
	return patch, nil
}

func taskList(items []string) ([]string, error) {
	var out []string
	for _, t := range items {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, cmdutil.FlagErrorf("tasks: give one or more of %s", tasksList(domain.AllTaskTypes()))
	}
	return out, nil
}

// applySet applies one --set key=value to patch (or, for
// task_options.TASK.OPTION, to options).
func applySet(patch map[string]any, options map[domain.TaskType]map[string]any, kv string) error {
	key, value, ok := strings.Cut(kv, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return cmdutil.FlagErrorf("invalid --set %q: want key=value", kv)
	}
	if rest, ok := strings.CutPrefix(key, "task_options."); ok {
		return applyOption(options, rest+"="+value, "--set task_options.")
	}
	if _, dup := patch[key]; dup {
		return cmdutil.FlagErrorf("%s is given twice (by a flag or --set)", key)
	}
	switch {
	case slices.Contains(stringFields, key):
		patch[key] = value
	case slices.Contains(boolFields, key):
		b, err := strconv.ParseBool(strings.TrimSpace(value))
		if err != nil {
			return cmdutil.FlagErrorf("invalid --set %s=%q: want true or false", key, value)
		}
		patch[key] = b
	case slices.Contains(intFields, key):
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil || n < 0 || n > 23 {
			return cmdutil.FlagErrorf("invalid --set %s=%q: want an hour 0-23", key, value)
		}
		patch[key] = n
	case key == "tasks":
		list, err := taskList(strings.Split(value, ","))
		if err != nil {
			return err
		}
		patch[key] = list
	case key == "task_options":
		var m map[string]map[string]any
		if err := json.Unmarshal([]byte(value), &m); err != nil {
			return cmdutil.FlagErrorf(`invalid --set task_options: want a JSON object {"task": {"option": value}}: %v`, err)
		}
		patch[key] = m
	default:
		msg := fmt.Sprintf("unknown schedule field %q in --set", key)
		if s := closest(key, writableFields()); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		} else {
			msg += "; fields: " + strings.Join(writableFields(), ", ")
		}
		return cmdutil.FlagErrorf("%s", msg)
	}
	return nil
}

// applyOption applies TASK.OPTION=VALUE to options.
func applyOption(options map[domain.TaskType]map[string]any, kv, flag string) error {
	key, value, ok := strings.Cut(kv, "=")
	task, opt, ok2 := strings.Cut(strings.TrimSpace(key), ".")
	if !ok || !ok2 || task == "" || opt == "" {
		return cmdutil.FlagErrorf("invalid %s%q: want TASK.OPTION=VALUE, e.g. mvcc_cleanup.dead_tuple_threshold=5000", flag, kv)
	}
	// A task type this binary does not know may be one the server's
	// extensions registered (the server validates it); one a typo away
	// from a known type is refused here with the suggestion.
	if !slices.Contains(domain.AllTaskTypes(), domain.TaskType(task)) {
		names := make([]string, 0)
		for _, t := range domain.AllTaskTypes() {
			names = append(names, string(t))
		}
		if s := closest(task, names); s != "" {
			return cmdutil.FlagErrorf("unknown task type %q in %s; did you mean %q?", task, flag, s)
		}
	}
	m := options[domain.TaskType(task)]
	if m == nil {
		m = map[string]any{}
		options[domain.TaskType(task)] = m
	}
	if _, dup := m[opt]; dup {
		return cmdutil.FlagErrorf("option %s.%s is given twice", task, opt)
	}
	var v any
	switch value = strings.TrimSpace(value); {
	case value == "":
		v = nil // remove
	case json.Unmarshal([]byte(value), &v) == nil:
	default:
		v = value
	}
	m[opt] = v
	return nil
}

// closest returns the name within edit distance 2 of s, or "".
func closest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := cmdutil.Distance(strings.ToLower(s), n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func updateRun(ctx context.Context, opts *UpdateOptions) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	s, err := cmdutil.ResolveSchedule(ctx, c, opts.Ref)
	if err != nil {
		return err
	}
	patch := maps.Clone(opts.Patch)
	if patch == nil {
		patch = map[string]any{}
	}
	if len(opts.Options) > 0 {
		merged := map[domain.TaskType]map[string]any{}
		for t, o := range s.TaskOptions {
			merged[t] = maps.Clone(map[string]any(o))
		}
		for t, changes := range opts.Options {
			m := merged[t]
			if m == nil {
				m = map[string]any{}
			}
			for k, v := range changes {
				if v == nil {
					delete(m, k)
				} else {
					m[k] = v
				}
			}
			if len(m) == 0 {
				delete(merged, t)
			} else {
				merged[t] = m
			}
		}
		patch["task_options"] = merged
	}
	s, err = c.PatchSchedule(ctx, s.ID, patch)
	if err != nil {
		return err
	}
	switch {
	case cmdutil.Structured(opts.Output):
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, s)
	case opts.IO.IsTTY:
		fmt.Fprintf(opts.IO.Out, "✓ Updated schedule %q (%s)\n\n", s.Name, s.ID)
		writeSchedule(opts.IO.Out, s, true)
	default:
		fmt.Fprintln(opts.IO.Out, s.ID)
	}
	return nil
}
