package domain

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/robfig/cron/v3"
)

// Frequency is how often a schedule runs; all but custom derive the cron
// expression from the window start hour.
type Frequency string

// Frequencies.
const (
	FrequencyDaily     Frequency = "daily"
	FrequencyWeekly    Frequency = "weekly"
	FrequencyMonthly   Frequency = "monthly"
	FrequencyQuarterly Frequency = "quarterly"
	FrequencyCustom    Frequency = "custom"
)

// Limits of a schedule entry (SPEC §2).
const (
	MaxNameLen        = 200
	MaxDescriptionLen = 2000
	MaxTasks          = 50
)

// ScheduleSpec is the writable part of a schedule entry: what an operator
// sends, what the Temporal Schedule's action carries, and what PUT replaces.
type ScheduleSpec struct {
	Name              string                   `json:"name"`
	Description       string                   `json:"description"`
	Target            string                   `json:"target"`
	Frequency         Frequency                `json:"frequency"`
	CronExpression    string                   `json:"cron_expression"`
	Timezone          string                   `json:"timezone"`
	Tasks             []TaskType               `json:"tasks"`
	TaskOptions       map[TaskType]TaskOptions `json:"task_options"`
	Enabled           bool                     `json:"enabled"`
	EnforceWindow     bool                     `json:"enforce_window"`
	WindowStartHour   int                      `json:"window_start_hour"`
	WindowEndHour     int                      `json:"window_end_hour"`
	HaltOnTaskFailure bool                     `json:"halt_on_task_failure"`
	// TaskDependencies, when given, make the tasks a dependency graph:
	// a task starts once its prerequisites have succeeded, tasks with no
	// path between them run in parallel. Empty: the tasks run in order.
	TaskDependencies []TaskDependency `json:"task_dependencies"`
	// TimeLimitMinutes, when above 0, is how long after its start a job
	// keeps starting units of work (a table, an index), as Ola
	// Hallengren's @TimeLimit: what is left is done first by the next run.
	// 0: no limit but the window.
	TimeLimitMinutes int `json:"time_limit_minutes"`
}

// MaxTimeLimitMinutes bounds time_limit_minutes (a week).
const MaxTimeLimitMinutes = 7 * 24 * 60

// TaskOptions are the parameters of one task type, keyed by option name.
type TaskOptions map[string]any

// Schedule is the full schedule entry of SPEC §2: the spec plus the
// server-owned, read-only fields.
type Schedule struct {
	ID string `json:"id"`
	ScheduleSpec
	CreatedAtMs  int64    `json:"created_at_ms"`
	UpdatedAtMs  int64    `json:"updated_at_ms"`
	CreatedBy    string   `json:"created_by"`
	UpdatedBy    string   `json:"updated_by"`
	LastRunMs    int64    `json:"last_run_ms"`
	LastRunState JobState `json:"last_run_state"`
	LastJobID    string   `json:"last_job_id"`
	NextRunMs    int64    `json:"next_run_ms"`
}

// ReadOnlyScheduleFields are the JSON fields of Schedule an operator cannot
// set; decoders ignore them so a GET body can be sent back with PUT.
var ReadOnlyScheduleFields = []string{
	"id", "created_at_ms", "updated_at_ms", "created_by", "updated_by",
	"last_run_ms", "last_run_state", "last_job_id", "next_run_ms",
}

// NewScheduleSpec returns the defaults an operator-created schedule starts
// from before the request body is applied (SPEC §2): daily, UTC, enabled,
// window 2–6 enforced, no halting.
func NewScheduleSpec(defaultTarget string) ScheduleSpec {
	return ScheduleSpec{
		Target:          defaultTarget,
		Frequency:       FrequencyDaily,
		Timezone:        "UTC",
		TaskOptions:     map[TaskType]TaskOptions{},
		Enabled:         true,
		EnforceWindow:   true,
		WindowStartHour: 2,
		WindowEndHour:   6,

		TaskDependencies: []TaskDependency{},
	}
}

// DeriveCron returns the 5-field cron expression of a non-custom frequency
// starting at hour; ok is false for custom or unknown frequencies.
func DeriveCron(f Frequency, hour int) (string, bool) {
	switch f {
	case FrequencyDaily:
		return fmt.Sprintf("0 %d * * *", hour), true
	case FrequencyWeekly:
		return fmt.Sprintf("0 %d * * 0", hour), true
	case FrequencyMonthly:
		return fmt.Sprintf("0 %d 1 * *", hour), true
	case FrequencyQuarterly:
		return fmt.Sprintf("0 %d 1 1,4,7,10 *", hour), true
	}
	return "", false
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// ParseCron validates a standard 5-field cron expression (no descriptors such
// as @daily, no seconds field).
func ParseCron(expr string) error {
	_, err := parseCron(expr)
	return err
}

func parseCron(expr string) (cron.Schedule, error) {
	fields := strings.Fields(expr)
	if len(fields) != 5 {
		return nil, fmt.Errorf("want 5 fields (minute hour day-of-month month day-of-week), got %d", len(fields))
	}
	return cronParser.Parse(expr)
}

// NextRun is the first time after after that the spec's cron expression
// fires in the spec's time zone, whether or not the schedule is enabled.
// Temporal's Schedule computes the real service's next run; this is the
// same computation for those that have no Schedule to ask (the API's test
// double, the contract suite checking both). The spec must carry its cron
// expression: Normalize derives it for the non-custom frequencies.
func (s ScheduleSpec) NextRun(after time.Time) (time.Time, error) {
	sched, err := parseCron(s.CronExpression)
	if err != nil {
		return time.Time{}, fmt.Errorf("next run: cron expression %q: %w", s.CronExpression, err)
	}
	loc, err := LoadTimezone(s.Timezone)
	if err != nil {
		return time.Time{}, fmt.Errorf("next run: %w", err)
	}
	next := sched.Next(after.In(loc))
	if next.IsZero() {
		return time.Time{}, fmt.Errorf("next run: cron expression %q never fires", s.CronExpression)
	}
	return next, nil
}

// SupportedBy returns whether the driver named driverName can run a task,
// from caps (each task type with the names of the drivers that run it);
// nil, meaning every task, when caps or the driver is not known.
func SupportedBy(caps map[TaskType][]string, driverName string) func(TaskType) bool {
	if caps == nil || driverName == "" {
		return nil
	}
	return func(t TaskType) bool { return slices.Contains(caps[t], driverName) }
}

// CheckSupported refuses a task of the spec that its target's driver
// (driverName) cannot run according to caps: a *ValidationError naming the
// task's field, the task, the driver and the target. Unknown capabilities
// or driver accept every task.
func (s ScheduleSpec) CheckSupported(caps map[TaskType][]string, driverName string) error {
	ok := SupportedBy(caps, driverName)
	if ok == nil {
		return nil
	}
	for i, t := range s.Tasks {
		if !ok(t) {
			return invalid(fmt.Sprintf("tasks[%d]", i), "task %s is not supported by driver %s (target %s)", t, driverName, s.Target)
		}
	}
	return nil
}

// LoadTimezone resolves an IANA zone name. "Local" and the empty name are
// refused: a schedule's zone must not depend on the machine it runs on.
func LoadTimezone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("%q is not an IANA zone name", name)
	}
	if strings.ContainsAny(name, "\\") || strings.Contains(name, "..") || strings.HasPrefix(name, "/") {
		return nil, fmt.Errorf("%q is not an IANA zone name", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	return loc, nil
}

var controlChars = regexp.MustCompile(`[\x00-\x1f\x7f]`)

// Normalize trims the name, fills the derived cron expression and an empty
// options map, and then validates the spec. knownTarget reports whether a
// target name is configured. It returns a *ValidationError naming the first
// offending field.
func (s *ScheduleSpec) Normalize(knownTarget func(string) bool) error {
	s.Name = strings.TrimSpace(s.Name)
	if s.TaskOptions == nil {
		s.TaskOptions = map[TaskType]TaskOptions{}
	}
	if s.Timezone == "" {
		s.Timezone = "UTC"
	}
	if s.Frequency == "" {
		s.Frequency = FrequencyDaily
	}
	if err := s.validateText(); err != nil {
		return err
	}
	if s.Target == "" {
		return invalid("target", "is required (no default target configured)")
	}
	if knownTarget != nil && !knownTarget(s.Target) {
		return invalid("target", "unknown target %q", s.Target)
	}
	if err := s.validateTiming(); err != nil {
		return err
	}
	return s.validateTasks()
}

func (s *ScheduleSpec) validateText() error {
	switch n := utf8.RuneCountInString(s.Name); {
	case !utf8.ValidString(s.Name):
		return invalid("name", "must be valid UTF-8")
	case n == 0:
		return invalid("name", "is required")
	case n > MaxNameLen:
		return invalid("name", "must be at most %d characters, got %d", MaxNameLen, n)
	case controlChars.MatchString(s.Name):
		return invalid("name", "must not contain control characters")
	}
	if !utf8.ValidString(s.Description) {
		return invalid("description", "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(s.Description); n > MaxDescriptionLen {
		return invalid("description", "must be at most %d characters, got %d", MaxDescriptionLen, n)
	}
	return nil
}

func (s *ScheduleSpec) validateTiming() error {
	if s.TimeLimitMinutes < 0 || s.TimeLimitMinutes > MaxTimeLimitMinutes {
		return invalid("time_limit_minutes", "must be 0–%d (0: no limit), got %d", MaxTimeLimitMinutes, s.TimeLimitMinutes)
	}
	for field, h := range map[string]int{"window_start_hour": s.WindowStartHour, "window_end_hour": s.WindowEndHour} {
		if h < 0 || h > 23 {
			return invalid(field, "must be 0–23, got %d", h)
		}
	}
	if _, err := LoadTimezone(s.Timezone); err != nil {
		return invalid("timezone", "%v", err)
	}
	switch s.Frequency {
	case FrequencyCustom:
		if strings.TrimSpace(s.CronExpression) == "" {
			return invalid("cron_expression", "is required when frequency is custom")
		}
		if err := ParseCron(s.CronExpression); err != nil {
			return invalid("cron_expression", "invalid cron expression %q: %v", s.CronExpression, err)
		}
		s.CronExpression = strings.Join(strings.Fields(s.CronExpression), " ")
	case FrequencyDaily, FrequencyWeekly, FrequencyMonthly, FrequencyQuarterly:
		derived, _ := DeriveCron(s.Frequency, s.WindowStartHour)
		given := strings.Join(strings.Fields(s.CronExpression), " ")
		if given != "" && given != derived {
			return invalid("cron_expression", "is derived from frequency %q and window_start_hour (%q); set frequency to custom to choose it", s.Frequency, derived)
		}
		s.CronExpression = derived
	default:
		return invalid("frequency", "must be one of daily, weekly, monthly, quarterly, custom; got %q", s.Frequency)
	}
	return nil
}

func (s *ScheduleSpec) validateTasks() error {
	if len(s.Tasks) == 0 {
		return invalid("tasks", "at least one task type is required")
	}
	if len(s.Tasks) > MaxTasks {
		return invalid("tasks", "at most %d tasks, got %d", MaxTasks, len(s.Tasks))
	}
	for i, t := range s.Tasks {
		if !t.Valid() {
			return invalid(fmt.Sprintf("tasks[%d]", i), "unknown task type %q", string(t))
		}
	}
	for t, opts := range s.TaskOptions {
		ti, ok := Info(t)
		if !ok {
			return invalid("task_options", "unknown task type %q", string(t))
		}
		for k, v := range opts {
			spec, ok := ti.Options[k]
			if !ok {
				return invalid(fmt.Sprintf("task_options.%s", t), "unknown option %q (accepted: %s)", k, strings.Join(OptionKeys(t), ", "))
			}
			nv, err := spec.check(v)
			if err != nil {
				return invalid(fmt.Sprintf("task_options.%s.%s", t, k), "%v", err)
			}
			opts[k] = nv
		}
	}
	return s.validateDependencies()
}

// check validates v against the spec and returns it in canonical form
// (integers as int64, numbers as float64).
func (o OptionSpec) check(v any) (any, error) {
	switch o.Kind {
	case OptionBool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("must be a boolean")
		}
		return b, nil
	case OptionText:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("must be a string")
		}
		if len(s) > MaxTextOption || !utf8.ValidString(s) {
			return nil, fmt.Errorf("must be valid UTF-8 text of at most %d bytes", MaxTextOption)
		}
		return s, nil
	case OptionEnum:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("must be a string, one of %s", strings.Join(o.Values, ", "))
		}
		for _, allowed := range o.Values {
			if s == allowed {
				return s, nil
			}
		}
		return nil, fmt.Errorf("must be one of %s, got %q", strings.Join(o.Values, ", "), s)
	case OptionInt, OptionFloat:
		f, ok := toFloat(v)
		if !ok {
			return nil, fmt.Errorf("must be a number")
		}
		if o.Kind == OptionInt && f != float64(int64(f)) {
			return nil, fmt.Errorf("must be an integer")
		}
		if f < o.Min || f > o.Max {
			return nil, fmt.Errorf("must be between %g and %g, got %g", o.Min, o.Max, f)
		}
		if o.Kind == OptionInt {
			return int64(f), nil
		}
		return f, nil
	}
	return nil, fmt.Errorf("unsupported option kind %q", o.Kind)
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	}
	return 0, false
}

// Slug turns a schedule name into a URL-safe id: lower-case ASCII letters and
// digits separated by single hyphens, at most 48 characters. Names without
// any such character yield "schedule".
func Slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if b.Len() >= 48 {
			break
		}
		switch {
		case r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.Trim(b.String(), "-")
	if out == "" {
		return "schedule"
	}
	return out
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,127}$`)

// ValidID reports whether id has the shape of a schedule id (what Slug and
// the server produce); anything else can be rejected before a lookup.
func ValidID(id string) bool { return idPattern.MatchString(id) }
