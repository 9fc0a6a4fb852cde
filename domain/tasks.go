package domain

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
)

// TaskType is one maintenance operation; its string value is the wire name
// used in schedule entries, job records, the API and as the name of its
// Temporal activity.
type TaskType string

// TimeoutClass says how long one attempt of a task may run. The maintenance
// workflow turns it into the activity's start-to-close timeout: a task
// heartbeats, so a dead worker is noticed by the heartbeat timeout and the
// class only bounds a live attempt.
type TimeoutClass string

// Timeout classes.
const (
	// TimeoutShort: an attempt may run up to 2 hours (reads, reports,
	// small writes).
	TimeoutShort TimeoutClass = "short"
	// TimeoutLong: an attempt may run up to 12 hours (VACUUM, REINDEX,
	// backups and restores of a whole database).
	TimeoutLong TimeoutClass = "long"
)

// TaskDef is the registration of one task type: everything the rest of the
// system knows about it. The engines that implement it are registered in
// package driver (driver.Implement, or an engine's own task table).
type TaskDef struct {
	Type        TaskType
	Title       string
	Description string
	// Options lists the task_options keys this task type accepts.
	Options map[string]OptionSpec
	// Timeout is the attempt timeout class; empty means TimeoutShort.
	Timeout TimeoutClass
	// Heavy tasks write to the target or its files, take locks that block
	// writers, or copy the whole database: at most a target's
	// max_heavy_tasks of them run on it at once, cluster-wide. Every other
	// task is a light, read-mostly one that may overlap anything.
	Heavy bool
	// AdminOnly task types may be added to a schedule, and a schedule
	// holding one may be run on demand, only by a caller with the admin
	// scope (disaster_recovery_drill: it starts a drill, as POST /drills).
	AdminOnly bool
}

// TaskInfo is the name the API layer and older code use for a TaskDef.
type TaskInfo = TaskDef

// OptionKind is the JSON type a task option takes.
type OptionKind string

// Option kinds.
const (
	OptionInt   OptionKind = "integer"
	OptionFloat OptionKind = "number"
	OptionBool  OptionKind = "boolean"
	OptionEnum  OptionKind = "enum"
	// OptionText is free text of at most MaxTextOption bytes (a custom
	// throttle probe's SQL); such options are admin-only.
	OptionText OptionKind = "string"
)

// MaxTextOption bounds the length of a text option, in bytes.
const MaxTextOption = 4000

// OptionSpec constrains one task option value.
type OptionSpec struct {
	Kind OptionKind
	// Min and Max bound numeric options (inclusive).
	Min, Max float64
	// Values lists the allowed strings of an enum option.
	Values []string
	Help   string
	// Default is the value a task uses when the option is not set (int64
	// for integers, float64 for numbers, bool, or string for enums; plain
	// Go int is accepted at registration). Required: drivers read options
	// through helpers that take it from here (driver.Request.Option).
	Default any
	// EngineDefaults overrides Default on the named engines ("sqlite"),
	// for an option whose natural default differs between engines.
	EngineDefaults map[string]any
	// AdminOnly options may be set to anything but their default only by
	// a caller holding the admin scope (the API refuses others with 403).
	AdminOnly bool
	// WriterMin and WriterMax, when not nil, bound the values of a numeric
	// option that a caller without the admin scope may set; a value outside
	// [WriterMin, WriterMax] needs the admin scope (e.g. a statement
	// timeout above the driver's default, fewer verified backups kept).
	WriterMin, WriterMax *float64
}

// AdminOnlyValue reports whether setting the option to v needs the admin
// scope (AdminOnly and not the default, or outside WriterMin/WriterMax).
// A value that does not pass the spec's own check is left to Normalize.
func (o OptionSpec) AdminOnlyValue(v any) bool {
	cv, err := o.check(v)
	if err != nil {
		return false
	}
	if o.AdminOnly && cv != o.Default {
		return true
	}
	if f, ok := toFloat(cv); ok {
		if o.WriterMin != nil && f < *o.WriterMin {
			return true
		}
		if o.WriterMax != nil && f > *o.WriterMax {
			return true
		}
	}
	return false
}

// DefaultFor returns the option's default on engine.
func (o OptionSpec) DefaultFor(engine string) any {
	if v, ok := o.EngineDefaults[engine]; ok {
		return v
	}
	return o.Default
}

// catalogue is the task registry. Built-in task types are registered by
// catalog.go at init; extensions call RegisterTask from their own init (or a
// test, before it starts a worker).
var catalogue = struct {
	sync.RWMutex
	order []TaskType
	defs  map[TaskType]TaskDef
	gen   uint64
}{defs: map[TaskType]TaskDef{}}

var (
	wireNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	// ErrTaskRegistered is wrapped by RegisterTask for a wire name in use.
	ErrTaskRegistered = errors.New("task type already registered")
)

// RegisterTask adds a task type to the registry. It checks the definition
// (a unique lower_snake_case wire name, a title, known option kinds, bounds
// in order, defaults of the option's type within its bounds) and returns an
// error for a bad one. unregister removes the task type again (for tests
// that add one); it is idempotent.
func RegisterTask(def TaskDef) (unregister func(), err error) {
	def, err = checkTaskDef(def)
	if err != nil {
		return nil, err
	}
	catalogue.Lock()
	defer catalogue.Unlock()
	if _, dup := catalogue.defs[def.Type]; dup {
		return nil, fmt.Errorf("register task %q: %w", def.Type, ErrTaskRegistered)
	}
	catalogue.defs[def.Type] = def
	catalogue.order = append(catalogue.order, def.Type)
	catalogue.gen++
	var once sync.Once
	return func() {
		once.Do(func() {
			catalogue.Lock()
			defer catalogue.Unlock()
			delete(catalogue.defs, def.Type)
			catalogue.order = slices.DeleteFunc(catalogue.order, func(t TaskType) bool { return t == def.Type })
			catalogue.gen++
		})
	}, nil
}

// MustRegisterTask is RegisterTask for init functions: a bad definition is a
// programming error and panics.
func MustRegisterTask(def TaskDef) {
	if _, err := RegisterTask(def); err != nil {
		panic("domain: " + err.Error())
	}
}

func checkTaskDef(def TaskDef) (TaskDef, error) {
	if !wireNamePattern.MatchString(string(def.Type)) {
		return def, fmt.Errorf("register task %q: the wire name must match %s", def.Type, wireNamePattern)
	}
	if strings.TrimSpace(def.Title) == "" {
		return def, fmt.Errorf("register task %q: a title is required", def.Type)
	}
	switch def.Timeout {
	case "":
		def.Timeout = TimeoutShort
	case TimeoutShort, TimeoutLong:
	default:
		return def, fmt.Errorf("register task %q: timeout class %q is neither %q nor %q", def.Type, def.Timeout, TimeoutShort, TimeoutLong)
	}
	opts := make(map[string]OptionSpec, len(def.Options))
	for k, o := range def.Options {
		o, err := checkOptionSpec(o)
		if err != nil {
			return def, fmt.Errorf("register task %q: option %q: %w", def.Type, k, err)
		}
		if !wireNamePattern.MatchString(k) {
			return def, fmt.Errorf("register task %q: option name %q must match %s", def.Type, k, wireNamePattern)
		}
		opts[k] = o
	}
	def.Options = opts
	return def, nil
}

func checkOptionSpec(o OptionSpec) (OptionSpec, error) {
	switch o.Kind {
	case OptionInt, OptionFloat:
		if o.Min > o.Max {
			return o, fmt.Errorf("min %g is above max %g", o.Min, o.Max)
		}
	case OptionEnum:
		if len(o.Values) == 0 {
			return o, errors.New("an enum needs values")
		}
	case OptionBool, OptionText:
	default:
		return o, fmt.Errorf("unknown kind %q", o.Kind)
	}
	if o.Default == nil {
		return o, errors.New("a default is required")
	}
	d, err := o.check(o.Default)
	if err != nil {
		return o, fmt.Errorf("default %v: %w", o.Default, err)
	}
	o.Default = d
	if len(o.EngineDefaults) > 0 {
		eds := make(map[string]any, len(o.EngineDefaults))
		for engine, v := range o.EngineDefaults {
			d, err := o.check(v)
			if err != nil {
				return o, fmt.Errorf("default on %s %v: %w", engine, v, err)
			}
			eds[engine] = d
		}
		o.EngineDefaults = eds
	}
	o.Values = slices.Clone(o.Values)
	return o, nil
}

// CatalogGeneration changes whenever a task type is registered or removed;
// renderings of the catalogue (the OpenAPI document) cache on it.
func CatalogGeneration() uint64 {
	catalogue.RLock()
	defer catalogue.RUnlock()
	return catalogue.gen
}

// AllTaskTypes returns every registered task type in registration order
// (the built-ins in the order the reference orchestrator lists them).
func AllTaskTypes() []TaskType {
	catalogue.RLock()
	defer catalogue.RUnlock()
	return slices.Clone(catalogue.order)
}

// Info returns the registration of a task type; ok is false for an unknown
// name.
func Info(t TaskType) (TaskDef, bool) {
	catalogue.RLock()
	defer catalogue.RUnlock()
	ti, ok := catalogue.defs[t]
	return ti, ok
}

// Title is the operator-facing title of a task type, or its wire name if unknown.
func (t TaskType) Title() string {
	if ti, ok := Info(t); ok {
		return ti.Title
	}
	return string(t)
}

// Valid reports whether t is a registered task type.
func (t TaskType) Valid() bool {
	_, ok := Info(t)
	return ok
}

// Heavy reports whether t is a heavy task (see TaskDef.Heavy).
func (t TaskType) Heavy() bool {
	ti, _ := Info(t)
	return ti.Heavy
}

// Timeout returns t's timeout class (TimeoutShort for an unknown type).
func (t TaskType) Timeout() TimeoutClass {
	if ti, ok := Info(t); ok {
		return ti.Timeout
	}
	return TimeoutShort
}

// ParseTaskType returns the task type with wire name s, or an error naming it.
// Unknown names are never mapped onto a known one.
func ParseTaskType(s string) (TaskType, error) {
	t := TaskType(s)
	if !t.Valid() {
		return "", fmt.Errorf("unknown task type %q", s)
	}
	return t, nil
}

// OptionKeys returns the sorted option names a task type accepts.
func OptionKeys(t TaskType) []string {
	ti, _ := Info(t)
	keys := make([]string, 0, len(ti.Options))
	for k := range ti.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// AdminOnlyOptions returns, sorted as "task.option", the options that opts
// sets to an admin-only value (OptionSpec.AdminOnlyValue). The API refuses a
// schedule write carrying any of them from a caller without the admin
// scope. Unknown task types and options are left to Normalize.
func AdminOnlyOptions(opts map[TaskType]TaskOptions) []string {
	var out []string
	for t, o := range opts {
		ti, ok := Info(t)
		if !ok {
			continue
		}
		for k, v := range o {
			spec, ok := ti.Options[k]
			if !ok || !spec.AdminOnlyValue(v) {
				continue
			}
			out = append(out, string(t)+"."+k)
		}
	}
	sort.Strings(out)
	return out
}

// AdminOnlySettings returns what in spec only a caller with the admin scope
// may set: each admin-only setting present, keyed by name, with its value
// in a canonical text form. The settings are
//
//   - "enforce_window": false (runs outside the window, as a forced run);
//   - "window_start_hour=window_end_hour": an enforced window covering the
//     whole day (the same effect);
//   - "tasks.<type>": an admin-only task type (TaskDef.AdminOnly);
//   - "task_options.<type>.<option>": an option set to an admin-only value
//     (OptionSpec.AdminOnlyValue).
//
// A write is refused for a caller without admin when it makes a setting
// appear or change value (AdminOnlyChanges); a run, when the schedule has
// any.
func AdminOnlySettings(spec ScheduleSpec) map[string]string {
	out := map[string]string{}
	if !spec.EnforceWindow {
		out["enforce_window"] = "false"
	} else if spec.WindowStartHour == spec.WindowEndHour {
		out["window_start_hour=window_end_hour"] = fmt.Sprint(spec.WindowStartHour)
	}
	for _, t := range spec.Tasks {
		if ti, ok := Info(t); ok && ti.AdminOnly {
			out["tasks."+string(t)] = "present"
		}
	}
	for t, opts := range spec.TaskOptions {
		ti, ok := Info(t)
		if !ok {
			continue
		}
		for k, v := range opts {
			if o, ok := ti.Options[k]; ok && o.AdminOnlyValue(v) {
				cv, _ := o.check(v)
				out["task_options."+string(t)+"."+k] = fmt.Sprint(cv)
			}
		}
	}
	return out
}

// AdminOnlyChanges returns, sorted, the admin-only settings (see
// AdminOnlySettings) that next has and cur has not, or has with another
// value: what a write from cur to next needs the admin scope for. Removing
// an admin-only setting (back to a safe value) needs no admin.
func AdminOnlyChanges(cur, next ScheduleSpec) []string {
	before := AdminOnlySettings(cur)
	var out []string
	for k, v := range AdminOnlySettings(next) {
		if old, ok := before[k]; !ok || old != v {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
