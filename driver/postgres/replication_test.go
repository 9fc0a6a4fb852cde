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
