package daemon

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/themis-maintenance/themis/activities"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/health"
	"github.com/themis-maintenance/themis/internal/config"
)

func groupedConfig(t *testing.T, groups ...string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg := &config.Config{DataDir: dir, Temporal: config.TemporalConfig{TaskQueue: "q"},
		Targets: []config.TargetConfig{
			{Name: "plain", Driver: "sqlite", DSN: filepath.Join(dir, "plain.db")},
			{Name: "a1", Driver: "sqlite", DSN: filepath.Join(dir, "a1.db"), Group: "za"},
			{Name: "b1", Driver: "sqlite", DSN: filepath.Join(dir, "b1.db"), Group: "zb"},
			// A target of zone b whose secret only zone b's workers have.
			{Name: "b2", Driver: "postgres", DSNEnv: "THEMIS_TEST_NOT_SET_B2", Group: "zb"},
		},
		Worker: config.WorkerConfig{TargetGroups: groups}}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestQueueNeeds(t *testing.T) {
	needs := queueNeeds(groupedConfig(t))
	if len(needs) != 3 {
		t.Fatalf("needs %+v", needs)
	}
	if n := needs[0]; n.Queue != "q" || n.Group != "" || !n.Activity || strings.Join(n.Targets, ",") != "plain" {
		t.Errorf("base %+v", n)
	}
	if n := needs[2]; n.Queue != "q-group-zb" || n.Group != "zb" || !n.Activity || strings.Join(n.Targets, ",") != "b1,b2" {
		t.Errorf("zb %+v", n)
	}
	// Every target grouped: the base queue needs no activity poller.
	cfg := groupedConfig(t)
	cfg.Targets = cfg.Targets[1:]
	if n := queueNeeds(cfg)[0]; n.Activity {
		t.Errorf("all grouped: base %+v", n)
	}
	// No target at all: the base queue runs jobs as it always did.
	cfg.Targets = nil
	if n := queueNeeds(cfg); len(n) != 1 || !n[0].Activity {
		t.Errorf("no targets: %+v", n)
	}
}

func TestPollersSignal(t *testing.T) {
	needs := queueNeeds(groupedConfig(t))
	polled := func(counts ...int) []queuePollers {
		out := make([]queuePollers, len(needs))
		for i, n := range needs {
			out[i] = queuePollers{queueNeed: n, Workflow: counts[2*i], Activity: counts[2*i+1], Identities: []string{"w-" + n.Queue}}
		}
		return out
	}
	s := pollersSignal(polled(1, 1, 2, 2, 1, 1))
	if s.Status != health.OK || !strings.Contains(s.Message, "target groups za, zb") || s.Details["workflow_pollers"] != 4 || s.Details["task_queue"] != "q" {
		t.Errorf("all polled: %+v", s)
	}
	if qs := s.Details["queues"].([]map[string]any); len(qs) != 3 || qs[2]["group"] != "zb" || qs[2]["activity_pollers"] != 1 {
		t.Errorf("queues %+v", qs)
	}
	s = pollersSignal(polled(1, 1, 1, 1, 0, 0))
	if s.Status != health.Critical || s.Message != "no worker polls the tasks of group zb (task queue q-group-zb): jobs and drills of b1, b2 cannot run" {
		t.Errorf("zone b down: %+v", s)
	}
	s = pollersSignal(polled(1, 0, 1, 1, 1, 1))
	if s.Status != health.Critical || !strings.Contains(s.Message, "activity tasks of task queue q: jobs and drills of the ungrouped targets (plain) cannot run") {
		t.Errorf("no ungrouped worker: %+v", s)
	}

	// Every target grouped: the base queue carries claims only.
	cfg := groupedConfig(t)
	cfg.Targets = cfg.Targets[1:]
	needs = queueNeeds(cfg)
	if s := pollersSignal(polled(1, 0, 1, 1, 1, 1)); s.Status != health.OK {
		t.Errorf("all grouped, base without activity pollers: %+v", s)
	}
	if s := pollersSignal(polled(0, 0, 1, 1, 1, 1)); s.Status != health.Degraded || !strings.Contains(s.Message, "claims") {
		t.Errorf("all grouped, base without any poller: %+v", s)
	}

	// Without groups the messages are those of before.
	cfg.Targets, cfg.Worker.TargetGroups = nil, nil
	needs = queueNeeds(cfg)
	if s := pollersSignal(polled(0, 0)); s.Status != health.Critical || s.Message != "no worker polls task queue q: no job can run" {
		t.Errorf("nobody: %+v", s)
	}
	if s := pollersSignal(polled(1, 0)); s.Status != health.Critical || s.Message != "no worker polls the activity tasks of task queue q: no job can run" {
		t.Errorf("no activity poller: %+v", s)
	}
	if s := pollersSignal(polled(2, 3)); s.Status != health.OK || s.Message != "1 worker(s) polling task queue q (2 workflow, 3 activity poller(s))" {
		t.Errorf("ok: %+v", s)
	}
}

// A grouped worker's activities see its groups' targets only; the API's
// registry keeps every target the process can open; a target of another
// group whose DSN is not readable here is left out, one of its own groups
// is an error.
func TestWorkerDepsServeTheirGroups(t *testing.T) {
	t.Setenv("THEMIS_TEST_NOT_SET_B2", "")
	deps, err := NewWorkerDeps(groupedConfig(t, "za"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer deps.Close()
	if strings.Join(deps.Served, ",") != "a1" {
		t.Errorf("served %v", deps.Served)
	}
	for _, name := range []string{"plain", "a1", "b1"} {
		if _, _, err := deps.Registry.Lookup(name); err != nil {
			t.Errorf("process registry lacks %s: %v", name, err)
		}
	}
	if _, _, err := deps.Registry.Lookup("b2"); err == nil {
		t.Error("b2's DSN is not readable, yet it is in the registry")
	}
	if _, _, err := deps.Activities.Registry.Lookup("a1"); err != nil {
		t.Errorf("activities lack a1: %v", err)
	}
	for _, other := range []string{"plain", "b1"} {
		_, _, err := deps.Activities.Registry.Lookup(other)
		var pe *driver.PermanentError
		if err == nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), "not configured on this worker") {
			t.Errorf("activities of zone a reach %s: %v", other, err)
		}
	}

	// Zone b's worker needs b2's DSN.
	if _, err := NewWorkerDeps(groupedConfig(t, "zb"), nil, nil); err == nil || !strings.Contains(err.Error(), "THEMIS_TEST_NOT_SET_B2") {
		t.Errorf("zone b without b2's DSN: %v", err)
	}
	// The ungrouped worker serves the ungrouped target.
	deps, err = NewWorkerDeps(groupedConfig(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer deps.Close()
	if strings.Join(deps.Served, ",") != "plain" {
		t.Errorf("ungrouped worker serves %v", deps.Served)
	}
}

// A grouped worker runs one SDK worker per group queue, each with its host
// queue under the group's queue, and a workflows-only one on the base
// queue; an ungrouped worker runs one on the base queue.
func TestNewWorkersPerQueue(t *testing.T) {
	c, err := client.NewLazyClient(client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := groupedConfig(t, "za", "zb")
	cfg.Worker.HostID = "h1"
	var got []string
	for _, w := range NewWorkers(c, cfg, &activities.Activities{}) {
		got = append(got, w.Queue+" host="+w.Host.Queue)
	}
	if want := []string{"q-group-za host=q-group-za@h1", "q-group-zb host=q-group-zb@h1", "q host="}; !slices.Equal(got, want) {
		t.Errorf("grouped workers %v, want %v", got, want)
	}
	cfg = groupedConfig(t)
	cfg.Worker.HostID = "h1"
	got = nil
	for _, w := range NewWorkers(c, cfg, &activities.Activities{}) {
		got = append(got, w.Queue+" host="+w.Host.Queue)
	}
	if want := []string{"q host=q@h1"}; !slices.Equal(got, want) {
		t.Errorf("ungrouped workers %v, want %v", got, want)
	}
}
