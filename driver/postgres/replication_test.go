package postgres_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

func jsonString(res driver.Result) (string, error) {
	b, err := json.Marshal(res)
	return string(b), err
}

// replicas returns the replica entries of replica_validation details.
func replicas(t *testing.T, res driver.Result) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range detailsJSON(t, res)["replicas"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

func TestReplicaValidationDetectsLag(t *testing.T) {
	t.Parallel()
	p := pgcluster.Start(t, pgcluster.Options{})
	r := p.StartReplica(t)
	p.CreateDatabase(t, "app")
	p.Exec(t, "app", `CREATE TABLE public.events (id serial PRIMARY KEY, at timestamptz DEFAULT now())`)
	p.Exec(t, "app", `INSERT INTO public.events DEFAULT VALUES`)
	p.WaitCaughtUp(t, r)

	e := newEnv(t, p, "app")
	e.target.ReplicaDSNs = []string{r.DSN("app")}
	res := e.mustRun(domain.TaskReplicaValidation, nil)
	t.Log(res.Summary)
	reps := replicas(t, res)
	if len(reps) != 2 || reps[0]["source"] != "pg_stat_replication" || reps[1]["source"] != "replica_dsn" {
		t.Fatalf("replicas %v", reps)
	}
	if detailsJSON(t, res)["status"] != "ok" || len(res.Alerts) != 0 {
		t.Fatalf("caught-up replica: %s %+v", res.Summary, res.Alerts)
	}

	// Pause replay on the standby, then write on the primary: the standby
	// receives the WAL but does not apply it, and its lag grows.
	r.Exec(t, "app", `SELECT pg_wal_replay_pause()`)
	p.Exec(t, "app", `INSERT INTO public.events DEFAULT VALUES`)
	time.Sleep(1500 * time.Millisecond)
	p.Exec(t, "app", `INSERT INTO public.events DEFAULT VALUES`)
	time.Sleep(300 * time.Millisecond)

	res = e.mustRun(domain.TaskReplicaValidation, domain.TaskOptions{"degraded_lag_ms": int64(1000), "critical_lag_ms": int64(60000)})
	t.Log(res.Summary)
	direct := replicas(t, res)[1]
	if direct["status"] != "degraded" || direct["replay_paused"] != true || direct["lag_ms"].(float64) <= 1000 {
		t.Errorf("paused replica seen directly: %v", direct)
	}
	if !hasAlert(res, domain.AlertWarning, direct["name"].(string)) {
		t.Errorf("no WARNING alert: %+v", res.Alerts)
	}
	if from := replicas(t, res)[0]; from["lag_bytes"].(float64) <= 0 {
		t.Errorf("primary's view shows no bytes behind: %v", from)
	}

	res = e.mustRun(domain.TaskReplicaValidation, domain.TaskOptions{"degraded_lag_ms": int64(200), "critical_lag_ms": int64(1000)})
	if !hasAlert(res, domain.AlertCritical, direct["name"].(string)) || detailsJSON(t, res)["status"] != "critical" {
		t.Errorf("critical lag: %s %+v", res.Summary, res.Alerts)
	}

	// The standby as the target itself.
	se := newEnv(t, r, "app")
	res = se.mustRun(domain.TaskReplicaValidation, domain.TaskOptions{"degraded_lag_ms": int64(200), "critical_lag_ms": int64(1000)})
	t.Log(res.Summary)
	if d := detailsJSON(t, res); d["role"] != "standby" || d["status"] != "critical" {
		t.Errorf("standby target: %v", d)
	}

	// An unreachable configured replica is critical, and the task still succeeds.
	e.target.ReplicaDSNs = []string{"postgres://postgres:pw@127.0.0.1:1/app?sslmode=disable&connect_timeout=2"}
	res = e.mustRun(domain.TaskReplicaValidation, nil)
	if !hasAlert(res, domain.AlertCritical, "127.0.0.1:1") {
		t.Errorf("unreachable replica: %s %+v", res.Summary, res.Alerts)
	}
	if s, _ := jsonString(res); strings.Contains(s, "pw@") {
		t.Errorf("result leaks the replica DSN: %s", s)
	}

	r.Exec(t, "app", `SELECT pg_wal_replay_resume()`)
	p.WaitCaughtUp(t, r)
}

// A standby listed in replica_dsns that streams from the primary is also a
// row of its pg_stat_replication: one replica, seen twice.
func TestReplicaValidationCountsEachStandbyOnce(t *testing.T) {
	t.Parallel()
	p := pgcluster.Start(t, pgcluster.Options{})
	r1 := p.StartReplica(t)
	p.CreateDatabase(t, "app")
	p.WaitCaughtUp(t, r1)

	e := newEnv(t, p, "app")
	e.target.ReplicaDSNs = []string{r1.DSN("app")}
	res := e.mustRun(domain.TaskReplicaValidation, nil)
	t.Log(res.Summary)
	if want := "primary with 1 replica(s): 1 ok, 0 degraded, 0 critical, 0 unreachable"; res.Summary != want {
		t.Errorf("summary %q, want %q", res.Summary, want)
	}
	d := detailsJSON(t, res)
	reps := replicas(t, res)
	if d["standbys"] != 1.0 || len(reps) != 2 {
		t.Fatalf("standbys %v, replicas %v", d["standbys"], reps)
	}
	if reps[1]["source"] != "replica_dsn" || reps[1]["same_standby_as"] != reps[0]["name"] ||
		reps[0]["walsender_pid"] == nil || reps[1]["walsender_pid"] != reps[0]["walsender_pid"] {
		t.Errorf("the replica_dsn view is not linked to the primary's: %v", reps)
	}

	// Two standbys with the same application name and address, both
	// listed, and an unreachable one: three replicas, each view linked to
	// a walsender of its own.
	r2 := p.StartReplica(t)
	p.WaitCaughtUp(t, r2)
	e.target.ReplicaDSNs = []string{r1.DSN("app"), r2.DSN("app"), "postgres://postgres:pw@127.0.0.1:1/app?sslmode=disable&connect_timeout=2"}
	res = e.mustRun(domain.TaskReplicaValidation, nil)
	t.Log(res.Summary)
	if want := "primary with 3 replica(s): 2 ok, 0 degraded, 0 critical, 1 unreachable"; res.Summary != want {
		t.Errorf("summary %q, want %q", res.Summary, want)
	}
	pids := map[any]bool{}
	for _, rep := range replicas(t, res) {
		if rep["source"] == "replica_dsn" && rep["status"] != "unreachable" {
			if rep["same_standby_as"] == nil || rep["walsender_pid"] == nil {
				t.Errorf("replica %v not linked", rep)
			}
			pids[rep["walsender_pid"]] = true
		}
	}
	if len(pids) != 2 {
		t.Errorf("the two standbys were linked to %d walsender(s), want 2: %v", len(pids), replicas(t, res))
	}
	if detailsJSON(t, res)["standbys"] != 3.0 {
		t.Errorf("standbys %v", detailsJSON(t, res)["standbys"])
	}
}
