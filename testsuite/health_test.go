package testsuite

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/health"
	"github.com/themis-maintenance/themis/internal/daemon"
	"github.com/themis-maintenance/themis/starter"
)

// healthAPI is a starter service with the daemon's built-in probes (as
// `themisctl serve` builds it) over e's client, worker deps and config,
// with its probes running, served by the real gateway.
func healthAPI(t *testing.T, e *Env, taskQueue string) *httptest.Server {
	t.Helper()
	cfg := *e.Config
	cfg.Temporal.TaskQueue = taskQueue
	probes, err := daemon.BuiltinProbes(e.Client, &cfg, e.Deps.Registry, e.Deps.History)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := starter.New(e.Client, starter.Options{
		Namespace: cfg.Temporal.Namespace, TaskQueue: taskQueue, Targets: cfg.TargetInfos(), DefaultTarget: "demo",
		Logger: logger, HealthProbes: probes, HealthProbeInterval: 300 * time.Millisecond, HealthProbeTimeout: 2 * time.Second,
	})
	h, err := daemon.Handler(svc, &cfg, nil, logger, daemon.HandlerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.RunHealthProbes(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	srv := httptest.NewServer(apitest.NewValidator(t).Handler(t, h))
	t.Cleanup(srv.Close)
	return srv
}

func getHealth(t *testing.T, srv *httptest.Server, token string) (api.HealthReport, time.Duration) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/maintenance/health", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	took := time.Since(start)
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /health: %d %s", resp.StatusCode, raw)
	}
	var rep api.HealthReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("GET /health: %v: %s", err, raw)
	}
	return rep, took
}

func signals(rep api.HealthReport) map[string]api.HealthSignal {
	out := map[string]api.HealthSignal{}
	for _, m := range rep.Modules {
		out[m.Name] = m
	}
	return out
}

// waitHealth polls GET /health until ok accepts the report.
func waitHealth(t *testing.T, srv *httptest.Server, token string, within time.Duration, ok func(map[string]api.HealthSignal) bool) api.HealthReport {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		rep, _ := getHealth(t, srv, token)
		if ok(signals(rep)) {
			return rep
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(rep, "", "  ")
			t.Fatalf("health not as expected within %s:\n%s", within, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The built-in probes on the real dev server, worker and stores, beside an
// extension probe registered with health.RegisterProbe that hangs: every
// built-in module is healthy, the hung one is unknown within its timeout,
// the overall status degraded, and /health answers at once throughout.
func TestHealthProbesOnDevServer(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	release := make(chan struct{})
	name := fmt.Sprintf("test-hang-%d", time.Now().UnixNano())
	if err := health.RegisterProbe(name, func(context.Context) health.Signal {
		<-release // ignores its context
		return health.Signal{Status: health.OK, Message: "released"}
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(release); health.Default.Unregister(name) })
	srv := healthAPI(t, e, e.TaskQueue)
	read := e.Token(api.ScopeRead)

	builtin := []string{"temporal", "workers", "jobs", "history", "target:demo", "audit"}
	start := time.Now()
	rep := waitHealth(t, srv, read, 20*time.Second, func(s map[string]api.HealthSignal) bool {
		for _, n := range builtin {
			if s[n].Status != api.HealthOK {
				return false
			}
		}
		return strings.HasPrefix(s[name].Message, "did not answer within 2s")
	})
	t.Logf("every probe reported after %s", time.Since(start))
	var order []string
	for _, m := range rep.Modules {
		order = append(order, m.Name)
		if m.CheckedAtMs == 0 {
			t.Errorf("%s: checked_at_ms 0", m.Name)
		}
	}
	if got, want := strings.Join(order, ","), strings.Join(append(builtin, name), ","); got != want {
		t.Errorf("modules %s, want %s", got, want)
	}
	s := signals(rep)
	if s[name].Status != api.HealthUnknown || rep.OverallStatus != api.HealthDegraded || rep.CheckedAtMs == 0 {
		t.Errorf("hung probe %+v, overall %s", s[name], rep.OverallStatus)
	}
	if w := s["workers"]; w.Details["workflow_pollers"].(float64) < 1 || w.Details["activity_pollers"].(float64) < 1 ||
		w.Details["task_queue"] != e.TaskQueue {
		t.Errorf("workers: %+v", w)
	}
	if m := s["temporal"]; m.Details["namespace"] != "default" || m.Details["state"] != "Registered" {
		t.Errorf("temporal: %+v", m)
	}
	if m := s["history"]; m.Details["driver"] != "sqlite" {
		t.Errorf("history: %+v", m)
	}
	if m := s["target:demo"]; m.Details["reachable"] != true {
		t.Errorf("target:demo: %+v", m)
	}

	// The hung probe never slows /health down.
	var slowest time.Duration
	for range 20 {
		_, took := getHealth(t, srv, read)
		slowest = max(slowest, took)
	}
	if slowest > time.Second { // the hung call never returns: blocking on it would never answer
		t.Errorf("GET /health took up to %s while a probe hangs", slowest)
	}
	t.Logf("slowest of 20 GET /health while a probe hangs: %s", slowest)
}

// On a task queue no worker polls, the workers probe is critical, and so
// is the overall status.
func TestHealthWorkersCriticalWithoutPollers(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	queue := e.TaskQueue + "-nobody"
	srv := healthAPI(t, e, queue)
	rep := waitHealth(t, srv, e.Token(api.ScopeRead), 20*time.Second, func(s map[string]api.HealthSignal) bool {
		return s["workers"].CheckedAtMs != 0 && s["temporal"].CheckedAtMs != 0
	})
	w := signals(rep)["workers"]
	if w.Status != api.HealthCritical || w.Message != "no worker polls task queue "+queue+": no job can run" ||
		w.Details["workflow_pollers"].(float64) != 0 || w.Details["activity_pollers"].(float64) != 0 {
		t.Errorf("workers: %+v", w)
	}
	if rep.OverallStatus != api.HealthCritical {
		t.Errorf("overall %s", rep.OverallStatus)
	}
}
