package daemon

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/internal/telemetry"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// unreachableClient is a lazy client on a port nothing listens on.
func unreachableClient(t *testing.T) client.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := client.NewLazyClient(client.Options{HostPort: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestWorkerHandler(t *testing.T) {
	tel, err := telemetry.Setup("themis-test")
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	tel.Metrics.JobDurations(context.Background(), domain.Job{Target: "demo", State: domain.StateSucceeded, DurationMs: 1})
	cfg := &config.Config{Temporal: config.TemporalConfig{TaskQueue: "q"}, Worker: config.WorkerConfig{HostID: "h1"}}
	h := WorkerHandler(cfg, tel, unreachableClient(t))

	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	rec := get("/healthz")
	var body WorkerHealth
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Status != "ok" || body.HostID != "h1" || body.TaskQueue != "q" {
		t.Errorf("/healthz = %d %s", rec.Code, rec.Body)
	}
	if !slices.Equal(body.TaskQueues, []string{"q"}) || body.TargetGroups != nil {
		t.Errorf("/healthz queues of an ungrouped worker: %+v", body)
	}
	gcfg := &config.Config{Temporal: config.TemporalConfig{TaskQueue: "q"},
		Worker: config.WorkerConfig{HostID: "h1", TargetGroups: []string{"za", "zb"}}}
	rec = httptest.NewRecorder()
	WorkerHandler(gcfg, tel, unreachableClient(t)).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	body = WorkerHealth{}
	if json.Unmarshal(rec.Body.Bytes(), &body) != nil || !slices.Equal(body.TaskQueues, []string{"q-group-za", "q-group-zb", "q (workflows only)"}) ||
		!slices.Equal(body.TargetGroups, []string{"za", "zb"}) {
		t.Errorf("/healthz of a grouped worker: %s", rec.Body)
	}
	if rec = get("/readyz"); rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"unavailable"`) {
		t.Errorf("/readyz without Temporal = %d %s, want 503", rec.Code, rec.Body)
	}
	if rec = get("/metrics"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `maintenance_job_duration_ms`) {
		t.Errorf("/metrics = %d %s", rec.Code, rec.Body)
	}
	if rec = get("/api/v1/maintenance/schedules"); rec.Code != http.StatusNotFound {
		t.Errorf("a worker serves no API: %d", rec.Code)
	}
}

func TestServeWorkerMetricsOffAndBusy(t *testing.T) {
	tel, err := telemetry.Setup("themis-test")
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	c := unreachableClient(t)
	ctx := context.Background()

	cfg := &config.Config{Worker: config.WorkerConfig{MetricsListen: "off"}}
	done := make(chan error, 1)
	go func() { done <- ServeWorkerMetrics(ctx, cfg, tel, c, quietLogger(), nil) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("off: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal(`metrics_listen "off" still serves`)
	}

	// An address in use is a clear start-up error naming the setting.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg.Worker.MetricsListen = ln.Addr().String()
	err = ServeWorkerMetrics(ctx, cfg, tel, c, quietLogger(), nil)
	if err == nil || !strings.Contains(err.Error(), "THEMIS_WORKER_METRICS_LISTEN") {
		t.Fatalf("busy address: %v", err)
	}

	// Served until the context ends.
	cfg.Worker.MetricsListen = "127.0.0.1:0"
	sctx, cancel := context.WithCancel(ctx)
	addr := make(chan string, 1)
	go func() { done <- ServeWorkerMetrics(sctx, cfg, tel, c, quietLogger(), func(a string) { addr <- a }) }()
	resp, err := http.Get("http://" + <-addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
