package domain

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func graphSpec(tasks []TaskType, deps ...TaskDependency) ScheduleSpec {
	s := NewScheduleSpec("orders")
	s.Name, s.Tasks, s.TaskDependencies = "g", tasks, deps
	return s
}

func TestTaskDependencies(t *testing.T) {
	a, b, c, d := TaskMVCCCleanup, TaskIndexRebuild, TaskConsistencyCheck, TaskQuotaCheck
	s := graphSpec([]TaskType{a, b, c, d}, TaskDependency{TaskType: b, DependsOn: []TaskType{a}},
		TaskDependency{TaskType: d, DependsOn: []TaskType{c, a, a}})
	if err := s.Normalize(nil); err != nil {
		t.Fatal(err)
	}
	if !s.HasTaskGraph() {
		t.Fatal("HasTaskGraph")
	}
	pre := s.Prerequisites()
	if len(pre[0]) != 0 || !slices.Equal(pre[1], []int{0}) || len(pre[2]) != 0 || !slices.Equal(pre[3], []int{0, 2}) {
		t.Fatalf("prerequisites %v", pre)
	}
	plain := graphSpec([]TaskType{a, a})
	if err := plain.Normalize(nil); err != nil || plain.HasTaskGraph() || plain.TaskDependencies == nil {
		t.Fatalf("no dependencies: %v %v", err, plain.TaskDependencies)
	}

	for name, tc := range map[string]struct {
		spec        ScheduleSpec
		field, text string
	}{
		"unknown task": {graphSpec([]TaskType{a, b}, TaskDependency{TaskType: c, DependsOn: []TaskType{a}}),
			"task_dependencies[0].task_type", "unknown reference"},
		"unknown prerequisite": {graphSpec([]TaskType{a, b}, TaskDependency{TaskType: b, DependsOn: []TaskType{a, c}}),
			"task_dependencies[0].depends_on[1]", "unknown reference"},
		"self": {graphSpec([]TaskType{a, b}, TaskDependency{TaskType: b, DependsOn: []TaskType{b}}),
			"task_dependencies[0].depends_on[0]", "depends on itself"},
		"twice": {graphSpec([]TaskType{a, b}, TaskDependency{TaskType: b, DependsOn: []TaskType{a}}, TaskDependency{TaskType: b}),
			"task_dependencies[1].task_type", "more than one entry"},
		"duplicate task": {graphSpec([]TaskType{a, b, a}, TaskDependency{TaskType: b, DependsOn: []TaskType{a}}),
			"tasks[2]", "listed twice"},
		"cycle": {graphSpec([]TaskType{a, b, c, d}, TaskDependency{TaskType: b, DependsOn: []TaskType{a}},
			TaskDependency{TaskType: c, DependsOn: []TaskType{b}}, TaskDependency{TaskType: a, DependsOn: []TaskType{c}}),
			"task_dependencies", "dependency cycle: "},
	} {
		err := tc.spec.Normalize(nil)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field || !strings.Contains(ve.Error(), tc.text) {
			t.Errorf("%s: %v, want %s: %s", name, err, tc.field, tc.text)
		}
		if name == "cycle" && err != nil {
			// Three tasks in the cycle, the first repeated at the end.
			if msg := err.Error(); strings.Count(msg, "→") != 3 {
				t.Errorf("cycle message %q", msg)
			}
		}
	}
}
