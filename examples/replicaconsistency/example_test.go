package replicaconsistency_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/examples/replicaconsistency"
	"github.com/themis-maintenance/themis/health"
	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/testsuite"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

func TestMain(m *testing.M) { testsuite.Main(m) }

// call sends one request to the env's API and decodes the answer into out.
func call(t *testing.T, e *testsuite.Env, method, path, token string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.API.URL+api.BasePath+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		require.NoError(t, json.Unmarshal(raw, out), "%s %s: %s", method, path, raw)
	}
	return resp.StatusCode
}

// The module on the real dev server and a real PostgreSQL primary with a
// streaming replica: the probe in GET /health, the task type in GET
// /task-types, the weekly schedule created through the API and forced to
// run, and the comparison's result.
func TestReplicaConsistencyModule(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL and a Temporal dev server (runs without -short)")
	}
	primary := pgcluster.Start(t, pgcluster.Options{})
	primary.Seed(t, "postgres", pgcluster.SeedOptions{Tables: 3, Rows: 2000})
	primary.Exec(t, "postgres", `CREATE TABLE no_key (v text); INSERT INTO no_key SELECT 'v' || g FROM generate_series(1, 100) g`)
	standby := primary.StartReplica(t)
	primary.WaitCaughtUp(t, standby)

	// Register before the environment starts, as main does before the
	// worker and the API start. The probe reads the env's configuration.
	var e *testsuite.Env
	unregister, err := replicaconsistency.Register(replicaconsistency.Options{
		Targets: func(context.Context) ([]driver.Target, error) { return e.Config.ResolveTargets() },
	})
	require.NoError(t, err)
	t.Cleanup(unregister)
	_, err = replicaconsistency.Register(replicaconsistency.Options{Targets: func(context.Context) ([]driver.Target, error) { return nil, nil }})
	require.ErrorIs(t, err, domain.ErrTaskRegistered, "a second Register is refused")

	e = testsuite.NewEnv(t, testsuite.EnvOptions{ExtraTargets: []config.TargetConfig{{
		Name: "orders", Driver: "postgres", DSN: primary.DSN("postgres"), ReplicaDSNs: []string{standby.DSN("postgres")},
	}}})
	ctx, cancel := context.WithCancel(context.Background())
	probesDone := make(chan struct{})
	go func() { defer close(probesDone); e.Service.RunHealthProbes(ctx) }()
	t.Cleanup(func() { cancel(); <-probesDone })
	read, write := e.Token(api.ScopeRead), e.Token(api.ScopeWrite)

	// GET /health lists the probe, healthy, with the replica's lag.
	var sig api.HealthSignal
	deadline := time.Now().Add(30 * time.Second)
	for {
		var rep api.HealthReport
		require.Equal(t, http.StatusOK, call(t, e, "GET", "/health", read, nil, &rep))
		i := slices.IndexFunc(rep.Modules, func(m api.HealthSignal) bool { return m.Name == replicaconsistency.ProbeName })
		if i >= 0 && rep.Modules[i].Status != string(health.Unknown) {
			sig = rep.Modules[i]
			break
		}
		require.True(t, time.Now().Before(deadline), "no %s signal in /health: %+v", replicaconsistency.ProbeName, rep.Modules)
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("probe: %s %q %v", sig.Status, sig.Message, sig.Details)
	require.Equal(t, string(health.OK), sig.Status, sig.Message)
	require.Contains(t, sig.Details, "max_lag_ms")
	replicas := sig.Details["replicas"].([]any)
	require.Len(t, replicas, 1)
	r0 := replicas[0].(map[string]any)
	require.Equal(t, "orders", r0["target"])
	require.Equal(t, fmt.Sprintf("127.0.0.1:%d", standby.Port), r0["replica"])
	require.Less(t, r0["lag_ms"].(float64), 1000.0)
	require.Equal(t, 1000.0, sig.Details["degraded_lag_ms"])
	require.Equal(t, 5000.0, sig.Details["critical_lag_ms"])

	// GET /task-types: the registration, run by the postgres engine only.
	var tl api.TaskTypeList
	require.Equal(t, http.StatusOK, call(t, e, "GET", "/task-types", read, nil, &tl))
	i := slices.IndexFunc(tl.TaskTypes, func(ti api.TaskTypeInfo) bool { return ti.Name == string(replicaconsistency.TaskType) })
	require.GreaterOrEqual(t, i, 0, "GET /task-types lacks %s", replicaconsistency.TaskType)
	tt := tl.TaskTypes[i]
	require.Equal(t, "Replica consistency check", tt.Title)
	// The worker's capabilities (what `themisctl serve` passes the API as
	// the drivers of each task type): the postgres engine runs it.
	require.Equal(t, []string{"postgres"}, e.Deps.Registry.Capabilities()[replicaconsistency.TaskType])
	require.Equal(t, "short", tt.Timeout)
	require.False(t, tt.Heavy)
	require.Equal(t, float64(1000), tt.Options["max_lag_ms"].Default)

	// The weekly schedule through the API; the option bounds are the
	// registration's.
	spec := replicaconsistency.WeeklySchedule("orders")
	spec.Name = fmt.Sprintf("%s %d", spec.Name, time.Now().UnixNano())
	var sc domain.Schedule
	require.Equal(t, http.StatusCreated, call(t, e, "POST", "/schedules", write, spec, &sc))
	t.Cleanup(func() { _ = e.Service.DeleteSchedule(context.Background(), sc.ID, "test") })
	require.Equal(t, "0 4 * * 0", sc.CronExpression)
	require.False(t, sc.Enabled)
	require.Equal(t, []domain.TaskType{replicaconsistency.TaskType}, sc.Tasks)
	require.Equal(t, http.StatusBadRequest, call(t, e, "PATCH", "/schedules/"+sc.ID, write,
		map[string]any{"task_options": map[string]any{string(replicaconsistency.TaskType): map[string]any{"sample_rows": -1}}}, nil))

	// A forced run compares the four tables on the replica.
	job, err := e.Service.RunSchedule(context.Background(), sc.ID, true, "test")
	require.NoError(t, err)
	job = e.WaitJob(job.ID, 2*time.Minute, testsuite.Terminal)
	require.Equal(t, domain.StateSucceeded, job.State, job.ErrorMessage)
	task := job.Tasks[0]
	t.Logf("task: %s", task.ResultSummary)
	require.Equal(t, domain.StateSucceeded, task.State, task.ErrorMessage)
	require.Equal(t, "1 replica(s), 4 table(s): 4 consistent, 0 mismatched, 0 busy, 0 lagging", task.ResultSummary)
	require.Equal(t, 100.0, task.ProgressPct)
	tables := task.Details["tables"].([]any)
	require.Len(t, tables, 4)
	var keyed, countOnly int
	for _, raw := range tables {
		tr := raw.(map[string]any)
		p, r := tr["primary"].(map[string]any), tr["on_replica"].(map[string]any)
		require.Equal(t, p, r, "%s", tr["table"])
		if p["checksum"] != nil {
			keyed++
		} else {
			countOnly++
			require.Equal(t, "public.no_key", tr["table"])
			require.Equal(t, 100.0, p["rows"])
		}
	}
	require.Equal(t, 3, keyed)
	require.Equal(t, 1, countOnly)
	require.NotContains(t, fmt.Sprint(task.Details), "password")

	// With replay paused on the replica, it cannot catch up: every table
	// is reported lagging (HIGH alerts) and the task still succeeds.
	require.Equal(t, http.StatusOK, call(t, e, "PATCH", "/schedules/"+sc.ID, write,
		map[string]any{"task_options": map[string]any{string(replicaconsistency.TaskType): map[string]any{"catchup_timeout_s": 1}}}, nil))
	standby.Exec(t, "postgres", `SELECT pg_wal_replay_pause()`)
	t.Cleanup(func() { _ = standby.ExecContext(context.Background(), "postgres", `SELECT pg_wal_replay_resume()`) })
	primary.Exec(t, "postgres", `INSERT INTO no_key VALUES ('after pause')`)
	job, err = e.Service.RunSchedule(context.Background(), sc.ID, true, "test")
	require.NoError(t, err)
	job = e.WaitJob(job.ID, 2*time.Minute, testsuite.Terminal)
	require.Equal(t, domain.StateSucceeded, job.State, job.ErrorMessage)
	t.Logf("paused: %s", job.Tasks[0].ResultSummary)
	require.Equal(t, "1 replica(s), 4 table(s): 0 consistent, 0 mismatched, 0 busy, 4 lagging", job.Tasks[0].ResultSummary)
}

// The probe against real servers: a replica is ok, an address nobody
// listens on and a server that is not a standby are critical, each with a
// message naming it; a target without replica_dsns is measured through its
// primary's pg_stat_replication.
func TestProbeOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL (runs without -short)")
	}
	primary := pgcluster.Start(t, pgcluster.Options{})
	standby := primary.StartReplica(t)
	primary.WaitCaughtUp(t, standby)
	targets := []driver.Target{{Name: "orders", Driver: "postgres", DSN: primary.DSN("postgres"), ReplicaDSNs: []string{standby.DSN("postgres")}}}
	probe := func() health.Signal {
		p, err := replicaconsistency.NewProbe(func(context.Context) ([]driver.Target, error) { return targets, nil }, replicaconsistency.ProbeOptions{})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return p.Check(ctx)
	}

	sig := probe()
	require.Equal(t, health.OK, sig.Status, sig.Message)
	require.Equal(t, "1 replica(s), max lag 0 ms", sig.Message)

	// Through the primary's view only.
	targets[0].ReplicaDSNs = nil
	deadline := time.Now().Add(15 * time.Second)
	for sig = probe(); sig.Status != health.OK && time.Now().Before(deadline); sig = probe() {
		time.Sleep(200 * time.Millisecond)
	}
	require.Equal(t, health.OK, sig.Status, sig.Message)
	require.Len(t, sig.Details["replicas"], 1)

	// Replay paused on the standby while the primary commits: the lag
	// grows past 1000 ms (degraded), then past 5000 ms (critical).
	targets[0].ReplicaDSNs = []string{standby.DSN("postgres")}
	primary.Exec(t, "postgres", `CREATE TABLE tick (at timestamptz DEFAULT now())`)
	primary.WaitCaughtUp(t, standby)
	standby.Exec(t, "postgres", `SELECT pg_wal_replay_pause()`)
	t.Cleanup(func() { _ = standby.ExecContext(context.Background(), "postgres", `SELECT pg_wal_replay_resume()`) })
	primary.Exec(t, "postgres", `INSERT INTO tick DEFAULT VALUES`)
	seen := map[health.Status]bool{}
	deadline = time.Now().Add(20 * time.Second)
	for !seen[health.Critical] && time.Now().Before(deadline) {
		sig = probe()
		seen[sig.Status] = true
		if sig.Status == health.Degraded {
			require.Contains(t, sig.Message, fmt.Sprintf("orders 127.0.0.1:%d: lag ", standby.Port))
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.True(t, seen[health.Degraded] && seen[health.Critical], "statuses seen: %v (last %q)", seen, sig.Message)
	standby.Exec(t, "postgres", `SELECT pg_wal_replay_resume()`)
	primary.WaitCaughtUp(t, standby)
	require.Equal(t, health.OK, probe().Status)

	// A replica that is not there, and one that is a primary.
	targets[0].ReplicaDSNs = []string{standby.DSN("postgres"), "postgres://postgres@127.0.0.1:1/postgres", primary.DSN("postgres")}
	sig = probe()
	require.Equal(t, health.Critical, sig.Status)
	require.Contains(t, sig.Message, "orders 127.0.0.1:1: unreachable: ")
	require.Contains(t, sig.Message, fmt.Sprintf("orders 127.0.0.1:%d: unreachable: server is not in recovery", primary.Port))
	require.NotContains(t, sig.Message, fmt.Sprintf("127.0.0.1:%d:", standby.Port), "the healthy replica is not named")
}
