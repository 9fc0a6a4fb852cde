package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"gopkg.in/yaml.v3"

	"github.com/themis-maintenance/themis/api"
	apiclient "github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/driver/sqlite"
	"github.com/themis-maintenance/themis/internal/auth"
	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/internal/devserver"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
	"github.com/themis-maintenance/themis/workflows"
)

// Names the cluster gives things.
const (
	// DemoTarget is the SQLite target every cluster has (the default target).
	DemoTarget = "demo"
	// PGTarget is the PostgreSQL target of a cluster with Postgres.
	PGTarget = "orders"
	// PGDatabase is the target's database on the primary.
	PGDatabase = "orders"
	// HistoryDatabase holds the shared history store (HistoryOnPostgres).
	HistoryDatabase = "themis_history"
	// TaskQueue is the cluster's task queue.
	TaskQueue = "themis-cluster"
	// Namespace is the Temporal namespace.
	Namespace = "default"
)

// Options shape a cluster.
type Options struct {
	// Workers and APIs are the numbers of `themisctl worker` and
	// `themisctl api` processes (default 2 each).
	Workers int
	APIs    int
	// Postgres starts a PostgreSQL primary with a streaming replica and adds
	// the target "orders" (database orders on the primary, the replica in
	// replica_dsns).
	Postgres bool
	// HistoryOnPostgres puts the history store in database themis_history
	// on the primary (history.driver: postgres), shared by every process.
	HistoryOnPostgres bool
	// PGSettings are extra postgresql.conf settings of the primary.
	PGSettings map[string]string
	// MaxHeavyTasks of the PostgreSQL target (0: the default, 1).
	MaxHeavyTasks int
	// DrillApprovalTimeout bounds both drill approvals (default 10 min).
	DrillApprovalTimeout time.Duration
	// GroupedTargets adds SQLite targets (each a seeded demo database) in
	// target groups: target name → group (docs/TARGETS.md, Target groups).
	GroupedTargets map[string]string
	// WorkerGroups, when set, makes len(WorkerGroups) workers (Workers is
	// ignored), worker i serving target groups WorkerGroups[i]
	// ($THEMIS_WORKER_TARGET_GROUPS; nil: an ungrouped worker).
	WorkerGroups [][]string
}

// Cluster is a running cluster. Its methods fail the test on error.
type Cluster struct {
	T *testing.T
	// Dir holds the config, the logs, the dev server's database and one
	// data directory per process ("host").
	Dir        string
	ConfigPath string
	// Token is an admin bearer token of the API.
	Token string
	// TemporalAddr is the dev server's frontend (same across restarts).
	TemporalAddr string
	// Temporal is a client of the dev server, dialled by the test.
	Temporal client.Client
	// APIURLs and APIs are the API processes' base URLs and typed clients.
	APIURLs []string
	APIs    []*apiclient.Client
	// Primary and Replica are the PostgreSQL clusters (Postgres or
	// HistoryOnPostgres).
	Primary, Replica *pgcluster.Cluster
	// DemoDB is the SQLite demo target's file.
	DemoDB string
	// HostIDs are the workers' THEMIS_HOST_ID values; MetricsAddrs their
	// THEMIS_WORKER_METRICS_LISTEN addresses.
	HostIDs      []string
	MetricsAddrs []string

	opts    Options
	dev     *Process
	workers []*Process
	apis    []*Process
	all     []*Process
}

var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

// Main runs a test binary's tests, then removes the themisctl binary built
// for them. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// Binary returns the themisctl binary, building it on first use with
// `go build` from this module.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		start := time.Now()
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		if buildDir, buildErr = os.MkdirTemp("", "themis-cluster-bin-"); buildErr != nil {
			return
		}
		bin := filepath.Join(buildDir, "themisctl")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/themisctl")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/themisctl: %w\n%s", err, out)
			return
		}
		binPath = bin
		fmt.Fprintf(os.Stderr, "cluster: built themisctl in %s\n", time.Since(start).Round(time.Millisecond))
	})
	if buildErr != nil {
		t.Fatalf("cluster: %v", buildErr)
	}
	return binPath
}

// Start starts a cluster for t: PostgreSQL (when asked), the dev server,
// the API processes (which install the default schedules), then the
// workers; it returns when every process answers.
func Start(t *testing.T, opts Options) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process cluster tests are skipped with -short")
	}
	if opts.WorkerGroups != nil {
		opts.Workers = len(opts.WorkerGroups)
	}
	if opts.Workers == 0 {
		opts.Workers = 2
	}
	if opts.APIs == 0 {
		opts.APIs = 2
	}
	if opts.DrillApprovalTimeout == 0 {
		opts.DrillApprovalTimeout = 10 * time.Minute
	}
	bin := Binary(t)
	temporalBin, err := devserver.FindBinary()
	if err != nil {
		t.Fatalf("cluster: %v", err)
	}
	began := time.Now()
	dir := t.TempDir()
	// The scratch and backup directories below must be reachable by the
	// postgres OS account (server binaries run as postgres under root).
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c := &Cluster{T: t, Dir: dir, opts: opts, ConfigPath: filepath.Join(dir, "themis.yaml")}
	for _, sub := range []string{"logs", "temporal", "hosts"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	if opts.Postgres || opts.HistoryOnPostgres {
		c.startPostgres()
	}

	c.DemoDB = filepath.Join(dir, "demo.db")
	if err := sqlite.SeedDemo(context.Background(), c.DemoDB); err != nil {
		t.Fatalf("cluster: seed demo db: %v", err)
	}
	for name := range opts.GroupedTargets {
		if err := sqlite.SeedDemo(context.Background(), c.TargetDB(name)); err != nil {
			t.Fatalf("cluster: seed %s db: %v", name, err)
		}
	}
	tok, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	c.Token = tok

	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	httpPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	c.TemporalAddr = fmt.Sprintf("127.0.0.1:%d", port)
	c.writeConfig()

	// One clean-up for all processes, registered after PostgreSQL's so it
	// runs first: kill everything, then show the logs of a failed test.
	t.Cleanup(c.teardown)

	devArgs := []string{"server", "start-dev", "--ip", "127.0.0.1", "--port", strconv.Itoa(port),
		"--http-port", strconv.Itoa(httpPort), "--namespace", Namespace, "--headless",
		"--db-filename", filepath.Join(dir, "temporal", "dev.db"), "--log-level", "warn",
		"--dynamic-config-value", "frontend.enableServerVersionCheck=false",
		"--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true"}
	for _, k := range []string{workflows.ScheduleIDKey.GetName(), workflows.TargetKey.GetName(),
		workflows.JobStateKey.GetName(), workflows.ScheduleNameKey.GetName()} {
		devArgs = append(devArgs, "--search-attribute", k+"=Keyword")
	}
	c.dev = c.newProc("temporal", temporalBin, devArgs, nil)
	c.StartDevServer()
	tc, err := client.Dial(client.Options{HostPort: c.TemporalAddr, Namespace: Namespace, Logger: quietLogger{}})
	if err != nil {
		t.Fatalf("cluster: dial dev server: %v", err)
	}
	c.Temporal = tc

	for i := 0; i < opts.APIs; i++ {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		name := fmt.Sprintf("api-%d", i+1)
		proc := c.newProc(name, bin, []string{"api", "--config", c.ConfigPath}, []string{
			"THEMIS_API_LISTEN=" + addr, "THEMIS_HOST_ID=" + name, "THEMIS_DATA_DIR=" + c.hostDir(name),
			"THEMIS_WORKER_METRICS_LISTEN=off",
		})
		c.apis = append(c.apis, proc)
		url := "http://" + addr
		ac, err := apiclient.New(url, tok, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.APIURLs = append(c.APIURLs, url)
		c.APIs = append(c.APIs, ac)
	}
	// The APIs start together: both race to install the default schedules.
	for i := range c.apis {
		c.startProc(c.apis[i])
	}
	for i := range c.apis {
		c.waitAPI(i)
	}

	for i := 0; i < opts.Workers; i++ {
		host := "host-" + string(rune('a'+i))
		mp, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		maddr := fmt.Sprintf("127.0.0.1:%d", mp)
		c.HostIDs = append(c.HostIDs, host)
		c.MetricsAddrs = append(c.MetricsAddrs, maddr)
		env := []string{
			"THEMIS_HOST_ID=" + host, "THEMIS_WORKER_METRICS_LISTEN=" + maddr, "THEMIS_DATA_DIR=" + c.hostDir(host),
		}
		if opts.WorkerGroups != nil && len(opts.WorkerGroups[i]) > 0 {
			env = append(env, "THEMIS_WORKER_TARGET_GROUPS="+strings.Join(opts.WorkerGroups[i], ","))
		}
		c.workers = append(c.workers, c.newProc("worker-"+host, bin, []string{"worker", "--config", c.ConfigPath}, env))
	}
	for i := range c.workers {
		c.StartWorker(i)
	}
	t.Logf("cluster: dev server %s, %d API processes %v, %d workers %v, PostgreSQL %v; up in %s (logs in %s)",
		c.TemporalAddr, len(c.apis), c.APIURLs, len(c.workers), c.HostIDs, c.Primary != nil,
		time.Since(began).Round(time.Millisecond), filepath.Join(dir, "logs"))
	return c
}

func (c *Cluster) startPostgres() {
	t := c.T
	settings := map[string]string{
		// Sessions of a dead client are noticed while they run.
		"max_connections": "100",
	}
	for k, v := range c.opts.PGSettings {
		settings[k] = v
	}
	c.Primary = pgcluster.Start(t, pgcluster.Options{Settings: settings})
	c.Primary.CreateDatabase(t, PGDatabase)
	if c.opts.HistoryOnPostgres {
		c.Primary.CreateDatabase(t, HistoryDatabase)
	}
	c.Replica = c.Primary.StartReplica(t)
	c.Primary.WaitCaughtUp(t, c.Replica)
}

// hostDir is the data directory of one process (its "host"): SQLite
// history when not shared, audit log, scratch and backup directories.
func (c *Cluster) hostDir(name string) string {
	d := filepath.Join(c.Dir, "hosts", name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		c.T.Fatal(err)
	}
	return d
}

// HostDir is the data directory of process name ("host-a", "api-1", ...).
func (c *Cluster) HostDir(name string) string { return filepath.Join(c.Dir, "hosts", name) }

// TargetDB is the SQLite database file of a target of GroupedTargets.
func (c *Cluster) TargetDB(name string) string { return filepath.Join(c.Dir, name+".db") }

// WorkerQueue is the task queue whose activity pollers show worker i is up:
// its first target group's queue, or the base queue.
func (c *Cluster) WorkerQueue(i int) string {
	if c.opts.WorkerGroups != nil && len(c.opts.WorkerGroups[i]) > 0 {
		return config.GroupQueue(TaskQueue, c.opts.WorkerGroups[i][0])
	}
	return TaskQueue
}

// ScratchDir is where host keeps scratch instances of target.
func (c *Cluster) ScratchDir(host, target string) string {
	return filepath.Join(c.HostDir(host), "scratch", target)
}

func (c *Cluster) writeConfig() {
	targets := []map[string]any{{
		"name": DemoTarget, "driver": "sqlite", "dsn": c.DemoDB, "quota_bytes": 1 << 30,
		"rto_objective": "5m", "rpo_objective": "1m",
	}}
	if c.opts.Postgres {
		pg := map[string]any{
			"name": PGTarget, "driver": "postgres", "dsn": c.Primary.DSN(PGDatabase),
			"replica_dsns": []string{c.Replica.DSN(PGDatabase)},
			"quota_bytes":  int64(10) << 30, "rto_objective": "5m", "rpo_objective": "5s",
			// The integrity checks need amcheck, which the throwaway
			// cluster does not have until a task creates it.
			"allow_create_extension": true,
		}
		if c.opts.MaxHeavyTasks > 0 {
			pg["max_heavy_tasks"] = c.opts.MaxHeavyTasks
		}
		targets = append(targets, pg)
	}
	names := make([]string, 0, len(c.opts.GroupedTargets))
	for name := range c.opts.GroupedTargets {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		targets = append(targets, map[string]any{
			"name": name, "driver": "sqlite", "dsn": c.TargetDB(name), "group": c.opts.GroupedTargets[name],
			"quota_bytes": 1 << 30,
		})
	}
	history := map[string]any{}
	if c.opts.HistoryOnPostgres {
		history["driver"] = "postgres"
		history["dsn"] = c.Primary.DSN(HistoryDatabase)
	}
	cfg := map[string]any{
		"default_target": DemoTarget,
		"temporal":       map[string]any{"address": c.TemporalAddr, "namespace": Namespace, "task_queue": TaskQueue},
		"history":        history,
		"targets":        targets,
		"auth": map[string]any{"tokens": []map[string]any{{
			"name": "cluster-admin", "sha256": auth.Digest(c.Token), "scopes": []string{api.ScopeAdmin},
		}}},
		"drill": map[string]any{
			"start_approval_timeout":    c.opts.DrillApprovalTimeout.String(),
			"complete_approval_timeout": c.opts.DrillApprovalTimeout.String(),
		},
	}
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		c.T.Fatal(err)
	}
	if err := os.WriteFile(c.ConfigPath, raw, 0o600); err != nil {
		c.T.Fatal(err)
	}
}

// env is the environment of a child: this process's, without the variables
// that would override the shared config, plus extra.
func (c *Cluster) env(extra []string) []string {
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

func (c *Cluster) newProc(name, bin string, args, extraEnv []string) *Process {
	p := newProcess(name, filepath.Join(c.Dir, "logs", name+".log"), bin, args, c.env(extraEnv))
	c.all = append(c.all, p)
	return p
}

func (c *Cluster) startProc(p *Process) {
	c.T.Helper()
	if err := p.start(); err != nil {
		c.T.Fatalf("cluster: %v", err)
	}
}

// teardown kills every process (SIGKILL: nothing of them matters after the
// test) and prints the logs of a failed test.
func (c *Cluster) teardown() {
	for _, p := range c.all {
		if err := p.kill(); err != nil {
			c.T.Logf("cluster: %v", err)
		}
	}
	if c.Temporal != nil {
		c.Temporal.Close()
	}
	// A scratch postmaster a failed drill left on a host's data directory
	// (pg_ctl detaches it from the worker) is stopped too: immediate
	// shutdown of exactly those pids.
	for _, pid := range pidsUnder(filepath.Join(c.Dir, "hosts")) {
		c.T.Logf("cluster: stopping process %d left on a host's data directory", pid)
		_ = syscall.Kill(pid, syscall.SIGQUIT)
	}
	if c.T.Failed() {
		for _, p := range c.all {
			c.T.Logf("---- last lines of %s (%s) ----\n%s", p.Name, p.LogPath, p.tail(60))
		}
	}
}

// pidsUnder lists the processes whose command line names a path under dir.
func pidsUnder(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(raw), dir+"/") {
			out = append(out, pid)
		}
	}
	return out
}

// StopDevServer stops the dev server gracefully (SIGTERM, SIGKILL after
// 20 s) and waits for its port to be free.
func (c *Cluster) StopDevServer() {
	c.T.Helper()
	if err := c.dev.stop(20 * time.Second); err != nil {
		c.T.Fatalf("cluster: stop dev server: %v", err)
	}
	if err := waitPortFree(c.TemporalAddr, 20*time.Second); err != nil {
		c.T.Fatalf("cluster: %v", err)
	}
}

// StartDevServer starts the dev server on its database file and port and
// waits until it answers.
func (c *Cluster) StartDevServer() {
	c.T.Helper()
	c.startProc(c.dev)
	deadline := time.Now().Add(90 * time.Second)
	for {
		tc, err := client.Dial(client.Options{HostPort: c.TemporalAddr, Namespace: Namespace, Logger: quietLogger{}})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = tc.WorkflowService().GetSystemInfo(ctx, nil)
			cancel()
			tc.Close()
			if err == nil {
				return
			}
		}
		if !c.dev.Running() {
			c.T.Fatalf("cluster: dev server exited at start:\n%s", c.dev.tail(40))
		}
		if time.Now().After(deadline) {
			c.T.Fatalf("cluster: dev server does not answer on %s: %v\n%s", c.TemporalAddr, err, c.dev.tail(40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *Cluster) waitAPI(i int) {
	c.T.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = c.APIs[i].Ready(ctx)
		cancel()
		if err == nil {
			return
		}
		if !c.apis[i].Running() {
			c.T.Fatalf("cluster: %s exited at start:\n%s", c.apis[i].Name, c.apis[i].tail(40))
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.T.Fatalf("cluster: %s not ready: %v\n%s", c.apis[i].Name, err, c.apis[i].tail(40))
}

// Worker returns worker i's process.
func (c *Cluster) Worker(i int) *Process { return c.workers[i] }

// APIProc returns API process i.
func (c *Cluster) APIProc(i int) *Process { return c.apis[i] }

// DevServer returns the dev server's process.
func (c *Cluster) DevServer() *Process { return c.dev }

// KillWorker kills worker i with SIGKILL, as a crash or a lost host would.
func (c *Cluster) KillWorker(i int) {
	c.T.Helper()
	if err := c.workers[i].kill(); err != nil {
		c.T.Fatalf("cluster: %v", err)
	}
}

// StopWorker stops worker i gracefully (SIGTERM).
func (c *Cluster) StopWorker(i int) {
	c.T.Helper()
	if err := c.workers[i].stop(30 * time.Second); err != nil {
		c.T.Fatalf("cluster: %v", err)
	}
}

// StartWorker (re)starts worker i with its host id and waits until it polls
// the task queue (a grouped worker: its first group's queue).
func (c *Cluster) StartWorker(i int) {
	c.T.Helper()
	p := c.workers[i]
	queue := c.WorkerQueue(i)
	c.startProc(p)
	prefix := strconv.Itoa(p.Pid()) + "@"
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if !p.Running() {
			c.T.Fatalf("cluster: %s exited at start:\n%s", p.Name, p.tail(40))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		resp, err := c.Temporal.DescribeTaskQueue(ctx, queue, enums.TASK_QUEUE_TYPE_ACTIVITY)
		cancel()
		if err == nil {
			for _, pl := range resp.GetPollers() {
				if strings.HasPrefix(pl.GetIdentity(), prefix) {
					return
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.T.Fatalf("cluster: %s does not poll task queue %s within 60s:\n%s", p.Name, queue, p.tail(40))
}

// WorkerOfIdentity maps a Temporal worker identity ("<pid>@host@queue")
// to the index of the worker process with that pid, or -1.
func (c *Cluster) WorkerOfIdentity(identity string) int {
	pid, _, _ := strings.Cut(identity, "@")
	for i, w := range c.workers {
		if pid != "" && strconv.Itoa(w.Pid()) == pid {
			return i
		}
	}
	for i, h := range c.HostIDs {
		if strings.Contains(identity, h) {
			return i
		}
	}
	return -1
}

// Themisctl runs the themisctl binary with args against API i and returns
// its standard output, standard error and exit error.
func (c *Cluster) Themisctl(i int, args ...string) (string, string, error) {
	cmd := exec.Command(Binary(c.T), args...)
	cmd.Env = c.env([]string{"THEMIS_API_URL=" + c.APIURLs[i], "THEMIS_TOKEN=" + c.Token})
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// quietLogger drops the Temporal client's logs (dev server restarts make
// it complain, as it should).
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
