package domain

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestBuiltInCatalogue(t *testing.T) {
	all := AllTaskTypes()
	if len(all) != 19 || all[0] != TaskMetricsCollection || all[18] != TaskVectorReindex {
		t.Fatalf("built-ins %v", all)
	}
	for _, tt := range all {
		ti, _ := Info(tt)
		for k, o := range ti.Options {
			if o.Default == nil {
				t.Errorf("%s.%s has no default", tt, k)
			}
		}
	}
	heavy := 0
	for _, tt := range all {
		if tt.Heavy() {
			heavy++
		}
	}
	if heavy != 9 || !TaskStorageCompaction.Heavy() || TaskQuotaCheck.Heavy() {
		t.Errorf("%d heavy task types", heavy)
	}
	ti, _ := Info(TaskStorageCompaction)
	if !ti.Options["full"].AdminOnly {
		t.Error("storage_compaction.full is not admin-only")
	}
	if d := ti.Options["lock_timeout_ms"].Default; d != int64(0) {
		t.Errorf("integer default %T %v, want int64", d, d)
	}
	fi, _ := Info(TaskFragmentationMonitoring)
	if got := fi.Options["min_size_bytes"].DefaultFor("sqlite"); got != int64(64<<10) {
		t.Errorf("sqlite default %v", got)
	}
	if got := fi.Options["min_size_bytes"].DefaultFor("postgres"); got != int64(1<<20) {
		t.Errorf("postgres default %v", got)
	}
}

func TestRegisterTaskChecks(t *testing.T) {
	ok := OptionSpec{Kind: OptionInt, Min: 0, Max: 10, Default: 1}
	for name, def := range map[string]TaskDef{
		"duplicate":            {Type: TaskQuotaCheck, Title: "x"},
		"empty name":           {Title: "x"},
		"upper-case name":      {Type: "Bad", Title: "x"},
		"no title":             {Type: "t_no_title"},
		"timeout class":        {Type: "t_timeout", Title: "x", Timeout: "medium"},
		"option kind":          {Type: "t_kind", Title: "x", Options: map[string]OptionSpec{"a": {Kind: "text", Default: "x"}}},
		"bounds":               {Type: "t_bounds", Title: "x", Options: map[string]OptionSpec{"a": {Kind: OptionInt, Min: 5, Max: 1, Default: 3}}},
		"no default":           {Type: "t_nodef", Title: "x", Options: map[string]OptionSpec{"a": {Kind: OptionInt, Max: 1}}},
		"default out of range": {Type: "t_range", Title: "x", Options: map[string]OptionSpec{"a": {Kind: OptionInt, Max: 1, Default: 2}}},
		"default wrong type":   {Type: "t_type", Title: "x", Options: map[string]OptionSpec{"a": {Kind: OptionBool, Default: "yes"}}},
		"enum default":         {Type: "t_enum", Title: "x", Options: map[string]OptionSpec{"a": {Kind: OptionEnum, Values: []string{"p"}, Default: "q"}}},
		"engine default":       {Type: "t_engine", Title: "x", Options: map[string]OptionSpec{"a": {Kind: OptionInt, Max: 1, Default: 1, EngineDefaults: map[string]any{"sqlite": 9}}}},
		"option name":          {Type: "t_optname", Title: "x", Options: map[string]OptionSpec{"Bad-Name": ok}},
	} {
		if _, err := RegisterTask(def); err == nil {
			t.Errorf("%s: registered", name)
		} else if name == "duplicate" && !errors.Is(err, ErrTaskRegistered) {
			t.Errorf("duplicate: %v", err)
		}
	}
	if len(AllTaskTypes()) != 19 {
		t.Fatalf("a failed registration changed the catalogue: %v", AllTaskTypes())
	}
}

func TestRegisterAndUnregister(t *testing.T) {
	gen := CatalogGeneration()
	unregister, err := RegisterTask(TaskDef{Type: "census", Title: "Census",
		Options: map[string]OptionSpec{"depth": {Kind: OptionInt, Min: 1, Max: 9, Default: 3}, "wipe": {Kind: OptionBool, Default: false, AdminOnly: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if CatalogGeneration() == gen || !TaskType("census").Valid() || AllTaskTypes()[19] != "census" || TaskType("census").Timeout() != TimeoutShort {
		t.Fatal("the registered type is not in the catalogue")
	}
	s := NewScheduleSpec("demo")
	s.Name, s.Tasks = "c", []TaskType{"census"}
	s.TaskOptions = map[TaskType]TaskOptions{"census": {"depth": 12.0}}
	if err := s.Normalize(func(string) bool { return true }); err == nil || !strings.Contains(err.Error(), "between 1 and 9") {
		t.Errorf("bounds of a registered option: %v", err)
	}
	s.TaskOptions = map[TaskType]TaskOptions{"census": {"depth": 4.0, "wipe": true}}
	if err := s.Normalize(func(string) bool { return true }); err != nil {
		t.Errorf("valid options: %v", err)
	}
	if got := AdminOnlyOptions(s.TaskOptions); !slices.Equal(got, []string{"census.wipe"}) {
		t.Errorf("admin-only %v", got)
	}
	if got := AdminOnlyOptions(map[TaskType]TaskOptions{"census": {"wipe": false}}); got != nil {
		t.Errorf("admin-only at its default: %v", got)
	}
	unregister()
	unregister()
	if TaskType("census").Valid() || len(AllTaskTypes()) != 19 {
		t.Fatal("unregister left the type behind")
	}
	if _, err := ParseTaskType("census"); err == nil {
		t.Error("an unregistered type parses")
	}
}
