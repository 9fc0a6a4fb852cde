package driver

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/themis-maintenance/themis/domain"
)

// engine is a minimal Driver with a task table of one task type.
type engine struct{ name string }

func (e engine) Name() string                    { return e.name }
func (e engine) Supports(t domain.TaskType) bool { return t == domain.TaskQuotaCheck }
func (e engine) Run(context.Context, Request) (Result, error) {
	return Result{Summary: "built-in"}, nil
}

func TestImplementAddsCapabilities(t *testing.T) {
	unregister, err := domain.RegisterTask(domain.TaskDef{Type: "ext_task", Title: "Extension task",
		Options: map[string]domain.OptionSpec{"n": {Kind: domain.OptionInt, Min: 0, Max: 100, Default: 7, EngineDefaults: map[string]any{"beta": 9}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer unregister()
	if _, err := Implement("alpha", "not_registered", func(context.Context, Request) (Result, error) { return Result{}, nil }); err == nil {
		t.Error("implemented an unregistered task type")
	}
	undo, err := Implement("alpha", "ext_task", func(_ context.Context, req Request) (Result, error) {
		return Result{Summary: "ext", Details: map[string]any{"n": req.OptionsOn("alpha").Int("n")}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer undo()
	if _, err := Implement("alpha", "ext_task", func(context.Context, Request) (Result, error) { return Result{}, nil }); err == nil {
		t.Error("implemented twice")
	}
	a, b := engine{"alpha"}, engine{"beta"}
	caps := Capabilities([]Driver{b, a})
	if !slices.Equal(caps["ext_task"], []string{"alpha"}) || !slices.Equal(caps[domain.TaskQuotaCheck], []string{"alpha", "beta"}) ||
		len(caps[domain.TaskDisasterRecoveryDrill]) != 0 || len(caps) != len(domain.AllTaskTypes()) {
		t.Errorf("capabilities %v", caps)
	}
	res, err := Run(context.Background(), a, Request{Task: "ext_task"})
	if err != nil || res.Summary != "ext" || res.Details["n"] != int64(7) {
		t.Errorf("run: %+v %v", res, err)
	}
	if res, _ := Run(context.Background(), a, Request{Task: domain.TaskQuotaCheck}); res.Summary != "built-in" {
		t.Errorf("built-in run: %+v", res)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, a, Request{Task: "ext_task"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: %v", err)
	}
	undo()
	if Supports(a, "ext_task") {
		t.Error("still supported after undo")
	}
}

func TestOptionReaderDefaults(t *testing.T) {
	req := Request{Task: domain.TaskFragmentationMonitoring, Target: Target{Driver: "sqlite"}}
	if got := req.Int("min_size_bytes"); got != 64<<10 {
		t.Errorf("sqlite default %d", got)
	}
	if got := req.OptionsOn("postgres").Int("min_size_bytes"); got != 1<<20 {
		t.Errorf("postgres default %d", got)
	}
	req.Options = domain.TaskOptions{"min_size_bytes": 5.0, "high_threshold_pct": int64(40)}
	if req.Int("min_size_bytes") != 5 || req.Float("high_threshold_pct") != 40 {
		t.Error("set values not read")
	}
	if req.OptionsOn("x").Int("undeclared") != 0 {
		t.Error("undeclared option is not zero")
	}
	b := Request{Task: domain.TaskBackupVerification}
	if b.String("method") != "native" || b.Int("keep_backups") != 3 {
		t.Error("backup defaults")
	}
	if (Request{Task: domain.TaskStorageCompaction}).Bool("full") {
		t.Error("full defaults to true")
	}
}
