package schedule

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/domain"
)

// maxSpecFileBytes bounds --file (the API refuses bodies over 1 MiB anyway).
const maxSpecFileBytes = 1 << 20

// CreateOptions are the inputs of `schedule create`: either Input (built
// from the flags) or File (a JSON schedule entry; "-" is stdin).
type CreateOptions struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)

	Input  client.ScheduleInput
	File   string
	Output string
}

// specFlags are the flags that describe the schedule (exclusive with --file).
var specFlags = []string{"name", "description", "target", "tasks", "frequency", "cron", "timezone", "window", "halt", "disabled", "enforce-window", "depends-on", "time-limit"}

// NewCmdCreate returns `schedule create`. runF replaces createRun in tests.
func NewCmdCreate(f *cmdutil.Factory, runF func(context.Context, *CreateOptions) error) *cobra.Command {
	opts := &CreateOptions{IO: f.IOStreams, APIClient: f.APIClient}
	var (
		spec     specValues
		disabled bool
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a schedule",
		Long: "Create a schedule from flags or from a JSON schedule entry (--file).\n\n" +
			"Unset fields take the server's defaults: frequency daily, timezone UTC, window 2-6 (enforced),\n" +
			"enabled, the configured default target. The cron expression is derived from the frequency and\n" +
			"the window start unless --cron is given (which implies --frequency custom).",
		Example: `  themisctl schedule create --name "Nightly vacuum" --tasks metrics_collection,mvcc_cleanup --window 1-5
  themisctl schedule create --name "Weekday check" --tasks consistency_check --cron "30 1 * * 1-5" --timezone Europe/Berlin
  themisctl schedule get daily-maintenance -o json | themisctl schedule create --file -`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			fl := cmd.Flags()
			if opts.File != "" {
				for _, n := range specFlags {
					if fl.Changed(n) {
						return cmdutil.FlagErrorf("--file cannot be combined with --%s", n)
					}
				}
			} else {
				in, err := buildInput(fl.Changed, spec, disabled)
				if err != nil {
					return err
				}
				opts.Input = in
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return createRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	spec.register(fl, false)
	fl.BoolVar(&disabled, "disabled", false, "create the schedule paused")
	fl.StringVarP(&opts.File, "file", "f", "", `read the schedule entry from a JSON file ("-" for stdin)`)
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

func buildInput(changed func(string) bool, v specValues, disabled bool) (client.ScheduleInput, error) {
	in := client.ScheduleInput{Name: v.name, Target: v.target, Timezone: v.timezone, CronExpression: v.cron, Frequency: domain.Frequency(v.frequency)}
	if strings.TrimSpace(v.name) == "" {
		return in, cmdutil.FlagErrorf("--name is required (or give --file)")
	}
	for _, t := range v.tasks {
		if t = strings.TrimSpace(t); t != "" {
			in.Tasks = append(in.Tasks, domain.TaskType(t))
		}
	}
	if len(in.Tasks) == 0 {
		return in, cmdutil.FlagErrorf("--tasks is required: one or more of %s", tasksList(domain.AllTaskTypes()))
	}
	if v.cron != "" && v.frequency == "" {
		in.Frequency = domain.FrequencyCustom
	}
	if changed("description") {
		in.Description = &v.description
	}
	if v.window != "" {
		start, end, err := parseWindow(v.window)
		if err != nil {
			return in, err
		}
		in.WindowStartHour, in.WindowEndHour = &start, &end
	}
	if changed("halt") {
		in.HaltOnTaskFailure = &v.halt
	}
	if changed("depends-on") {
		deps, err := v.dependencies()
		if err != nil {
			return in, err
		}
		in.TaskDependencies = deps
	}
	if changed("time-limit") {
		n, err := v.timeLimitMinutes()
		if err != nil {
			return in, err
		}
		in.TimeLimitMinutes = &n
	}
	if changed("disabled") {
		enabled := !disabled
		in.Enabled = &enabled
	}
	if changed("enforce-window") {
		in.EnforceWindow = &v.enforce
	}
	return in, nil
}

// parseWindow parses "START-END" (hours 0–23; an en dash works too).
func parseWindow(s string) (int, int, error) {
	a, b, ok := strings.Cut(strings.ReplaceAll(s, "–", "-"), "-")
	start, err1 := strconv.Atoi(strings.TrimSpace(a))
	end, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || start < 0 || start > 23 || end < 0 || end > 23 {
		return 0, 0, cmdutil.FlagErrorf("invalid --window %q: want START-END with hours 0-23, e.g. 2-6", s)
	}
	return start, end, nil
}

func readSpecFile(opts *CreateOptions) (json.RawMessage, error) {
	var r io.Reader
	if opts.File == "-" {
		r = opts.IO.In
	} else {
		f, err := os.Open(opts.File)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxSpecFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", opts.File, err)
	}
	if len(b) > maxSpecFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", opts.File, maxSpecFileBytes)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%s is not valid JSON", opts.File)
	}
	return b, nil
}

func createRun(ctx context.Context, opts *CreateOptions) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	var s domain.Schedule
	if opts.File != "" {
		body, err := readSpecFile(opts)
		if err != nil {
			return err
		}
		s, err = c.CreateScheduleJSON(ctx, body)
		if err != nil {
			return err
		}
	} else if s, err = c.CreateSchedule(ctx, opts.Input); err != nil {
		return err
	}
	switch {
	case cmdutil.Structured(opts.Output):
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, s)
	case opts.IO.IsTTY:
		fmt.Fprintf(opts.IO.Out, "✓ Created schedule %q (%s)\n", s.Name, s.ID)
		fmt.Fprintf(opts.IO.Out, "  %s %s, window %s, tasks %s\n", s.CronExpression, s.Timezone, window(s), tasksList(s.Tasks))
		if s.Enabled {
			fmt.Fprintf(opts.IO.Out, "  Next run: %s\n", cmdutil.FormatTime(s.NextRunMs, true))
		} else {
			fmt.Fprintf(opts.IO.Out, "  Disabled; enable it with: themisctl schedule enable %s\n", s.ID)
		}
	default:
		fmt.Fprintln(opts.IO.Out, s.ID)
	}
	return nil
}
