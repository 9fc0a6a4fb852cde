package domain

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func known(name string) bool { return name == "demo" || name == "orders" }

func validSpec() ScheduleSpec {
	s := NewScheduleSpec("demo")
	s.Name = "Nightly"
	s.Tasks = []TaskType{TaskMetricsCollection}
	return s
}

func TestNormalizeDerivesCron(t *testing.T) {
	cases := map[Frequency]string{
		FrequencyDaily:     "0 3 * * *",
		FrequencyWeekly:    "0 3 * * 0",
		FrequencyMonthly:   "0 3 1 * *",
		FrequencyQuarterly: "0 3 1 1,4,7,10 *",
	}
	for f, want := range cases {
		s := validSpec()
		s.Frequency, s.WindowStartHour = f, 3
		if err := s.Normalize(known); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if s.CronExpression != want {
			t.Errorf("%s: cron %q, want %q", f, s.CronExpression, want)
		}
	}
}

func TestDefaultSchedulesMatchSpec(t *testing.T) {
	want := map[string]struct {
		cron       string
		start, end int
		halt       bool
		tasks      int
	}{
		"Daily Maintenance":     {"0 2 * * *", 2, 6, false, 3},
		"Weekly Maintenance":    {"0 2 * * 0", 2, 6, false, 4},
		"Monthly Maintenance":   {"0 2 1 * *", 2, 6, false, 4},
		"Quarterly Maintenance": {"0 0 1 1,4,7,10 *", 0, 6, true, 2},
	}
	for _, d := range DefaultSchedules("demo", "", nil) {
		w, ok := want[d.Spec.Name]
		if !ok {
			t.Fatalf("unexpected default %q", d.Spec.Name)
		}
		spec := d.Spec
		if err := spec.Normalize(known); err != nil {
			t.Fatalf("%s does not validate: %v", d.Spec.Name, err)
		}
		if spec.CronExpression != w.cron || spec.WindowStartHour != w.start || spec.WindowEndHour != w.end ||
			spec.HaltOnTaskFailure != w.halt || len(spec.Tasks) != w.tasks || spec.Enabled {
			t.Errorf("%s = %+v", d.Spec.Name, spec)
		}
		if !ValidID(d.ID) {
			t.Errorf("%s: id %q is not a valid id", d.Spec.Name, d.ID)
		}
	}
}

// Defaults leave out the tasks the driver cannot run and say so; a default
// with no task left is not installed.
func TestDefaultSchedulesLeaveOutUnsupportedTasks(t *testing.T) {
	sqliteCan := map[TaskType]bool{
		TaskMetricsCollection: true, TaskFragmentationMonitoring: true, TaskQuotaCheck: true,
		TaskConsistencyCheck: true, TaskMVCCCleanup: true, TaskFullCheckDB: true, TaskBackupVerification: true,
		TaskCapacityTrendAnalysis: true, TaskIndexFragmentationReport: true, TaskDisasterRecoveryDrill: true, TaskBaselineUpdate: true,
	}
	got := map[string]ScheduleSpec{}
	for _, d := range DefaultSchedules("demo", "sqlite", func(t TaskType) bool { return sqliteCan[t] }) {
		got[d.ID] = d.Spec
	}
	w := got["weekly-maintenance"]
	if !slices.Equal(w.Tasks, []TaskType{TaskConsistencyCheck, TaskMVCCCleanup}) {
		t.Errorf("weekly tasks %v", w.Tasks)
	}
	if w.Description != "Default weekly maintenance (replica_validation, performance_analysis not supported by sqlite)" {
		t.Errorf("weekly description %q", w.Description)
	}
	if d := got["daily-maintenance"]; d.Description != "Default daily maintenance" || len(d.Tasks) != 3 {
		t.Errorf("daily %+v", d)
	}
	none := DefaultSchedules("demo", "nothing", func(TaskType) bool { return false })
	if len(none) != 0 {
		t.Errorf("defaults without any supported task: %+v", none)
	}
}

func TestNormalizeRejects(t *testing.T) {
	cases := []struct {
		name  string
		field string
		edit  func(*ScheduleSpec)
	}{
		{"empty name", "name", func(s *ScheduleSpec) { s.Name = "  " }},
		{"long name", "name", func(s *ScheduleSpec) { s.Name = strings.Repeat("x", 201) }},
		{"control chars", "name", func(s *ScheduleSpec) { s.Name = "a\x00b" }},
		{"long description", "description", func(s *ScheduleSpec) { s.Description = strings.Repeat("d", 2001) }},
		{"unknown target", "target", func(s *ScheduleSpec) { s.Target = "nope" }},
		{"no target", "target", func(s *ScheduleSpec) { s.Target = "" }},
		{"bad frequency", "frequency", func(s *ScheduleSpec) { s.Frequency = "hourly" }},
		{"custom without cron", "cron_expression", func(s *ScheduleSpec) { s.Frequency = FrequencyCustom }},
		{"custom with bad cron", "cron_expression", func(s *ScheduleSpec) { s.Frequency, s.CronExpression = FrequencyCustom, "61 * * * *" }},
		{"custom with 6 fields", "cron_expression", func(s *ScheduleSpec) { s.Frequency, s.CronExpression = FrequencyCustom, "0 0 2 * * *" }},
		{"custom with descriptor", "cron_expression", func(s *ScheduleSpec) { s.Frequency, s.CronExpression = FrequencyCustom, "@daily" }},
		{"cron with daily", "cron_expression", func(s *ScheduleSpec) { s.CronExpression = "5 4 * * *" }},
		{"bad zone", "timezone", func(s *ScheduleSpec) { s.Timezone = "Mars/Olympus" }},
		{"local zone", "timezone", func(s *ScheduleSpec) { s.Timezone = "Local" }},
		{"zone traversal", "timezone", func(s *ScheduleSpec) { s.Timezone = "../../etc/passwd" }},
		{"hour 24", "window_start_hour", func(s *ScheduleSpec) { s.WindowStartHour = 24 }},
		{"hour -1", "window_end_hour", func(s *ScheduleSpec) { s.WindowEndHour = -1 }},
		{"no tasks", "tasks", func(s *ScheduleSpec) { s.Tasks = nil }},
		{"too many tasks", "tasks", func(s *ScheduleSpec) {
			s.Tasks = make([]TaskType, 51)
			for i := range s.Tasks {
				s.Tasks[i] = TaskQuotaCheck
			}
		}},
		{"unknown task", "tasks[1]", func(s *ScheduleSpec) { s.Tasks = []TaskType{TaskQuotaCheck, "defragment_everything"} }},
		{"options for unknown task", "task_options", func(s *ScheduleSpec) {
			s.TaskOptions = map[TaskType]TaskOptions{"nope": {}}
		}},
		{"unknown option", "task_options.mvcc_cleanup", func(s *ScheduleSpec) {
			s.TaskOptions = map[TaskType]TaskOptions{TaskMVCCCleanup: {"turbo": true}}
		}},
		{"option wrong type", "task_options.mvcc_cleanup.parallelism", func(s *ScheduleSpec) {
			s.TaskOptions = map[TaskType]TaskOptions{TaskMVCCCleanup: {"parallelism": "4"}}
		}},
		{"option not integer", "task_options.mvcc_cleanup.parallelism", func(s *ScheduleSpec) {
			s.TaskOptions = map[TaskType]TaskOptions{TaskMVCCCleanup: {"parallelism": 2.5}}
		}},
		{"option out of range", "task_options.mvcc_cleanup.parallelism", func(s *ScheduleSpec) {
			s.TaskOptions = map[TaskType]TaskOptions{TaskMVCCCleanup: {"parallelism": 0.0}}
		}},
		{"enum option", "task_options.backup_verification.method", func(s *ScheduleSpec) {
			s.TaskOptions = map[TaskType]TaskOptions{TaskBackupVerification: {"method": "tar"}}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := validSpec()
			c.edit(&s)
			err := s.Normalize(known)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want a ValidationError, got %v", err)
			}
			if ve.Field != c.field {
				t.Fatalf("field %q, want %q (%v)", ve.Field, c.field, err)
			}
		})
	}
}

func TestNormalizeAccepts(t *testing.T) {
	s := validSpec()
	s.Name = "  Nächtliche Wartung 🌙  "
	s.Frequency, s.CronExpression = FrequencyCustom, "*/15  1-5 * * 1-5"
	s.Timezone = "America/New_York"
	s.TaskOptions = map[TaskType]TaskOptions{TaskMVCCCleanup: {"parallelism": 4.0}, TaskStorageCompaction: {"full": true}}
	if err := s.Normalize(known); err != nil {
		t.Fatal(err)
	}
	if s.Name != "Nächtliche Wartung 🌙" || s.CronExpression != "*/15 1-5 * * 1-5" {
		t.Fatalf("got %+v", s)
	}
	if v, ok := s.TaskOptions[TaskMVCCCleanup]["parallelism"].(int64); !ok || v != 4 {
		t.Fatalf("parallelism not canonicalised to int64: %#v", s.TaskOptions[TaskMVCCCleanup]["parallelism"])
	}
	// The derived cron may be sent back unchanged (a GET body replayed with PUT).
	d := validSpec()
	d.CronExpression = "0 2 * * *"
	if err := d.Normalize(known); err != nil {
		t.Fatal(err)
	}
}

func TestInWindow(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	at := func(h, m int) time.Time { return time.Date(2026, 1, 15, h, m, 0, 0, time.UTC) }
	cases := []struct {
		name       string
		t          time.Time
		loc        *time.Location
		start, end int
		want       bool
	}{
		{"inside", at(3, 0), time.UTC, 2, 6, true},
		{"start inclusive", at(2, 0), time.UTC, 2, 6, true},
		{"end exclusive", at(6, 0), time.UTC, 2, 6, false},
		{"before", at(1, 59), time.UTC, 2, 6, false},
		{"wrap late", at(23, 0), time.UTC, 22, 4, true},
		{"wrap early", at(3, 59), time.UTC, 22, 4, true},
		{"wrap end exclusive", at(4, 0), time.UTC, 22, 4, false},
		{"wrap outside", at(12, 0), time.UTC, 22, 4, false},
		{"all day", at(12, 0), time.UTC, 5, 5, true},
		{"zone shifts hour", at(1, 30), berlin, 2, 6, true}, // 02:30 in Berlin
		{"zone shifts out", at(5, 30), berlin, 2, 6, false}, // 06:30 in Berlin
	}
	for _, c := range cases {
		if got := InWindow(c.t, c.loc, c.start, c.end); got != c.want {
			t.Errorf("%s: InWindow(%s, %d, %d) = %v", c.name, c.t.In(c.loc).Format("15:04"), c.start, c.end, got)
		}
	}
}

func TestSlug(t *testing.T) {
	cases := map[string]string{
		"Daily Maintenance":      "daily-maintenance",
		"  A -- B  ":             "a-b",
		"Nächtlich":              "n-chtlich",
		"🌙":                      "schedule",
		"../../etc/passwd":       "etc-passwd",
		strings.Repeat("a", 100): strings.Repeat("a", 48),
	}
	for in, want := range cases {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
		if !ValidID(Slug(in)) {
			t.Errorf("Slug(%q) is not a valid id", in)
		}
	}
	for _, bad := range []string{"", "../x", "A", "a/b", "a b", strings.Repeat("a", 129)} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	f.Add("Nightly", "daily", "", "UTC", 2, 6, "metrics_collection")
	f.Add("x", "custom", "*/5 * * * *", "Europe/Berlin", 22, 4, "quota_check")
	f.Add("", "custom", "@every 1s", "../etc", -1, 99, "nope")
	f.Fuzz(func(t *testing.T, name, freq, cron, tz string, start, end int, task string) {
		s := ScheduleSpec{Name: name, Target: "demo", Frequency: Frequency(freq), CronExpression: cron,
			Timezone: tz, WindowStartHour: start, WindowEndHour: end, Tasks: []TaskType{TaskType(task)}}
		err := s.Normalize(known)
		if err == nil {
			// Whatever passes must be usable: a parsable cron, a zone, hours in range.
			if ParseCron(s.CronExpression) != nil {
				t.Fatalf("accepted unparsable cron %q", s.CronExpression)
			}
			if _, err := LoadTimezone(s.Timezone); err != nil {
				t.Fatalf("accepted zone %q", s.Timezone)
			}
			if s.WindowStartHour < 0 || s.WindowStartHour > 23 || s.WindowEndHour < 0 || s.WindowEndHour > 23 {
				t.Fatalf("accepted hours %d-%d", s.WindowStartHour, s.WindowEndHour)
			}
		} else {
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("non-validation error %v", err)
			}
		}
	})
}

func TestNextRunInSpecZone(t *testing.T) {
	s := validSpec()
	s.Frequency, s.CronExpression, s.Timezone = FrequencyCustom, "30 1 * * 1-5", "Europe/Berlin"
	if err := s.Normalize(known); err != nil {
		t.Fatal(err)
	}
	// Friday 2024-03-29 12:00 UTC: the next weekday 01:30 in Berlin is
	// Monday 2024-04-01 01:30 CEST (summer time began on the 31st).
	after := time.Date(2024, 3, 29, 12, 0, 0, 0, time.UTC)
	got, err := s.NextRun(after)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2024, 3, 31, 23, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("next run %s, want %s", got.UTC(), want)
	}
	// A derived daily cron in UTC, exactly at a firing instant: the next one.
	d := validSpec()
	d.WindowStartHour = 2
	if err := d.Normalize(known); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 1, 1, 2, 0, 0, 0, time.UTC)
	if got, err := d.NextRun(at); err != nil || !got.Equal(at.Add(24*time.Hour)) {
		t.Errorf("daily after a firing: %s, %v", got, err)
	}
}

func TestNextRunRefusesWhatNormalizeRefuses(t *testing.T) {
	for _, s := range []ScheduleSpec{
		{CronExpression: "", Timezone: "UTC"},
		{CronExpression: "@daily", Timezone: "UTC"},
		{CronExpression: "61 * * * *", Timezone: "UTC"},
		{CronExpression: "0 2 * * *", Timezone: "Mars/Olympus"},
		{CronExpression: "0 2 * * *", Timezone: "Local"},
		{CronExpression: "0 0 30 2 *", Timezone: "UTC"}, // 30 February never comes
	} {
		if got, err := s.NextRun(time.Now()); err == nil {
			t.Errorf("%q in %q: next run %s, want an error", s.CronExpression, s.Timezone, got)
		}
	}
}

func TestCheckSupportedNamesTaskAndDriver(t *testing.T) {
	caps := map[TaskType][]string{
		TaskQuotaCheck:        {"postgres", "sqlite"},
		TaskReplicaValidation: {"postgres"},
	}
	spec := ScheduleSpec{Target: "demo", Tasks: []TaskType{TaskQuotaCheck, TaskReplicaValidation}}
	err := spec.CheckSupported(caps, "sqlite")
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field != "tasks[1]" || !strings.Contains(ve.Message, "replica_validation") ||
		!strings.Contains(ve.Message, "sqlite") || !strings.Contains(ve.Message, "demo") {
		t.Fatalf("got %v", err)
	}
	if err := spec.CheckSupported(caps, "postgres"); err != nil {
		t.Errorf("postgres runs both: %v", err)
	}
	if err := spec.CheckSupported(nil, "sqlite"); err != nil {
		t.Errorf("without capabilities every task is accepted: %v", err)
	}
	if err := spec.CheckSupported(caps, ""); err != nil {
		t.Errorf("without a driver every task is accepted: %v", err)
	}
	if SupportedBy(caps, "sqlite")(TaskReplicaValidation) || !SupportedBy(caps, "sqlite")(TaskQuotaCheck) {
		t.Error("SupportedBy disagrees with the capabilities")
	}
}
