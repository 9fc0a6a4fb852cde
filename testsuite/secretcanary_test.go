package testsuite

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres"
	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/internal/daemon"
	"github.com/themis-maintenance/themis/internal/temporalclient"
	"github.com/themis-maintenance/themis/starter"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
	"github.com/themis-maintenance/themis/worker"
)

// lockedBuffer is a log sink written by many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// procScanner reads /proc/*/cmdline and /proc/*/environ of every other
// process while tasks run, and keeps where it saw the secret and which
// PostgreSQL programs (from binDir) it inspected.
type procScanner struct {
	secret, binDir string
	stop           chan struct{}
	done           chan struct{}

	mu       sync.Mutex
	leaks    []string
	programs map[string]int
}

func startProcScanner(secret, binDir string) *procScanner {
	s := &procScanner{secret: secret, binDir: binDir, stop: make(chan struct{}), done: make(chan struct{}), programs: map[string]int{}}
	self := strconv.Itoa(os.Getpid())
	seen := map[string]bool{}
	go func() {
		defer close(s.done)
		for {
			entries, _ := os.ReadDir("/proc")
			for _, e := range entries {
				pid := e.Name()
				if pid == self || pid[0] < '0' || pid[0] > '9' {
					continue
				}
				exe, _ := os.Readlink(filepath.Join("/proc", pid, "exe"))
				for _, f := range []string{"cmdline", "environ"} {
					b, err := os.ReadFile(filepath.Join("/proc", pid, f))
					if err == nil && bytes.Contains(b, []byte(s.secret)) {
						// Say where, never the secret itself (test output is a log too).
						where := ""
						for _, kv := range bytes.Split(b, []byte{0}) {
							if bytes.Contains(kv, []byte(s.secret)) {
								k, _, _ := bytes.Cut(kv, []byte("="))
								where = string(k)
								if f == "cmdline" {
									where = "an argument"
								}
							}
						}
						s.mu.Lock()
						s.leaks = append(s.leaks, fmt.Sprintf("/proc/%s/%s (%s): %s", pid, f, exe, where))
						s.mu.Unlock()
					}
				}
				if strings.HasPrefix(exe, s.binDir+"/") && !seen[pid+exe] {
					seen[pid+exe] = true
					s.mu.Lock()
					s.programs[filepath.Base(exe)]++
					s.mu.Unlock()
				}
			}
			select {
			case <-s.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *procScanner) finish() ([]string, map[string]int) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leaks, s.programs
}

// TestSecretCanary puts a unique password on the role of a PostgreSQL
// target, in the primary's DSN (from an environment variable) and a
// replica's (from a file), runs every PostgreSQL task (some of them fail:
// creating amcheck is not allowed) and a drill, and then looks for the
// password everywhere the system writes: Temporal histories, memos and
// search attributes of every workflow and schedule, worker, starter and API
// logs, API responses, the audit log and history store (every file under
// the data directory), and the argument lists and environments of every
// process that ran meanwhile.
func TestSecretCanary(t *testing.T) {
	srv := Temporal(t) // started before the secret is in this process's environment
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	secret := "Canary" + hex.EncodeToString(rnd[:])

	primary := pgcluster.Start(t, pgcluster.Options{})
	primary.Seed(t, "postgres", pgcluster.SeedOptions{Tables: 2, Rows: 3000})
	standby := primary.StartReplica(t)
	// Without pg_stat_statements recording the CREATE ROLE text.
	primary.Exec(t, "postgres", "SET pg_stat_statements.track_utility = off; CREATE ROLE canary LOGIN SUPERUSER REPLICATION PASSWORD '"+secret+"'")
	primary.RequirePassword(t, "canary")
	primary.WaitCaughtUp(t, standby)
	standby.RequirePassword(t, "canary")

	t.Setenv("THEMIS_CANARY_PRIMARY_DSN", primary.DSNAs("postgres", "canary", secret))
	replicaFile := filepath.Join(t.TempDir(), "replica.dsn")
	require.NoError(t, os.WriteFile(replicaFile, []byte(standby.DSNAs("postgres", "canary", secret)+"\n"), 0o600))

	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	oldDefault := slog.Default()
	slog.SetDefault(logger)
	t.Cleanup(func() { slog.SetDefault(oldDefault) })

	dir := t.TempDir()
	queue := fmt.Sprintf("themis-canary-%d", time.Now().UnixNano())
	scratch, backups := reachableDir(t), reachableDir(t)
	cfg := &config.Config{
		DataDir:  dir,
		Temporal: config.TemporalConfig{Address: srv.FrontendHostPort(), Namespace: "default", TaskQueue: queue},
		Targets: []config.TargetConfig{{
			Name: "orders", Driver: "postgres", DSNEnv: "THEMIS_CANARY_PRIMARY_DSN", ReplicaDSNFiles: []string{replicaFile},
			QuotaBytes: 1 << 30, BackupDir: backups, ScratchDir: scratch, WALArchiveDir: primary.ArchiveDir,
			RTOObjective: config.Duration(5 * time.Minute), RPOObjective: config.Duration(5 * time.Second),
		}},
		DefaultTarget: "orders",
	}
	tokens, tokenCfgs := apitest.ScopeTokens(t)
	cfg.Auth.Tokens = tokenCfgs
	cfg.ApplyDefaults()
	require.NoError(t, cfg.Validate())

	copts, err := temporalclient.Options(cfg.Temporal, logger)
	require.NoError(t, err)
	copts.Logger = sdklog.NewStructuredLogger(logger)
	c, err := client.Dial(copts)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	pg := postgres.New()
	t.Cleanup(pg.Close)
	deps, err := daemon.NewWorkerDeps(cfg, nil, []driver.Driver{pg})
	require.NoError(t, err)
	deps.Activities.HeartbeatInterval = 200 * time.Millisecond
	t.Cleanup(func() { _ = deps.Close() })
	ctx := context.Background()
	require.NoError(t, starter.EnsureSearchAttributes(ctx, c, "default"))
	probes, err := daemon.BuiltinProbes(c, cfg, deps.Registry, deps.History)
	require.NoError(t, err)
	svc := starter.New(c, starter.Options{
		Namespace: "default", TaskQueue: queue, Address: srv.FrontendHostPort(),
		Targets: cfg.TargetInfos(), DefaultTarget: "orders",
		DrillCanaryInterval: 100 * time.Millisecond, DrillCanaryDuration: 2 * time.Second,
		Capabilities: deps.Registry.Capabilities(), HealthProbes: probes, Logger: logger,
	})
	e := &Env{T: t, Client: c, Config: cfg, Service: svc, Deps: deps, TaskQueue: queue, tokens: tokens}
	w := worker.New(c, queue, deps.Activities, worker.Options{StopTimeout: -1})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	h, err := daemon.Handler(svc, cfg, nil, logger, daemon.HandlerOptions{})
	require.NoError(t, err)
	e.API = httptest.NewServer(h)
	t.Cleanup(e.API.Close)

	var responses bytes.Buffer
	get := func(path, token string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, e.API.URL+"/api/v1/maintenance"+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(&responses, "GET %s %d %s\n", path, resp.StatusCode, body)
	}

	scanner := startProcScanner(secret, primary.BinDir)

	// Every task PostgreSQL supports, in one job.
	var tasks []domain.TaskType
	for task, drivers := range deps.Registry.Capabilities() {
		for _, d := range drivers {
			if d == postgres.Name && task != domain.TaskDisasterRecoveryDrill {
				tasks = append(tasks, task)
			}
		}
	}
	sort.Slice(tasks, func(i, j int) bool { return tasks[i] < tasks[j] })
	require.GreaterOrEqual(t, len(tasks), 15)
	spec := domain.NewScheduleSpec("orders")
	spec.Name = "canary " + queue
	spec.Tasks = tasks
	spec.Enabled = false
	sc, err := svc.CreateSchedule(ctx, spec, "alice")
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.DeleteSchedule(context.Background(), sc.ID, "alice") })
	job, err := svc.RunSchedule(ctx, sc.ID, true, "alice")
	require.NoError(t, err)
	job = e.WaitJob(job.ID, 10*time.Minute, Terminal)
	failed := 0
	for _, tr := range job.Tasks {
		t.Logf("%-28s %-9s %s", tr.TaskType, tr.State, tr.ResultSummary+tr.ErrorMessage)
		if tr.State == domain.StateFailed {
			failed++
		}
	}
	require.Positive(t, failed, "a failing task is part of the canary (consistency_check without amcheck)")

	// pg_dump and pg_restore too: backup_verification by method pg_dump.
	dump := domain.NewScheduleSpec("orders")
	dump.Name = "canary dump " + queue
	dump.Tasks = []domain.TaskType{domain.TaskBackupVerification}
	dump.TaskOptions = map[domain.TaskType]domain.TaskOptions{domain.TaskBackupVerification: {"method": "pg_dump"}}
	dump.Enabled = false
	dsc, err := svc.CreateSchedule(ctx, dump, "alice")
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.DeleteSchedule(context.Background(), dsc.ID, "alice") })
	djob, err := svc.RunSchedule(ctx, dsc.ID, true, "alice")
	require.NoError(t, err)
	djob = e.WaitJob(djob.ID, 5*time.Minute, Terminal)
	for _, tr := range djob.Tasks {
		t.Logf("%-28s %-9s %s", tr.TaskType+" (pg_dump)", tr.State, tr.ResultSummary+tr.ErrorMessage)
	}
	require.Equal(t, domain.StateSucceeded, djob.State, djob.ErrorMessage)

	// A drill, approved at both steps.
	d, err := svc.StartDrill(ctx, "orders", "alice")
	require.NoError(t, err)
	e.waitDrill(d.ID, time.Minute, awaiting(domain.ApprovalStart))
	_, err = svc.DecideDrill(ctx, d.ID, true, domain.ApprovalStart, "go", "alice")
	require.NoError(t, err)
	mid := e.waitDrill(d.ID, 4*time.Minute, func(d domain.Drill) bool { return d.Awaiting == domain.ApprovalComplete || d.FinishedAtMs > 0 })
	if mid.Awaiting == domain.ApprovalComplete {
		_, err = svc.DecideDrill(ctx, d.ID, true, domain.ApprovalComplete, "checked", "bob")
		require.NoError(t, err)
	}
	done := e.waitDrill(d.ID, 3*time.Minute, finished)
	t.Logf("drill %s: %s (restored from %s)", done.State, done.Reason, done.RestoredFrom)

	for _, p := range []string{"/targets", "/status", "/health", "/task-types", "/schedules", "/schedules/" + sc.ID,
		"/jobs", "/jobs/" + job.ID, "/jobs/" + djob.ID, "/drills", "/drills/" + d.ID} {
		get(p, tokens[api.ScopeRead])
	}
	get("/audit", tokens[api.ScopeAdmin])

	procLeaks, programs := scanner.finish()
	t.Logf("PostgreSQL programs inspected while they ran: %v", programs)
	require.NotZero(t, programs["pg_basebackup"], "the /proc scan saw pg_basebackup run")
	require.NotZero(t, programs["pg_dump"], "the /proc scan saw pg_dump run")

	// Everything Temporal holds about this test's workflows and schedule.
	var temporalText strings.Builder
	workflows := 0
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: "default", Query: fmt.Sprintf("TaskQueue = %q", queue), NextPageToken: token})
		require.NoError(t, err)
		for _, info := range resp.Executions {
			workflows++
			temporalText.WriteString(info.String())
			desc, err := c.DescribeWorkflowExecution(ctx, info.Execution.WorkflowId, info.Execution.RunId)
			require.NoError(t, err)
			temporalText.WriteString(desc.String())
			it := c.GetWorkflowHistory(ctx, info.Execution.WorkflowId, info.Execution.RunId, false, 0)
			for it.HasNext() {
				ev, err := it.Next()
				require.NoError(t, err)
				temporalText.WriteString(ev.String())
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	if sd, err := c.ScheduleClient().GetHandle(ctx, sc.ID).Describe(ctx); err == nil {
		fmt.Fprintf(&temporalText, "%+v", sd)
	}
	require.GreaterOrEqual(t, workflows, 2, "the job's and the drill's workflows")

	// The data directory: history store (SQLite and its WAL), audit log.
	var files strings.Builder
	nfiles := 0
	require.NoError(t, filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		nfiles++
		if bytes.Contains(b, []byte(secret)) {
			files.WriteString(p + " ")
		}
		return nil
	}))

	t.Logf("scanned: %d workflows (%d bytes of history, memo and search attributes), %d bytes of logs, %d bytes of API responses, %d files under the data directory",
		workflows, temporalText.Len(), len(logs.String()), responses.Len(), nfiles)
	assertAbsent(t, "Temporal histories, memos or search attributes", temporalText.String(), secret)
	assertAbsent(t, "worker, starter or API logs", logs.String(), secret)
	assertAbsent(t, "API responses", responses.String(), secret)
	require.Empty(t, files.String(), "files under the data directory (history store, audit log) hold the secret")
	require.Empty(t, procLeaks, "process argument lists or environments")
	// The scans looked at something.
	require.Contains(t, responses.String(), "GET /jobs/"+job.ID+" 200")
	require.Contains(t, responses.String(), "GET /audit 200")
	require.NotEmpty(t, logs.String())
}

// assertAbsent fails t when secret is in haystack, showing where with the
// secret masked (the test's output must not leak it either).
func assertAbsent(t *testing.T, what, haystack, secret string) {
	t.Helper()
	i := strings.Index(haystack, secret)
	if i < 0 {
		return
	}
	from, to := max(0, i-120), min(len(haystack), i+len(secret)+120)
	t.Errorf("the secret is in %s (%d times), e.g. at byte %d: %q", what, strings.Count(haystack, secret), i,
		strings.ReplaceAll(haystack[from:to], secret, "<SECRET>"))
}
