package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGroupQueueNaming(t *testing.T) {
	require.Equal(t, "themis-maintenance", GroupQueue("themis-maintenance", ""), "ungrouped targets stay on the base queue")
	require.Equal(t, "themis-maintenance-group-eu-west", GroupQueue("themis-maintenance", "eu-west"))
	// A group's queue never looks like a host's queue (base@host).
	require.NotContains(t, GroupQueue("q", "a"), "@")

	for name, ok := range map[string]bool{
		"eu-west": true, "a": true, "zone1": true, "1a": true, strings.Repeat("a", 40): true,
		"": false, "EU": false, "eu_west": false, "-a": false, "a-": false, "a b": false, "a@b": false,
		"zone/1": false, "é": false, strings.Repeat("a", 41): false,
	} {
		require.Equal(t, ok, ValidGroupName(name), "ValidGroupName(%q)", name)
	}
}

const groupedTargets = `
temporal: {task_queue: tq}
targets:
  - {name: a1, driver: sqlite, dsn: a1.db, group: zone-a}
  - {name: a2, driver: sqlite, dsn: a2.db, group: zone-a}
  - {name: b1, driver: sqlite, dsn: b1.db, group: zone-b}
  - {name: plain, driver: sqlite, dsn: p.db}
`

func TestTargetGroupsRouting(t *testing.T) {
	t.Setenv("THEMIS_WORKER_TARGET_GROUPS", "")
	cfg, err := Load(writeConfig(t, "data_dir: "+t.TempDir()+groupedTargets))
	require.NoError(t, err)
	require.Equal(t, []string{"zone-a", "zone-b"}, cfg.Groups())
	require.Equal(t, []string{"tq", "tq-group-zone-a", "tq-group-zone-b"}, cfg.TaskQueues())
	require.Equal(t, "tq-group-zone-a", cfg.TargetQueue("a2"))
	require.Equal(t, "tq-group-zone-b", cfg.TargetQueue("b1"))
	require.Equal(t, "tq", cfg.TargetQueue("plain"))
	require.Equal(t, "tq", cfg.TargetQueue("unknown"))

	// Ungrouped worker: the base queue, the ungrouped targets only.
	require.False(t, cfg.Grouped())
	require.Equal(t, []string{"tq"}, cfg.WorkerQueues())
	require.Equal(t, []string{"plain"}, cfg.ServedTargets())

	infos := map[string]string{}
	for _, ti := range cfg.TargetInfos() {
		infos[ti.Name] = ti.Group
	}
	require.Equal(t, map[string]string{"a1": "zone-a", "a2": "zone-a", "b1": "zone-b", "plain": ""}, infos)

	// Grouped worker, from the file and from the environment.
	cfg, err = Load(writeConfig(t, "data_dir: "+t.TempDir()+groupedTargets+"worker: {target_groups: [zone-b]}\n"))
	require.NoError(t, err)
	require.Equal(t, []string{"tq-group-zone-b"}, cfg.WorkerQueues())
	require.Equal(t, []string{"b1"}, cfg.ServedTargets())

	t.Setenv("THEMIS_WORKER_TARGET_GROUPS", " zone-a , zone-b ,")
	cfg, err = Load(writeConfig(t, "data_dir: "+t.TempDir()+groupedTargets))
	require.NoError(t, err)
	require.Equal(t, []string{"zone-a", "zone-b"}, cfg.Worker.TargetGroups)
	require.Equal(t, []string{"tq-group-zone-a", "tq-group-zone-b"}, cfg.WorkerQueues())
	require.Equal(t, []string{"a1", "a2", "b1"}, cfg.ServedTargets())
}

func TestTargetGroupsValidation(t *testing.T) {
	t.Setenv("THEMIS_WORKER_TARGET_GROUPS", "")
	for body, want := range map[string]string{
		"targets: [{name: a, driver: sqlite, dsn: a.db, group: Zone_A}]":                             `target "a" (targets[0]): group "Zone_A" must be 1–40 lower-case letters`,
		"targets: [{name: a, driver: sqlite, dsn: a.db, group: -a}]":                                 `group "-a" must be`,
		"targets: [{name: a, driver: sqlite, dsn: a.db, group: x}]\nworker: {target_groups: [y]}":    `worker.target_groups names group "y", which no target has (groups of the targets: x)`,
		"targets: [{name: a, driver: sqlite, dsn: a.db}]\nworker: {target_groups: [y]}":              `which no target has (groups of the targets: none)`,
		"targets: [{name: a, driver: sqlite, dsn: a.db, group: x}]\nworker: {target_groups: [x, x]}": `worker.target_groups names "x" twice`,
		"targets: [{name: a, driver: sqlite, dsn: a.db, group: x}]\nworker: {target_groups: [X]}":    `worker.target_groups[0]: "X" must be`,
		"targets: [{name: a, driver: sqlite, dsn: a.db, group: x}]\nworker: {target_groups: x}":      `cannot unmarshal`,
		"targets: [{name: a, driver: sqlite, dsn: a.db, group: x}]\nworker: {target_group: [x]}":     `field target_group not found`,
		"targets: [{name: a, driver: sqlite, dsn: a.db, group: \"a b\"}]":                            `group "a b" must be`,
		"targets: [{name: a, driver: sqlite, dsn: a.db, group: x}]\nworker: {target_groups: [\"\"]}": `worker.target_groups[0]: "" must be`,
	} {
		_, err := Load(writeConfig(t, "data_dir: "+t.TempDir()+"\n"+body+"\n"))
		require.Error(t, err, body)
		require.Contains(t, err.Error(), want, body)
	}
	// A group named in the environment that no target has is refused too.
	t.Setenv("THEMIS_WORKER_TARGET_GROUPS", "nowhere")
	_, err := Load(writeConfig(t, "data_dir: "+t.TempDir()+groupedTargets))
	require.ErrorContains(t, err, `worker.target_groups names group "nowhere", which no target has (groups of the targets: zone-a, zone-b)`)
}
