package postgres_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// A "worker" is this test binary started again with deadWorkerEnv set: it
// runs one task (attempt 1) and prints every heartbeat checkpoint on a line
// of its own, as an activity would heartbeat it. The test then freezes it
// (SIGSTOP: its connections stay open and nobody reads them, a worker hung
// or partitioned away) or kills it (SIGKILL), and runs attempt 2 in-process.
const deadWorkerEnv = "THEMIS_TEST_DEAD_WORKER"

type workerReq struct {
	DSN     string             `json:"dsn"`
	Task    domain.TaskType    `json:"task"`
	JobID   string             `json:"job_id"`
	Options domain.TaskOptions `json:"options"`
}

// deadWorkerMain is the worker's main; it returns the exit code.
func deadWorkerMain() int {
	var req workerReq
	if err := json.Unmarshal([]byte(os.Getenv(deadWorkerEnv)), &req); err != nil {
		fmt.Fprintln(os.Stderr, "worker request:", err)
		return 2
	}
	d := postgres.NewWithOptions(postgres.Options{HeartbeatInterval: 100 * time.Millisecond})
	var mu sync.Mutex
	_, err := d.Run(context.Background(), driver.Request{
		Target: driver.Target{Name: "dead", Driver: postgres.Name, DSN: req.DSN},
		Task:   req.Task, Options: req.Options, JobID: req.JobID, Attempt: 1,
		Progress: func(p driver.Progress) {
			if p.Checkpoint == nil {
				return
			}
			b, err := json.Marshal(p.Checkpoint)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			fmt.Println(string(b))
		},
	})
	fmt.Fprintln(os.Stderr, "worker finished:", err)
	return 0
}

type worker struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	last json.RawMessage
}

func startWorker(t *testing.T, req workerReq) *worker {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), deadWorkerEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &worker{cmd: cmd}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			w.mu.Lock()
			w.last = json.RawMessage(slices.Clone(sc.Bytes()))
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Process.Signal(syscall.SIGCONT)
		<-read
		_ = cmd.Wait()
	})
	return w
}

func (w *worker) checkpoint() json.RawMessage {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

func (w *worker) done() []string {
	var cp struct{ Done []string }
	_ = json.Unmarshal(w.checkpoint(), &cp)
	return cp.Done
}

func (w *worker) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := w.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// backendsOf returns the pids of db's backends named name.
func backendsOf(t *testing.T, db, name string) []int64 {
	t.Helper()
	return pgcluster.Scalar[[]int64](t, shared, db,
		`SELECT coalesce(array_agg(pid ORDER BY pid), '{}')::int8[] FROM pg_stat_activity WHERE application_name = $1`, name)
}

// vacuumCounts returns vacuum_count of db's user tables.
func vacuumCounts(t *testing.T, db string) map[string]int64 {
	t.Helper()
	conn := shared.Conn(t, db)
	rows, err := conn.Query(context.Background(), `SELECT schemaname || '.' || relname, vacuum_count FROM pg_stat_user_tables`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for rows.Next() {
		var n string
		var c int64
		if err := rows.Scan(&n, &c); err != nil {
			t.Fatal(err)
		}
		out[n] = c
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	return out
}

// holdLock locks table in mode in an open transaction of its own; end
// commits it.
func holdLock(t *testing.T, db, sql string) (end func()) {
	t.Helper()
	conn := shared.Conn(t, db)
	bg := context.Background()
	tx, err := conn.Begin(bg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(bg, sql); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	end = func() { once.Do(func() { _ = tx.Rollback(bg) }) }
	t.Cleanup(end)
	return end
}

// endWhenGone calls end once none of pids is left in pg_stat_activity.
func endWhenGone(t *testing.T, db string, pids []int64, end func()) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer end()
		conn, err := shared.Connect(context.Background(), db)
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			var n int64
			if conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)`, pids).Scan(&n) == nil && n == 0 {
				return
			}
		}
	}()
	return done
}

func previousAttempts(t *testing.T, res driver.Result) (terminated []int64, dropped []string) {
	t.Helper()
	var p struct {
		Terminated []struct {
			PID int64 `json:"pid"`
		} `json:"terminated"`
		DroppedIndexes []string `json:"dropped_indexes"`
	}
	b, _ := json.Marshal(res.Details["previous_attempts"])
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("previous_attempts %s: %v", b, err)
	}
	for _, x := range p.Terminated {
		terminated = append(terminated, x.PID)
	}
	return terminated, p.DroppedIndexes
}

// TestRetryReplacesAHungVacuumAttempt: attempt 1 of mvcc_cleanup vacuums
// the big tables, then waits for a lock on the small one when its worker
// freezes. Attempt 2 (another driver, same job) terminates attempt 1's
// backends, resumes from its checkpoint and vacuums only the small table:
// every table is vacuumed exactly once.
func TestRetryReplacesAHungVacuumAttempt(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Seed(t, db, pgcluster.SeedOptions{Prefix: "big", Tables: 4, Rows: 8000})
	shared.Seed(t, db, pgcluster.SeedOptions{Prefix: "small", Tables: 1, Rows: 1500})
	before := vacuumCounts(t, db)
	release := holdLock(t, db, `LOCK TABLE public.small_1 IN SHARE UPDATE EXCLUSIVE MODE`)

	job := "job-hung-" + db
	opts := domain.TaskOptions{"parallelism": int64(1), "lock_timeout_ms": int64(600_000), "dead_tuple_threshold": int64(100)}
	w := startWorker(t, workerReq{DSN: shared.DSN(db), Task: domain.TaskMVCCCleanup, JobID: job, Options: opts})
	name1 := "themis:" + job + ":mvcc_cleanup:a1"
	// The session name is visible to DBAs while the task runs.
	waitFor(t, 90*time.Second, "attempt 1 to wait for its lock on small_1", func() bool {
		return pgcluster.Scalar[int64](t, shared, db, `
			SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND query LIKE 'VACUUM%small_1%' AND wait_event_type = 'Lock'`, name1) == 1
	})
	waitFor(t, 10*time.Second, "the checkpoint of the big tables", func() bool { return len(w.done()) == 4 })
	w.signal(t, syscall.SIGSTOP)
	pids := backendsOf(t, db, name1)
	if len(pids) == 0 {
		t.Fatal("no backend of attempt 1")
	}
	released := endWhenGone(t, db, pids, release)

	e := newEnv(t, shared, db)
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := e.d.Run(ctx, driver.Request{
		Target: e.target, Task: domain.TaskMVCCCleanup, Options: opts, Checkpoint: w.checkpoint(),
		Progress: rec.report, History: e.history, JobID: job, Attempt: 2,
	})
	if err != nil {
		t.Fatalf("attempt 2: %v", err)
	}
	<-released
	t.Logf("attempt 2 took %s: %s", time.Since(start), res.Summary)
	terminated, _ := previousAttempts(t, res)
	for _, pid := range pids {
		if !slices.Contains(terminated, pid) {
			t.Errorf("attempt 1 backend %d not reported terminated (%v)", pid, terminated)
		}
	}
	if left := backendsOf(t, db, name1); len(left) != 0 {
		t.Errorf("attempt 1 backends %v still on the server", left)
	}
	d := detailsJSON(t, res)
	if d["resumed"].(float64) != 4 || d["tables_vacuumed"].(float64) != 5 {
		t.Errorf("resumed %v, tables_vacuumed %v; want 4 resumed and 5 reported", d["resumed"], d["tables_vacuumed"])
	}
	redone := 0
	for tbl, n := range vacuumCounts(t, db) {
		if n-before[tbl] != 1 {
			t.Errorf("%s vacuumed %d time(s) across both attempts, want 1", tbl, n-before[tbl])
			if n-before[tbl] > 1 {
				redone++
			}
		}
	}
	t.Logf("tables redone: %d", redone)
}

// TestRetryReplacesAHungReindexAttempt: attempt 1 of index_rebuild has
// built its _ccnew copy and waits for a writing transaction when its
// worker freezes. Attempt 2 terminates it, drops the _ccnew leftover and
// rebuilds the index: no _ccnew/_ccold index and no invalid index remain.
func TestRetryReplacesAHungReindexAttempt(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Seed(t, db, pgcluster.SeedOptions{Tables: 1, Rows: 80000, DeletePct: 80, UpdatePct: -1})
	shared.Exec(t, db, `VACUUM public.seed_1`)
	// An open writing transaction: REINDEX CONCURRENTLY builds its _ccnew
	// copy, then waits for it.
	release := holdLock(t, db, `INSERT INTO public.seed_1 VALUES (900000, 1, 'new', 1, now(), 'x')`)

	job := "job-hung-" + db
	// Every index chosen: one REINDEX TABLE CONCURRENTLY, which also
	// rebuilds the TOAST index, so attempt 1 leaves a _ccnew copy in
	// pg_toast as well.
	opts := domain.TaskOptions{"lock_timeout_ms": int64(600_000), "high_threshold_pct": 0.0, "min_size_bytes": int64(0)}
	w := startWorker(t, workerReq{DSN: shared.DSN(db), Task: domain.TaskIndexRebuild, JobID: job, Options: opts})
	name1 := "themis:" + job + ":index_rebuild:a1"
	waitFor(t, 90*time.Second, "the _ccnew index to appear", func() bool {
		return pgcluster.Scalar[int64](t, shared, db, `SELECT count(*) FROM pg_class WHERE relname LIKE '%\_ccnew%'`) > 0
	})
	waitFor(t, 30*time.Second, "attempt 1's REINDEX to wait", func() bool {
		return pgcluster.Scalar[int64](t, shared, db, `
			SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND query LIKE 'REINDEX%' AND wait_event_type = 'Lock'`, name1) == 1
	})
	w.signal(t, syscall.SIGSTOP)
	pids := backendsOf(t, db, name1)
	released := endWhenGone(t, db, pids, release)

	e := newEnv(t, shared, db)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := e.d.Run(ctx, driver.Request{
		Target: e.target, Task: domain.TaskIndexRebuild, Options: opts, Checkpoint: w.checkpoint(),
		JobID: job, Attempt: 2, History: e.history,
	})
	if err != nil {
		t.Fatalf("attempt 2: %v", err)
	}
	<-released
	terminated, dropped := previousAttempts(t, res)
	if len(terminated) == 0 || len(dropped) == 0 || !strings.Contains(strings.Join(dropped, " "), "_ccnew") {
		t.Errorf("previous_attempts: terminated %v, dropped %v; want attempt 1's backends and its _ccnew index", terminated, dropped)
	}
	if left := backendsOf(t, db, name1); len(left) != 0 {
		t.Errorf("attempt 1 backends %v still on the server", left)
	}
	if n := pgcluster.Scalar[int64](t, shared, db, `SELECT count(*) FROM pg_class WHERE relname LIKE '%\_cc%'`); n != 0 {
		t.Errorf("%d _ccnew/_ccold indexes left", n)
	}
	if !strings.Contains(strings.Join(dropped, " "), "pg_toast.") {
		t.Errorf("dropped %v: no TOAST leftover of the interrupted REINDEX TABLE CONCURRENTLY", dropped)
	}
	if n := invalidIndexes(t, shared, db); n != 0 {
		t.Errorf("%d invalid indexes left", n)
	}
	if d := detailsJSON(t, res); len(d["indexes"].([]any)) == 0 {
		t.Errorf("attempt 2 rebuilt nothing: %s", res.Summary)
	}
}

// TestKilledWorkerBackendStops: a worker killed with -9 while its VACUUM
// waits for a lock. Nobody terminates the backend; the server notices the
// dead client through client_connection_check_interval and ends it,
// although the lock is still held and lock_timeout is ten minutes.
func TestKilledWorkerBackendStops(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Seed(t, db, pgcluster.SeedOptions{Tables: 1, Rows: 2000})
	holdLock(t, db, `LOCK TABLE public.seed_1 IN SHARE UPDATE EXCLUSIVE MODE`)
	job := "job-killed-" + db
	w := startWorker(t, workerReq{DSN: shared.DSN(db), Task: domain.TaskMVCCCleanup, JobID: job,
		Options: domain.TaskOptions{"lock_timeout_ms": int64(600_000), "dead_tuple_threshold": int64(100)}})
	name1 := "themis:" + job + ":mvcc_cleanup:a1"
	waitFor(t, 90*time.Second, "the VACUUM to wait for its lock", func() bool {
		return pgcluster.Scalar[int64](t, shared, db, `
			SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND query LIKE 'VACUUM%' AND wait_event_type = 'Lock'`, name1) == 1
	})
	w.signal(t, syscall.SIGKILL)
	killed := time.Now()
	waitFor(t, 20*time.Second, "the server to end the dead worker's backends", func() bool {
		return len(backendsOf(t, db, name1)) == 0
	})
	t.Logf("backends gone %s after the kill", time.Since(killed).Round(10*time.Millisecond))
}

// TestRetryOnTheSameWorker: the worker that ran attempt 1 picks up attempt 2
// itself (its heartbeat timed out). Its idle pooled connections still carry
// attempt 1's name; attempt 2 must not terminate them under itself.
func TestRetryOnTheSameWorker(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Seed(t, db, pgcluster.SeedOptions{Prefix: "same", Tables: 3, Rows: 2000})
	e := newEnv(t, shared, db)
	opts := domain.TaskOptions{"parallelism": int64(2), "dead_tuple_threshold": int64(0)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for attempt := 1; attempt <= 2; attempt++ {
		res, err := e.d.Run(ctx, driver.Request{
			Target: e.target, Task: domain.TaskMVCCCleanup, Options: opts,
			Progress: (&recorder{}).report, History: e.history, JobID: "job-same-" + db, Attempt: attempt,
		})
		if err != nil {
			t.Fatalf("attempt %d on the same driver: %v", attempt, err)
		}
		if attempt == 2 {
			if terminated, _ := previousAttempts(t, res); len(terminated) != 0 {
				t.Errorf("attempt 2 terminated %v: the driver's own idle connections", terminated)
			}
		}
	}
}
