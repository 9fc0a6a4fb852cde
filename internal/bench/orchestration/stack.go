package orchestration

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"gopkg.in/yaml.v3"

	"github.com/themis-maintenance/themis/api"
	apiclient "github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/driver/sqlite"
	"github.com/themis-maintenance/themis/internal/auth"
	"github.com/themis-maintenance/themis/workflows"
)

// Names the bench gives things.
const (
	demoTarget = "demo"
	namespace  = "default"
	// taskQueue is the themis worker's queue; bareQueue the bare SDK
	// worker's, in the bench process.
	taskQueue = "themis-bench"
	bareQueue = "themis-bench-bare"
)

// stack is the running system under test: dev server, worker, API.
type stack struct {
	dir          string
	configPath   string
	dataDir      string
	token        string
	temporalAddr string
	metricsURL   string
	apiURL       string

	temporal client.Client
	api      *apiclient.Client
	// apiLong is a client whose HTTP timeout outlasts a 60 s wait.
	apiLong *apiclient.Client

	dev, worker, apiProc *process
	log                  io.Writer
}

// startStack starts the dev server, then the API (which installs the
// default schedules), then the worker, and returns when each answers.
func startStack(ctx context.Context, cfg Config, dir string) (_ *stack, err error) {
	s := &stack{dir: dir, configPath: filepath.Join(dir, "themis.yaml"), dataDir: filepath.Join(dir, "data"), log: cfg.Log}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	for _, d := range []string{s.dataDir, filepath.Join(dir, "logs"), filepath.Join(dir, "temporal")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	demo := filepath.Join(dir, "demo.db")
	if err := sqlite.SeedDemo(ctx, demo); err != nil {
		return nil, fmt.Errorf("seed demo target: %w", err)
	}
	if s.token, err = auth.NewToken(); err != nil {
		return nil, err
	}
	if s.temporalAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	if err := s.writeConfig(demo); err != nil {
		return nil, err
	}

	if err := s.startDevServer(ctx, cfg.TemporalBin); err != nil {
		return nil, err
	}
	if s.temporal, err = client.Dial(client.Options{HostPort: s.temporalAddr, Namespace: namespace, Logger: quietLogger()}); err != nil {
		return nil, fmt.Errorf("dial dev server: %w", err)
	}

	apiAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s.apiURL = "http://" + apiAddr
	if s.apiProc, err = s.startAPI(ctx, "api", cfg.Themisctl, apiAddr, nil); err != nil {
		return nil, err
	}
	if s.api, err = apiclient.New(s.apiURL, s.token, nil); err != nil {
		return nil, err
	}
	if s.apiLong, err = apiclient.New(s.apiURL, s.token, &http.Client{Timeout: 90 * time.Second}); err != nil {
		return nil, err
	}

	if s.worker, err = startProcess("worker", s.logPath("worker"), cfg.Themisctl, []string{"worker", "--config", s.configPath},
		s.env("THEMIS_HOST_ID=bench-worker", "THEMIS_WORKER_METRICS_LISTEN=off")); err != nil {
		return nil, err
	}
	if err := s.waitWorker(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *stack) logPath(name string) string { return filepath.Join(s.dir, "logs", name+".log") }

func (s *stack) writeConfig(demo string) error {
	cfg := map[string]any{
		"default_target": demoTarget,
		"data_dir":       s.dataDir,
		"temporal":       map[string]any{"address": s.temporalAddr, "namespace": namespace, "task_queue": taskQueue},
		"targets": []map[string]any{{
			"name": demoTarget, "driver": "sqlite", "dsn": demo, "quota_bytes": 1 << 30,
			"rto_objective": "5m", "rpo_objective": "1m",
		}},
		"auth": map[string]any{"tokens": []map[string]any{{
			"name": "bench-admin", "sha256": auth.Digest(s.token), "scopes": []string{api.ScopeAdmin},
		}}},
	}
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(s.configPath, raw, 0o600)
}

// env is the bench's environment without the variables that would
// override the shared configuration, plus extra.
func (s *stack) env(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "THEMIS_") || strings.HasPrefix(k, "TEMPORAL_") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, extra...)
}

// startDevServer runs `temporal server start-dev` as `themisctl dev` does
// (file-backed store, the search attributes, updates on) plus the
// Prometheus endpoint the visibility counts are read from.
func (s *stack) startDevServer(ctx context.Context, bin string) error {
	metricsAddr, err := freeAddr()
	if err != nil {
		return err
	}
	_, metricsPort, _ := strings.Cut(metricsAddr, ":")
	_, port, _ := strings.Cut(s.temporalAddr, ":")
	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	_, httpPort, _ := strings.Cut(httpAddr, ":")
	s.metricsURL = "http://127.0.0.1:" + metricsPort + "/metrics"
	args := []string{"server", "start-dev", "--ip", "127.0.0.1", "--port", port, "--http-port", httpPort,
		"--metrics-port", metricsPort, "--namespace", namespace, "--headless",
		"--db-filename", filepath.Join(s.dir, "temporal", "dev.db"), "--log-level", "warn",
		"--dynamic-config-value", "frontend.enableServerVersionCheck=false",
		"--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true"}
	for _, k := range []string{workflows.ScheduleIDKey.GetName(), workflows.TargetKey.GetName(),
		workflows.JobStateKey.GetName(), workflows.ScheduleNameKey.GetName()} {
		args = append(args, "--search-attribute", k+"=Keyword")
	}
	if s.dev, err = startProcess("temporal", s.logPath("temporal"), bin, args, s.env()); err != nil {
		return err
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		tc, err := client.Dial(client.Options{HostPort: s.temporalAddr, Namespace: namespace, Logger: quietLogger()})
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = tc.WorkflowService().GetSystemInfo(cctx, nil)
			cancel()
			tc.Close()
			if err == nil {
				return nil
			}
		}
		if !s.dev.running() {
			return fmt.Errorf("dev server exited at start:\n%s", s.dev.tail(30))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("dev server does not answer on %s: %v\n%s", s.temporalAddr, err, s.dev.tail(30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startAPI starts an API process of bin on addr and waits for /readyz.
func (s *stack) startAPI(ctx context.Context, name, bin, addr string, extraEnv []string) (*process, error) {
	env := append([]string{"THEMIS_API_LISTEN=" + addr, "THEMIS_HOST_ID=bench-" + name, "THEMIS_WORKER_METRICS_LISTEN=off"}, extraEnv...)
	p, err := startProcess(name, s.logPath(name), bin, []string{"api", "--config", s.configPath}, s.env(env...))
	if err != nil {
		return nil, err
	}
	c, err := apiclient.New("http://"+addr, s.token, nil)
	if err != nil {
		return p, err
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err = c.Ready(rctx)
		cancel()
		if err == nil {
			return p, nil
		}
		if !p.running() {
			return p, fmt.Errorf("%s exited at start:\n%s", name, p.tail(30))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop(5 * time.Second)
			return nil, fmt.Errorf("%s not ready: %v\n%s", name, err, p.tail(30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitWorker waits until a worker polls the task queue.
func (s *stack) waitWorker(ctx context.Context) error {
	deadline := time.Now().Add(90 * time.Second)
	for {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := s.temporal.DescribeTaskQueue(dctx, taskQueue, enums.TASK_QUEUE_TYPE_ACTIVITY)
		cancel()
		if err == nil && len(resp.GetPollers()) > 0 {
			return nil
		}
		if !s.worker.running() {
			return fmt.Errorf("worker exited at start:\n%s", s.worker.tail(30))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("no worker polls %s: %v\n%s", taskQueue, err, s.worker.tail(30))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func (s *stack) close() {
	s.apiProc.stop(10 * time.Second)
	s.worker.stop(10 * time.Second)
	if s.temporal != nil {
		s.temporal.Close()
	}
	s.dev.stop(20 * time.Second)
}

// quietLogger logs the SDK's warnings and errors only, to stderr.
func quietLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
}
