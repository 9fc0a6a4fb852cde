package testsuite

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/daemon"
	"github.com/themis-maintenance/themis/workflows"

	"github.com/themis-maintenance/themis/internal/telemetry/promtest"
)

// buildThemisctl builds cmd/themisctl into a temporary directory.
func buildThemisctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "themisctl")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/themis-maintenance/themis/cmd/themisctl")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build themisctl: %s", out)
	return bin
}

// childEnv is the test process's environment without the variables the
// config reads, so only the config file and flags given count.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "THEMIS_") || strings.HasPrefix(kv, "TEMPORAL_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// promValue sums the samples of name whose labels contain all of labels.
func promValue(t *testing.T, body, name string, labels ...string) float64 {
	t.Helper()
	v, err := promtest.Sum(body, name, labels...)
	require.NoError(t, err)
	return v
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(raw)
}

// `themisctl worker`, built and run as its own process against the dev
// server, is the only worker of a job: it serves /healthz, /readyz and
// /metrics on --metrics-listen, and the scrape shows the SDK's worker
// metrics and the job's task outcome once. SIGTERM stops it cleanly.
func TestThemisctlWorkerServesMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("builds themisctl and needs the Temporal dev server")
	}
	e := NewEnv(t, EnvOptions{})
	e.StopWorker() // the child process is the only poller of the queue
	bin := buildThemisctl(t)

	conf := filepath.Join(t.TempDir(), "worker.yaml")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, `data_dir: %q
temporal:
  address: %q
  namespace: default
  task_queue: %q
default_target: demo
targets:
  - name: demo
    driver: sqlite
    dsn: %q
worker:
  host_id: metrics-test-host
`, e.Config.DataDir, e.Config.Temporal.Address, e.TaskQueue, e.Config.Targets[0].DSN), 0o600))

	cmd := exec.Command(bin, "worker", "--config", conf, "--metrics-listen", "127.0.0.1:0")
	cmd.Env = childEnv()
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	var once sync.Once
	stop := func() { once.Do(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) }
	t.Cleanup(stop)

	// The bound address is in the log line "worker metrics" (JSON, as the
	// output is not a terminal: "url":"http://…/metrics").
	urlc := make(chan string, 1)
	var logMu sync.Mutex
	var logBuf strings.Builder
	go func() {
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`"url":"(http://[^"]+)/metrics"`)
		for sc.Scan() {
			logMu.Lock()
			logBuf.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
		}
	}()
	var base string
	select {
	case base = <-urlc:
	case <-time.After(30 * time.Second):
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("themisctl worker printed no metrics address:\n%s", logBuf.String())
	}

	code, body := httpGet(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code, body)
	var h daemon.WorkerHealth
	require.NoError(t, json.Unmarshal([]byte(body), &h))
	require.Equal(t, "ok", h.Status)
	require.Equal(t, "metrics-test-host", h.HostID)
	require.Equal(t, e.TaskQueue, h.TaskQueue)
	code, body = httpGet(t, base+"/readyz")
	require.Equal(t, http.StatusOK, code, body)

	// A job on the queue runs on the child worker.
	sc := e.CreateSchedule("WorkerMetrics", domain.TaskQuotaCheck, domain.TaskMetricsCollection)
	job, err := e.Service.RunSchedule(context.Background(), sc.ID, true, "test")
	require.NoError(t, err)
	job = e.WaitJob(job.ID, time.Minute, Terminal)
	require.Equal(t, domain.StateSucceeded, job.State, "error: %s", job.ErrorMessage)

	// The workflow's completion is counted when its last workflow task
	// completes, which can trail the job's state by a moment.
	wf := `workflow_type="` + workflows.MaintenanceWorkflowName + `"`
	var metrics string
	require.Eventually(t, func() bool {
		code, metrics = httpGet(t, base+"/metrics")
		return code == http.StatusOK && promValue(t, metrics, "temporal_workflow_completed_total", wf) >= 1
	}, 15*time.Second, 200*time.Millisecond, "no temporal_workflow_completed_total for the job")
	require.Equal(t, 1.0, promValue(t, metrics, "temporal_workflow_completed_total", wf, `task_queue="`+e.TaskQueue+`"`))
	require.Equal(t, 1.0, promValue(t, metrics, "maintenance_tasks_succeeded_total", `task_type="quota_check"`))
	require.Equal(t, 1.0, promValue(t, metrics, "maintenance_tasks_succeeded_total", `task_type="metrics_collection"`))
	for _, want := range []string{
		"# TYPE temporal_worker_start_total counter",
		"# TYPE temporal_activity_execution_latency_seconds histogram",
		"# TYPE temporal_workflow_task_execution_latency_seconds histogram",
		"# TYPE temporal_num_pollers gauge",
		`target_info{service_name="themis-maintenance"`,
	} {
		require.Contains(t, metrics, want)
	}
	require.NotContains(t, metrics, "_total_total")
	// Once the workflows record outcome counters through
	// workflow.GetMetricsHandler, the job counts once here.
	if strings.Contains(metrics, "themis_jobs_total{") {
		require.Equal(t, 1.0, promValue(t, metrics, "themis_jobs_total", `state="succeeded"`), metrics)
	}

	// SIGTERM: the worker stops polling and the process exits 0.
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		once.Do(func() {})
		require.NoError(t, err, "themisctl worker exit")
	case <-time.After(30 * time.Second):
		t.Fatal("themisctl worker did not exit within 30 s of SIGTERM")
	}
}
