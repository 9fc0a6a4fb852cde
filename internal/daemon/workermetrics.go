package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/internal/telemetry"
	"github.com/themis-maintenance/themis/starter"
)

// MetricsListenOff as worker.metrics_listen serves no worker endpoint.
const MetricsListenOff = "off"

// WorkerHealth is the body of a worker's /healthz and /readyz.
type WorkerHealth struct {
	Status  string `json:"status"`
	Version string `json:"version"`
	HostID  string `json:"host_id"`
	// TaskQueue is the base task queue; TaskQueues every queue this worker
	// polls (WorkerQueues) and TargetGroups its worker.target_groups.
	TaskQueue    string   `json:"task_queue"`
	TaskQueues   []string `json:"task_queues"`
	TargetGroups []string `json:"target_groups,omitempty"`
	Detail       string   `json:"detail,omitempty"`
}

// WorkerHandler serves a worker process's own endpoints: GET /metrics (the
// process's meter provider in Prometheus format: the temporal_* SDK worker
// metrics, the counters workflows record through workflow.GetMetricsHandler
// and the task metrics of the activities), GET /healthz (200 while the
// process serves) and GET /readyz (200 when Temporal answers, else 503).
func WorkerHandler(cfg *config.Config, tel *telemetry.Provider, c client.Client) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", tel.Handler())
	health := func(status string) WorkerHealth {
		return WorkerHealth{Status: status, Version: starter.Version, HostID: cfg.Worker.HostID, TaskQueue: cfg.Temporal.TaskQueue,
			TaskQueues: WorkerQueues(cfg), TargetGroups: cfg.Worker.TargetGroups}
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeHealth(w, http.StatusOK, health("ok"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			h := health("unavailable")
			h.Detail = "Temporal does not answer"
			writeHealth(w, http.StatusServiceUnavailable, h)
			return
		}
		writeHealth(w, http.StatusOK, health("ready"))
	})
	return mux
}

func writeHealth(w http.ResponseWriter, code int, h WorkerHealth) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(h)
}

// ServeWorkerMetrics serves WorkerHandler on cfg.Worker.MetricsListen until
// ctx is done; with "off" it serves nothing and returns nil at once. Only a
// worker-only process calls it: where the API runs in the same process
// (`themisctl dev`, `themisctl server`) the API port's /metrics already
// exports the same meter provider. ready, when not nil, receives the bound
// address.
func ServeWorkerMetrics(ctx context.Context, cfg *config.Config, tel *telemetry.Provider, c client.Client, logger *slog.Logger, ready func(string)) error {
	addr := strings.TrimSpace(cfg.Worker.MetricsListen)
	if addr == "" || strings.EqualFold(addr, MetricsListenOff) {
		logger.Info("worker metrics endpoint disabled (worker.metrics_listen: off)")
		return nil
	}
	err := ServeHTTP(ctx, addr, WorkerHandler(cfg, tel, c), func(bound string) {
		logger.Info("worker metrics", "url", "http://"+bound+"/metrics")
		if ready != nil {
			ready(bound)
		}
	})
	if err != nil {
		return fmt.Errorf("worker metrics endpoint (worker.metrics_listen / THEMIS_WORKER_METRICS_LISTEN; %q disables it): %w", MetricsListenOff, err)
	}
	return nil
}
