package config

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// Target groups (docs/TARGETS.md, Target groups): a target may name a group
// (a zone, a network, a tenant); the workflows of a grouped target run on
// the group's own task queue, which only the workers configured for the
// group (worker.target_groups) poll, so a zone's workers alone reach a
// zone's databases. Targets without a group stay on the base task queue
// (temporal.task_queue), as before groups existed.

// groupQueueSeparator joins the base task queue and a group's name. It is
// not "@", which joins a queue and a host id (worker.HostQueue): a group's
// queue can never be mistaken for a host's.
const groupQueueSeparator = "-group-"

// maxGroupLen bounds a group name (it becomes part of task queue names,
// metric labels and Kubernetes object names).
const maxGroupLen = 40

// GroupQueue is the task queue of the targets of group: base itself for no
// group, base + "-group-" + group otherwise.
func GroupQueue(base, group string) string {
	if group == "" {
		return base
	}
	return base + groupQueueSeparator + group
}

// ValidGroupName reports whether name is a safe group slug: 1–40 lower-case
// letters, digits and '-', starting and ending with a letter or digit.
func ValidGroupName(name string) bool {
	if name == "" || len(name) > maxGroupLen || name[0] == '-' || name[len(name)-1] == '-' {
		return false
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// parseGroupList splits a comma-separated $THEMIS_WORKER_TARGET_GROUPS.
func parseGroupList(s string) []string {
	var out []string
	for _, g := range strings.Split(s, ",") {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	return out
}

// applyGroupsEnv reads $THEMIS_WORKER_TARGET_GROUPS (comma-separated; it
// replaces worker.target_groups when set and not empty).
func (c *Config) applyGroupsEnv() {
	if v, ok := os.LookupEnv("THEMIS_WORKER_TARGET_GROUPS"); ok && strings.TrimSpace(v) != "" {
		c.Worker.TargetGroups = parseGroupList(v)
	}
}

// validateGroups checks the targets' groups and worker.target_groups: slugs,
// no duplicates, and every group a worker serves is one some target uses.
func (c *Config) validateGroups() error {
	used := map[string]bool{}
	for i, t := range c.Targets {
		if t.Group == "" {
			continue
		}
		if !ValidGroupName(t.Group) {
			return fmt.Errorf("config: target %q (targets[%d]): group %q must be 1–%d lower-case letters, digits or '-', starting and ending with a letter or digit (it becomes part of a task queue name)",
				t.Name, i, clipText(t.Group, 80), maxGroupLen)
		}
		used[t.Group] = true
	}
	seen := map[string]bool{}
	for i, g := range c.Worker.TargetGroups {
		if !ValidGroupName(g) {
			return fmt.Errorf("config: worker.target_groups[%d]: %q must be 1–%d lower-case letters, digits or '-', starting and ending with a letter or digit",
				i, clipText(g, 80), maxGroupLen)
		}
		if seen[g] {
			return fmt.Errorf("config: worker.target_groups names %q twice", g)
		}
		seen[g] = true
		if !used[g] {
			return fmt.Errorf("config: worker.target_groups names group %q, which no target has (groups of the targets: %s)",
				g, groupListText(c.Groups()))
		}
	}
	return nil
}

func groupListText(groups []string) string {
	if len(groups) == 0 {
		return "none"
	}
	return strings.Join(groups, ", ")
}

// Groups returns the groups the targets name, sorted, without duplicates.
func (c *Config) Groups() []string {
	var out []string
	for _, t := range c.Targets {
		if t.Group != "" && !slices.Contains(out, t.Group) {
			out = append(out, t.Group)
		}
	}
	slices.Sort(out)
	return out
}

// TargetQueue is the task queue of the workflows of target name (its
// group's queue, or the base queue for an ungrouped or unknown target).
func (c *Config) TargetQueue(name string) string {
	for _, t := range c.Targets {
		if t.Name == name {
			return GroupQueue(c.Temporal.TaskQueue, t.Group)
		}
	}
	return c.Temporal.TaskQueue
}

// TaskQueues returns every task queue of this configuration: the base
// queue first, then one per group, sorted. The API lists jobs and drills
// on all of them.
func (c *Config) TaskQueues() []string {
	out := []string{c.Temporal.TaskQueue}
	for _, g := range c.Groups() {
		out = append(out, GroupQueue(c.Temporal.TaskQueue, g))
	}
	return out
}

// Grouped reports whether this process is a grouped worker (worker.target_groups
// is set).
func (c *Config) Grouped() bool { return len(c.Worker.TargetGroups) > 0 }

// WorkerQueues are the task queues this worker serves in full (workflows
// and activities): one per group of worker.target_groups, or the base
// queue for an ungrouped worker.
func (c *Config) WorkerQueues() []string {
	if !c.Grouped() {
		return []string{c.Temporal.TaskQueue}
	}
	out := make([]string, 0, len(c.Worker.TargetGroups))
	for _, g := range c.Worker.TargetGroups {
		out = append(out, GroupQueue(c.Temporal.TaskQueue, g))
	}
	return out
}

// Serves reports whether this worker runs the activities of target t: a
// grouped worker those of its groups' targets, an ungrouped worker those
// of the ungrouped targets. Every other target is absent from its driver
// registry, so an activity for it (a misrouted task) fails as "not
// configured on this worker" and never touches that database.
func (c *Config) Serves(t TargetConfig) bool {
	if !c.Grouped() {
		return t.Group == ""
	}
	return t.Group != "" && slices.Contains(c.Worker.TargetGroups, t.Group)
}

// ServedTargets returns the names of the targets this worker serves (Serves).
func (c *Config) ServedTargets() []string {
	var out []string
	for _, t := range c.Targets {
		if c.Serves(t) {
			out = append(out, t.Name)
		}
	}
	return out
}
