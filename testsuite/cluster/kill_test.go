package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"

	apiclient "github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver/postgres"
)

// killResult is what killMidTask measured.
type killResult struct {
	job         domain.Job
	killed      int // index of the killed worker
	resumedBy   int // index of the worker that ran the next attempt (-1: not seen)
	doneAtKill  int
	killToRetry time.Duration // kill → next attempt started on a worker
	sawAttempt1 bool          // a backend named themis:<job>:<task>:a1 was seen before the kill
	a1AfterKill time.Duration // how long after the kill an a1 backend was still seen (0: never)
	a1AtEnd     []session     // a1 backends left when the job ended
}

// killMidTask runs schedule sc's job through api-1, waits until progress()
// reaches threshold while task runs, SIGKILLs the worker running it, and
// follows the job to its end on the other worker.
func killMidTask(t *testing.T, c *Cluster, sc domain.Schedule, task domain.TaskType, progress func() int, threshold int) killResult {
	t.Helper()
	ctx := context.Background()
	job, err := c.APIs[0].RunSchedule(ctx, sc.ID, true)
	if err != nil {
		t.Fatalf("run %s: %v", sc.Name, err)
	}
	conn := c.Primary.Conn(t, PGDatabase)
	res := killResult{killed: -1, resumedBy: -1}
	ours := func(s session, attempt int) bool {
		return s.appName == postgres.SessionName(job.ID, task, attempt)
	}
	noteA1 := func() bool {
		ss, err := themisSessions(ctx, conn, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			if ours(s, 1) {
				return true
			}
		}
		return false
	}

	deadline := time.Now().Add(3 * time.Minute)
	var identity string
	for {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not reach %d done within 3 minutes (at %d)", task, threshold, progress())
		}
		if noteA1() {
			res.sawAttempt1 = true
		}
		typ, attempt, id, err := c.PendingActivity(job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if typ == string(task) && attempt == 1 && id != "" && progress() >= threshold {
			identity = id
			break
		}
		if j, err := c.APIs[0].GetJob(ctx, job.ID); err == nil && j.State.Terminal() {
			t.Fatalf("job ended (%s) before the kill: %s is too quick to be killed mid-way (%d done): %s", j.State, task, progress(), TaskLine(j))
		}
		time.Sleep(50 * time.Millisecond)
	}
	res.killed = c.WorkerOfIdentity(identity)
	if res.killed < 0 {
		t.Fatalf("the running %s is on worker %q, not one of the cluster's processes", task, identity)
	}
	killAt := time.Now()
	c.KillWorker(res.killed)
	res.doneAtKill = progress()
	t.Logf("killed worker %s (SIGKILL) during %s of job %s at %d done", c.HostIDs[res.killed], task, job.ID, res.doneAtKill)

	// Follow the retry: when it starts, on which worker; whether a backend
	// of the dead attempt is still there.
	for time.Now().Before(killAt.Add(5 * time.Minute)) {
		if noteA1() {
			res.a1AfterKill = time.Since(killAt)
		}
		if res.killToRetry == 0 {
			desc, err := c.Temporal.DescribeWorkflowExecution(ctx, job.ID, "")
			if err != nil {
				t.Fatal(err)
			}
			for _, pa := range desc.GetPendingActivities() {
				if pa.GetActivityType().GetName() == string(task) && pa.GetAttempt() >= 2 && pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
					res.killToRetry = time.Since(killAt)
					res.resumedBy = c.WorkerOfIdentity(pa.GetLastWorkerIdentity())
				}
			}
		}
		j, err := c.APIs[1].GetJob(ctx, job.ID)
		if err == nil && j.State.Terminal() {
			res.job = j
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !res.job.State.Terminal() {
		t.Fatalf("job %s did not end within 5 minutes of the kill", job.ID)
	}
	ss, err := themisSessions(ctx, conn, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if ours(s, 1) {
			res.a1AtEnd = append(res.a1AtEnd, s)
		}
	}
	return res
}

// checkKill asserts what every kill test must see and logs the figures.
func checkKill(t *testing.T, c *Cluster, task domain.TaskType, res killResult) {
	t.Helper()
	var tr domain.TaskRun
	for _, x := range res.job.Tasks {
		if x.TaskType == task {
			tr = x
		}
	}
	t.Logf("%s kill test: job %s %s in %d ms; task attempt %d; killed %s at %d done; next attempt started %.1f s after the kill on %s; a1 backend seen %.1f s after the kill; a1 backends at the end %d",
		task, res.job.ID, res.job.State, res.job.DurationMs, tr.Attempt, c.HostIDs[res.killed], res.doneAtKill,
		res.killToRetry.Seconds(), hostName(c, res.resumedBy), res.a1AfterKill.Seconds(), len(res.a1AtEnd))
	if res.job.State != domain.StateSucceeded {
		t.Errorf("job %s ended %s, want succeeded: %s (%s)", res.job.ID, res.job.State, res.job.ErrorMessage, TaskLine(res.job))
	}
	if tr.Attempt < 2 {
		t.Errorf("%s finished in attempt %d: the kill did not interrupt it (harness timing)", task, tr.Attempt)
	}
	if res.killToRetry == 0 {
		t.Errorf("no second attempt of %s was seen running after the kill", task)
	} else if res.resumedBy == res.killed {
		t.Errorf("the retry ran on the killed worker %s", c.HostIDs[res.killed])
	}
	if !res.sawAttempt1 {
		t.Errorf("no backend named themis:<job>:%s:a1 was seen on %s while the task ran: sessions do not carry application_name themis:<job>:<task>:a<attempt>", task, PGDatabase)
	}
	for _, s := range res.a1AtEnd {
		t.Errorf("backend %d of the dead attempt is still on the server: %q %s %q", s.pid, s.appName, s.state, s.query)
	}
	if res.a1AfterKill > 0 && res.killToRetry > 0 && res.a1AfterKill > res.killToRetry+2*time.Second {
		t.Errorf("a backend of the dead attempt was still busy %.1f s after the kill, %.1f s after the retry started: the retry does not cancel it",
			res.a1AfterKill.Seconds(), (res.a1AfterKill - res.killToRetry).Seconds())
	}
}

func hostName(c *Cluster, i int) string {
	if i < 0 || i >= len(c.HostIDs) {
		return "?"
	}
	return c.HostIDs[i]
}

// kill -9 of the worker running mvcc_cleanup over 100 tables, then of the
// one running REINDEX CONCURRENTLY on them (one cluster for both, to keep
// the package quick).
func TestKillWorkerMidTask(t *testing.T) {
	t.Parallel()
	c := Start(t, Options{Postgres: true, HistoryOnPostgres: true})
	tables := seedTables(t, c, 100, 10000)
	killDuringMVCCCleanup(t, c, tables)
	// The killed worker comes back; the next kill may hit either.
	for i := range c.HostIDs {
		if !c.Worker(i).Running() {
			c.StartWorker(i)
		}
	}
	killDuringIndexRebuild(t, c, tables)
}

// The other worker finishes mvcc_cleanup from the checkpoint and no table
// is vacuumed twice.
func killDuringMVCCCleanup(t *testing.T, c *Cluster, tables []string) {
	// Cost-based delay makes each VACUUM take ~100 ms, so the task runs
	// long enough to be killed mid-way.
	slowVacuum(t, c)
	before := vacuumCounts(t, c)
	sc := c.CreateSchedule(0, apiclient.ScheduleInput{
		Name: "Kill during vacuum", Target: PGTarget, Tasks: []domain.TaskType{domain.TaskMVCCCleanup},
		TaskOptions: map[domain.TaskType]domain.TaskOptions{domain.TaskMVCCCleanup: {"parallelism": 1}},
	})
	done := func() int {
		n := 0
		for name, v := range vacuumCounts(t, c) {
			if v > before[name] {
				n++
			}
		}
		return n
	}
	res := killMidTask(t, c, sc, domain.TaskMVCCCleanup, done, 25)
	checkKill(t, c, domain.TaskMVCCCleanup, res)

	after := vacuumCounts(t, c)
	var redone, missed []string
	for _, name := range tables {
		switch d := after[name] - before[name]; {
		case d == 0:
			missed = append(missed, name)
		case d > 1:
			redone = append(redone, name)
		}
	}
	t.Logf("mvcc_cleanup kill test: tables vacuumed twice = %d, not vacuumed = %d (of %d)", len(redone), len(missed), len(tables))
	if len(redone) > 0 {
		t.Errorf("%d tables were vacuumed more than once by the job (the retry did not resume from the checkpoint): %v", len(redone), redone)
	}
	if len(missed) > 0 {
		t.Errorf("%d tables were not vacuumed by the job: %v", len(missed), missed)
	}
}

// The other worker finishes index_rebuild, nothing is rebuilt twice, no
// _ccnew index is left.
func killDuringIndexRebuild(t *testing.T, c *Cluster, tables []string) {
	c.Primary.Exec(t, PGDatabase, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`)
	c.Primary.Exec(t, PGDatabase, `SELECT pg_stat_statements_reset()`)
	sc := c.CreateSchedule(0, apiclient.ScheduleInput{
		Name: "Kill during reindex", Target: PGTarget, Tasks: []domain.TaskType{domain.TaskIndexRebuild},
		TaskOptions: map[domain.TaskType]domain.TaskOptions{domain.TaskIndexRebuild: {
			"parallelism": 1, "min_size_bytes": 0, "high_threshold_pct": 0,
		}},
	})
	reindexes := func() map[string]int64 {
		conn, err := c.Primary.Connect(context.Background(), PGDatabase)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		rows, err := conn.Query(context.Background(), `SELECT query, calls FROM pg_stat_statements
			WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query ILIKE 'reindex%'`)
		if err != nil {
			t.Fatal(err)
		}
		type qc struct {
			q string
			n int64
		}
		out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (qc, error) {
			var x qc
			return x, r.Scan(&x.q, &x.n)
		})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int64{}
		for _, x := range out {
			m[x.q] += x.n
		}
		return m
	}
	done := func() int {
		n := 0
		for _, v := range reindexes() {
			n += int(v)
		}
		return n
	}
	res := killMidTask(t, c, sc, domain.TaskIndexRebuild, done, 20)
	checkKill(t, c, domain.TaskIndexRebuild, res)

	stmts := reindexes()
	var twice []string
	covered := map[string]bool{}
	for q, n := range stmts {
		if n > 1 {
			twice = append(twice, q)
		}
		for _, tb := range tables {
			if strings.Contains(q, tb) {
				covered[tb] = true
			}
		}
	}
	left := ccnewIndexes(t, c.Primary)
	t.Logf("index_rebuild kill test: %d REINDEX statements completed, %d done twice, %d of %d tables covered, _ccnew indexes left = %d",
		len(stmts), len(twice), len(covered), len(tables), len(left))
	if len(twice) > 0 {
		t.Errorf("%d REINDEX statements completed more than once (the retry redid work the checkpoint had): %v", len(twice), twice)
	}
	if len(covered) != len(tables) {
		t.Errorf("only %d of %d tables had their indexes rebuilt", len(covered), len(tables))
	}
	if len(left) > 0 {
		t.Errorf("invalid _ccnew indexes left by the killed attempt: %v", left)
	}
}
