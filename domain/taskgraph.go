package domain

import (
	"fmt"
	"slices"
	"strings"
)

// TaskDependency says that a schedule's task runs only after the tasks it
// depends on have succeeded (docs/MAINTENANCE_SCHEDULE.md, "Task
// dependencies").
type TaskDependency struct {
	TaskType  TaskType   `json:"task_type"`
	DependsOn []TaskType `json:"depends_on"`
}

// HasTaskGraph reports whether the spec's tasks run as a dependency graph
// (task_dependencies given): tasks with no path between them run in
// parallel. Without dependencies the tasks run one after another in order.
func (s ScheduleSpec) HasTaskGraph() bool { return len(s.TaskDependencies) > 0 }

// Prerequisites returns, for each task of the spec (by index), the indices
// of the tasks it depends on, in ascending order. It assumes a validated
// spec.
func (s ScheduleSpec) Prerequisites() [][]int {
	index := make(map[TaskType]int, len(s.Tasks))
	for i, t := range s.Tasks {
		index[t] = i
	}
	pre := make([][]int, len(s.Tasks))
	for _, d := range s.TaskDependencies {
		i, ok := index[d.TaskType]
		if !ok {
			continue
		}
		for _, on := range d.DependsOn {
			if j, ok := index[on]; ok && !slices.Contains(pre[i], j) {
				pre[i] = append(pre[i], j)
			}
		}
		slices.Sort(pre[i])
	}
	return pre
}

// validateDependencies checks task_dependencies: every task named is one
// of the spec's tasks (which then must be distinct), no task is listed
// twice or depends on itself, and the graph has no cycle.
func (s *ScheduleSpec) validateDependencies() error {
	if s.TaskDependencies == nil {
		s.TaskDependencies = []TaskDependency{}
	}
	if len(s.TaskDependencies) == 0 {
		return nil
	}
	if len(s.TaskDependencies) > MaxTasks {
		return invalid("task_dependencies", "at most %d entries, got %d", MaxTasks, len(s.TaskDependencies))
	}
	seen := map[TaskType]int{}
	for i, t := range s.Tasks {
		if j, dup := seen[t]; dup {
			return invalid(fmt.Sprintf("tasks[%d]", i), "task %q is listed twice (also tasks[%d]); with task_dependencies every task must be distinct", t, j)
		}
		seen[t] = i
	}
	listed := map[TaskType]bool{}
	for i, d := range s.TaskDependencies {
		field := fmt.Sprintf("task_dependencies[%d]", i)
		if _, ok := seen[d.TaskType]; !ok {
			return invalid(field+".task_type", "unknown reference %q: not one of the schedule's tasks", string(d.TaskType))
		}
		if listed[d.TaskType] {
			return invalid(field+".task_type", "task %q has more than one entry; list all its prerequisites in one depends_on", d.TaskType)
		}
		listed[d.TaskType] = true
		if d.DependsOn == nil {
			s.TaskDependencies[i].DependsOn = []TaskType{}
		}
		for j, on := range d.DependsOn {
			f := fmt.Sprintf("%s.depends_on[%d]", field, j)
			if _, ok := seen[on]; !ok {
				return invalid(f, "unknown reference %q: not one of the schedule's tasks", string(on))
			}
			if on == d.TaskType {
				return invalid(f, "task %q depends on itself", on)
			}
		}
	}
	if cycle := s.dependencyCycle(); cycle != nil {
		names := make([]string, len(cycle))
		for i, t := range cycle {
			names[i] = string(t)
		}
		return invalid("task_dependencies", "dependency cycle: %s", strings.Join(names, " → "))
	}
	return nil
}

// dependencyCycle returns one cycle of the graph (first task repeated at
// the end), or nil.
func (s ScheduleSpec) dependencyCycle() []TaskType {
	pre := s.Prerequisites()
	const (
		unvisited = iota
		onPath
		done
	)
	state := make([]int, len(s.Tasks))
	var path []int
	var visit func(i int) []int
	visit = func(i int) []int {
		state[i] = onPath
		path = append(path, i)
		for _, j := range pre[i] {
			switch state[j] {
			case onPath:
				k := slices.Index(path, j)
				return append(slices.Clone(path[k:]), j)
			case unvisited:
				if c := visit(j); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		state[i] = done
		return nil
	}
	for i := range s.Tasks {
		if state[i] == unvisited {
			if c := visit(i); c != nil {
				out := make([]TaskType, len(c))
				for k, idx := range c {
					out[k] = s.Tasks[idx]
				}
				slices.Reverse(out) // prerequisites first: a → b means b depends on a
				return out
			}
		}
	}
	return nil
}
