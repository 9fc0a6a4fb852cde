package serve

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/driver/sqlite"
	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/internal/devserver"
	"github.com/themis-maintenance/themis/internal/telemetry"
	"github.com/themis-maintenance/themis/internal/temporalclient"
)

// A process running the worker and the API (`themisctl dev`, `themisctl
// server`) exports one /metrics, on the API port, with the worker's
// temporal_* metrics in it once; it opens no second endpoint on
// worker.metrics_listen.
func TestWorkerAndAPIShareOneMetricsEndpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the Temporal dev server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{})
	if err != nil {
		t.Fatalf("dev server: %v", err)
	}
	defer srv.Stop()

	dir := t.TempDir()
	db := filepath.Join(dir, "demo.db")
	if err := sqlite.SeedDemo(ctx, db); err != nil {
		t.Fatal(err)
	}
	// A free port for worker.metrics_listen, which must stay closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	workerAddr := ln.Addr().String()
	ln.Close()
	cfg := &config.Config{
		DataDir:  dir,
		Temporal: config.TemporalConfig{Address: srv.FrontendHostPort(), Namespace: "default", TaskQueue: "one-endpoint"},
		API:      config.APIConfig{Listen: "127.0.0.1:0"},
		Targets:  []config.TargetConfig{{Name: "demo", Driver: "sqlite", DSN: db}},
		Worker:   config.WorkerConfig{MetricsListen: workerAddr},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tel, err := telemetry.Setup("themis-maintenance")
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	c, err := temporalclient.Dial(cfg.Temporal, log)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	rctx, stop := context.WithCancel(ctx)
	apiAddr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runParts(rctx, c, cfg, tel, log, true, true, func(a string) { apiAddr <- a })
	}()
	var api string
	select {
	case api = <-apiAddr:
	case err := <-done:
		t.Fatalf("runParts: %v", err)
	}

	var body string
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + api + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(raw)
		if resp.StatusCode == http.StatusOK && strings.Contains(body, "temporal_worker_start_total{") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("API /metrics has no worker metrics: %d\n%s", resp.StatusCode, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := strings.Count(body, "# TYPE temporal_worker_start_total counter"); n != 1 {
		t.Errorf("temporal_worker_start_total exported %d times", n)
	}
	if n := strings.Count(body, "\ntarget_info{"); n != 1 {
		t.Errorf("target_info exported %d times", n)
	}
	if conn, err := net.DialTimeout("tcp", workerAddr, time.Second); err == nil {
		conn.Close()
		t.Errorf("a second metrics endpoint listens on worker.metrics_listen %s", workerAddr)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("runParts: %v", err)
	}
}
