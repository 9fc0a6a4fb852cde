package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

const canaryInterval = 100 * time.Millisecond

// writeCanaries writes canary rows from..to of drill id canaryInterval
// apart, as the canary activity does, and returns the last time stamp.
func writeCanaries(t *testing.T, e *env, id string, from, to int64) time.Time {
	t.Helper()
	var last time.Time
	for seq := from; seq <= to; seq++ {
		if seq > from {
			time.Sleep(canaryInterval)
		}
		last = time.Now()
		if err := e.d.CanaryWrite(context.Background(), e.target, id, seq, last); err != nil {
			t.Fatalf("canary write %d: %v", seq, err)
		}
	}
	return last
}

// canaryRows counts drill id's canary rows on c (0 without the table).
func canaryRows(t *testing.T, c *pgcluster.Cluster, db, id string) int64 {
	t.Helper()
	if !pgcluster.Scalar[bool](t, c, db, `SELECT to_regclass('public.themis_drill_canary') IS NOT NULL`) {
		return 0
	}
	return pgcluster.Scalar[int64](t, c, db, `SELECT count(*) FROM public.themis_drill_canary WHERE drill_id = $1`, id)
}

// scratchProcs lists the processes whose command line names dir or whose
// working directory lies in it (what pgrep -f <dir> and /proc show).
func scratchProcs(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		line := strings.ReplaceAll(string(cmd), "\x00", " ")
		if strings.Contains(line, dir) || cwd == dir || strings.HasPrefix(cwd, dir+"/") {
			out = append(out, fmt.Sprintf("%d %s (cwd %s)", pid, line, cwd))
		}
	}
	return out
}

// assertNothingLeft fails unless no directory, process or listening port
// of the scratch instance at dir/port is left.
func assertNothingLeft(t *testing.T, dir string, port int) {
	t.Helper()
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("scratch directory %s left behind (%v)", dir, err)
	}
	if procs := scratchProcs(dir); len(procs) > 0 {
		t.Errorf("processes of %s left behind: %v", dir, procs)
	}
	if port > 0 {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second); err == nil {
			c.Close()
			t.Errorf("port %d still accepts connections", port)
		}
	}
}

// drillDirOf is where a drill's directory must be: a direct child of the
// scratch directory named drill-<[A-Za-z0-9_-]>.
var drillDirName = regexp.MustCompile(`^drill-[A-Za-z0-9_-]+$`)

func checkScratch(t *testing.T, e *env, s driver.Scratch, id string) {
	t.Helper()
	if s.DrillID != id || s.Port <= 0 {
		t.Errorf("scratch %+v", s)
	}
	if filepath.Dir(s.Dir) != e.target.ScratchDir || !drillDirName.MatchString(filepath.Base(s.Dir)) {
		t.Errorf("scratch dir %s is not a drill directory directly under %s", s.Dir, e.target.ScratchDir)
	}
	osUser := e.target.OSUser
	if u, err := user.Current(); osUser == "" && err == nil {
		osUser = u.Username
	}
	if want := fmt.Sprintf("psql -h %s -p %d -U %s -d %s (as OS user %s)", s.Dir, s.Port, pgcluster.Superuser, e.db, osUser); s.Location != want {
		t.Errorf("location %q, want %q", s.Location, want)
	}
}

// drillEnv is a primary with a streaming standby and seeded tables; the
// target lists the standby in replica_dsns.
type drillEnv struct {
	*env
	primary, standby *pgcluster.Cluster
	seed             pgcluster.SeedResult
	sentinel         string
}

func newDrillEnv(t *testing.T) *drillEnv {
	t.Helper()
	p := pgcluster.Start(t, pgcluster.Options{})
	r := p.StartReplica(t)
	p.CreateDatabase(t, "shop")
	seed := p.Seed(t, "shop", pgcluster.SeedOptions{Tables: 2, Rows: 5000})
	p.WaitCaughtUp(t, r)
	e := newEnv(t, p, "shop")
	e.target.OSUser = p.OSUser
	e.target.ReplicaDSNs = []string{r.DSN("shop")}
	// Something of someone else's in the scratch directory, which no
	// clean-up may touch.
	if err := os.MkdirAll(e.target.ScratchDir, 0o755); err != nil {
		t.Fatal(err)
	}
	sentinel := filepath.Join(e.target.ScratchDir, "not-ours.txt")
	if err := os.WriteFile(sentinel, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	return &drillEnv{env: e, primary: p, standby: r, seed: seed, sentinel: sentinel}
}

func (de *drillEnv) checkSentinel(t *testing.T) {
	t.Helper()
	if b, err := os.ReadFile(de.sentinel); err != nil || string(b) != "keep" {
		t.Errorf("a file in the scratch directory that is not the drill's was touched: %q %v", b, err)
	}
}

// waitStandbyRows waits until the standby shows n canary rows of id and
// returns how long that took.
func (de *drillEnv) waitStandbyRows(t *testing.T, id string, n int64) time.Duration {
	t.Helper()
	start := time.Now()
	waitFor(t, 10*time.Second, fmt.Sprintf("%d canary rows of %s on the standby", n, id), func() bool {
		return canaryRows(t, de.standby, "shop", id) >= n
	})
	return time.Since(start)
}

func TestDrill(t *testing.T) {
	t.Parallel()
	de := newDrillEnv(t)
	e := de.env
	standbyName := net.JoinHostPort(de.standby.Host, strconv.Itoa(de.standby.Port))

	t.Run("standby as target", func(t *testing.T) {
		st := e.target
		st.DSN = de.standby.DSN("shop")
		st.Name = "standby-target"
		_, err := e.d.DrillPreflight(context.Background(), st, nil)
		if permanentKind(err) != driver.KindMisconfigured || !strings.Contains(err.Error(), "standby") {
			t.Errorf("preflight against the standby: %v, want Misconfigured naming the standby", err)
		}
		err = e.d.CanaryWrite(context.Background(), st, "x", 1, time.Now())
		if permanentKind(err) != driver.KindMisconfigured {
			t.Errorf("canary write on the standby: %v, want Misconfigured", err)
		}
		_, err = e.d.DrillRestore(context.Background(), st, nil, driver.DrillRestoreRequest{DrillID: "x"}, nil)
		if permanentKind(err) != driver.KindMisconfigured {
			t.Errorf("restore with the standby as target: %v, want Misconfigured", err)
		}
	})

	t.Run("full drill from the standby", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		pre, err := e.d.DrillPreflight(ctx, e.target, e.history)
		if err != nil {
			t.Fatalf("preflight: %v", err)
		}
		t.Logf("preflight: source %q; notes: %s", pre.Source, pre.Notes)
		if !pre.Healthy || !strings.Contains(pre.Source, "standby "+standbyName) || pre.ScratchDir != e.target.ScratchDir ||
			pre.NeededBytes <= 0 || pre.ScratchFreeBytes < pre.NeededBytes || !strings.Contains(pre.Notes, "archive_mode on") {
			t.Errorf("preflight %+v", pre)
		}

		const id = "drill/standby 1" // sanitised into the directory name
		first := time.Now()
		lastAt := writeCanaries(t, e, id, 1, 10)
		failureAt := time.Now()
		lag := de.waitStandbyRows(t, id, 10)
		t.Logf("10 canary rows in %s; the standby showed the last after %s", lastAt.Sub(first).Round(time.Millisecond), lag.Round(time.Millisecond))
		// A rewritten row changes nothing.
		if err := e.d.CanaryWrite(ctx, e.target, id, 10, time.Now()); err != nil {
			t.Fatal(err)
		}

		rec := &recorder{}
		start := time.Now()
		s, err := e.d.DrillRestore(ctx, e.target, e.history, driver.DrillRestoreRequest{DrillID: id}, rec.report)
		restoreTook := time.Since(start)
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		t.Logf("restore: %d ms, %s from %s (%d heartbeats)", restoreTook.Milliseconds(), s.Location, s.RestoredFrom, rec.count())
		checkScratch(t, e, s, id)
		if !strings.HasPrefix(s.RestoredFrom, "pg_basebackup of standby "+standbyName+" at ") || rec.count() == 0 ||
			s.Strategy != driver.StrategyReplicaClone || !strings.Contains(s.RestoredFrom, "strategy replica_clone (the driver's default") {
			t.Errorf("restored from %q with %d heartbeats", s.RestoredFrom, rec.count())
		}

		// The scratch instance is a promoted, isolated primary reachable
		// only through the socket in its private directory: no TCP
		// listener, no host lines in pg_hba.conf.
		conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=%s dbname=shop sslmode=disable", s.Dir, s.Port, pgcluster.Superuser))
		if err != nil {
			t.Fatalf("connect through the scratch instance's socket: %v", err)
		}
		var iso string
		var hostRules int
		err = conn.QueryRow(ctx, `SELECT concat_ws(',', pg_is_in_recovery(), current_setting('archive_mode'),
			current_setting('listen_addresses'), current_setting('primary_conninfo'), current_setting('max_wal_senders')),
			(SELECT count(*) FROM pg_hba_file_rules WHERE type <> 'local')`).Scan(&iso, &hostRules)
		conn.Close(context.Background())
		if err != nil || iso != "f,off,,,0" || hostRules != 0 {
			t.Errorf("scratch instance settings (in recovery, archive_mode, listen, primary_conninfo, wal senders) = %s, %d non-local hba rules (%v)", iso, hostRules, err)
		}
		if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), time.Second); err == nil {
			c.Close()
			t.Errorf("the scratch instance accepts TCP connections on 127.0.0.1:%d", s.Port)
		}
		if fi, err := os.Stat(s.Dir); err != nil {
			t.Error(err)
		} else if fi.Mode().Perm() != 0o700 {
			t.Errorf("socket directory %s has mode %v, want 0700", s.Dir, fi.Mode().Perm())
		}

		// A retried restore returns the running instance.
		start = time.Now()
		again, err := e.d.DrillRestore(ctx, e.target, e.history, driver.DrillRestoreRequest{DrillID: id}, nil)
		if err != nil || again != s {
			t.Errorf("restore again: %+v %v, want %+v", again, err, s)
		}
		t.Logf("idempotent restore: %d ms", time.Since(start).Milliseconds())

		start = time.Now()
		v, err := e.d.DrillVerify(ctx, e.target, s)
		verifyTook := time.Since(start)
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		t.Logf("verify: %d ms: integrity %t, %d tables %v, %d canary rows, newest %s", verifyTook.Milliseconds(),
			v.IntegrityOK, v.Tables, v.RowCounts, v.CanaryRows, v.NewestCanaryAt.Format(time.RFC3339Nano))
		if !v.IntegrityOK || len(v.Problems) > 0 {
			t.Errorf("integrity: %v", v.Problems)
		}
		if v.CanaryRows != 10 {
			t.Errorf("%d canary rows restored, want 10", v.CanaryRows)
		}
		if behind := lastAt.Sub(v.NewestCanaryAt); behind < 0 || behind > canaryInterval+lag {
			t.Errorf("newest canary %s is %s behind the last write %s (allowed %s + lag %s)", v.NewestCanaryAt, behind, lastAt, canaryInterval, lag)
		}
		for _, tbl := range de.seed.Tables {
			want := pgcluster.Scalar[int64](t, de.primary, "shop", "SELECT count(*) FROM "+tbl)
			if got, ok := v.RowCounts[tbl]; !ok || got != want {
				t.Errorf("%s: %d rows restored (present %t), %d on the primary", tbl, got, ok, want)
			}
		}
		if _, ok := v.RowCounts["public.themis_drill_canary"]; ok || v.Tables != len(v.RowCounts) || v.Tables < len(de.seed.Tables) {
			t.Errorf("row counts %v (tables %d) should list the seeded tables and not the canary", v.RowCounts, v.Tables)
		}
		rpo, rto := failureAt.Sub(v.NewestCanaryAt), v.ServingAt.Sub(failureAt)
		t.Logf("RPO %d ms, RTO %d ms (restore %d ms + verify %d ms)", rpo.Milliseconds(), rto.Milliseconds(), restoreTook.Milliseconds(), verifyTook.Milliseconds())
		if rpo < 0 || rpo > canaryInterval+lag || rto <= 0 || rto > restoreTook+verifyTook+time.Minute {
			t.Errorf("implausible RPO %s / RTO %s", rpo, rto)
		}
		// amcheck was created in the scratch instance only.
		if n := pgcluster.Scalar[int64](t, de.primary, "shop", `SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'`); n != 0 {
			t.Error("verification created amcheck on the primary")
		}

		rep, err := e.d.DrillCleanup(ctx, e.target, id)
		if err != nil {
			t.Fatalf("cleanup: %v", err)
		}
		t.Logf("cleanup removed %q", rep.Removed)
		if len(rep.Removed) < 2 || !strings.Contains(strings.Join(rep.Removed, "\n"), "stopped") {
			t.Errorf("cleanup report %q should list the stopped instance and the directory", rep.Removed)
		}
		assertNothingLeft(t, s.Dir, s.Port)
		rep, err = e.d.DrillCleanup(ctx, e.target, id)
		if err != nil || len(rep.Removed) != 0 {
			t.Errorf("second cleanup: %q %v", rep.Removed, err)
		}
		if _, err := e.d.DrillVerify(ctx, e.target, s); permanentKind(err) != driver.KindVerificationFailed {
			t.Errorf("verify after cleanup: %v", err)
		}

		for i := 0; i < 2; i++ {
			if err := e.d.CanaryCleanup(ctx, e.target, id); err != nil {
				t.Fatalf("canary cleanup %d: %v", i+1, err)
			}
		}
		if pgcluster.Scalar[bool](t, de.primary, "shop", `SELECT to_regclass('public.themis_drill_canary') IS NOT NULL`) {
			t.Error("canary table still on the primary")
		}
		de.checkSentinel(t)
	})

	t.Run("replay paused: positive RPO", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		const id = "paused"
		writeCanaries(t, e, id, 1, 5)
		de.waitStandbyRows(t, id, 5)
		newestReplayed := pgcluster.Scalar[time.Time](t, de.standby, "shop", `SELECT max(written_at) FROM public.themis_drill_canary WHERE drill_id = 'paused'`)
		de.standby.Exec(t, "shop", `SELECT pg_wal_replay_pause()`)
		pausedAt := time.Now()
		defer de.standby.Exec(t, "shop", `SELECT pg_wal_replay_resume()`)
		time.Sleep(canaryInterval)
		lastAt := writeCanaries(t, e, id, 6, 10)
		failureAt := time.Now()
		pause := failureAt.Sub(pausedAt)
		// The standby received the last rows but does not apply them.
		time.Sleep(200 * time.Millisecond)
		if n := canaryRows(t, de.standby, "shop", id); n != 5 {
			t.Fatalf("paused standby shows %d canary rows, want 5", n)
		}
		pre, err := e.d.DrillPreflight(ctx, e.target, nil)
		if err != nil || !strings.Contains(pre.Source, "replay paused") {
			t.Errorf("preflight source %q (%v) should say the standby's replay is paused", pre.Source, err)
		}

		start := time.Now()
		s, err := e.d.DrillRestore(ctx, e.target, e.history, driver.DrillRestoreRequest{DrillID: id, Strategy: driver.StrategyReplicaClone, FailureAt: failureAt}, nil)
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		restoreTook := time.Since(start)
		if s.Strategy != driver.StrategyReplicaClone || s.RestoredBytes <= 0 || s.CopyMs <= 0 || s.ReplayMs <= 0 || s.WALBytes <= 0 || s.WALRange == "" || s.BackupID != "" {
			t.Errorf("scratch %+v should report a replica_clone with its bytes, times and WAL range", s)
		}
		defer e.d.DrillCleanup(context.Background(), e.target, id)
		start = time.Now()
		v, err := e.d.DrillVerify(ctx, e.target, s)
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		rpo, rto := failureAt.Sub(v.NewestCanaryAt), v.ServingAt.Sub(failureAt)
		t.Logf("paused standby: restore %d ms, verify %d ms; %d canary rows, newest %s (last write %s); RPO %d ms, RTO %d ms; %s",
			restoreTook.Milliseconds(), time.Since(start).Milliseconds(), v.CanaryRows, v.NewestCanaryAt.Format(time.RFC3339Nano),
			lastAt.Format(time.RFC3339Nano), rpo.Milliseconds(), rto.Milliseconds(), s.RestoredFrom)
		if !v.IntegrityOK {
			t.Errorf("integrity: %v", v.Problems)
		}
		if v.CanaryRows != 5 || !v.NewestCanaryAt.Equal(newestReplayed) || !v.NewestCanaryAt.Before(lastAt) {
			t.Errorf("restored %d canary rows, newest %s; want the 5 the standby replayed, newest %s", v.CanaryRows, v.NewestCanaryAt, newestReplayed)
		}
		if rpo < 5*canaryInterval || rpo < pause || rto <= 0 {
			t.Errorf("RPO %s should cover the 5 unreplayed writes (≥ %s) and the pause (%s); RTO %s", rpo, 5*canaryInterval, pause, rto)
		}
		if _, err := e.d.DrillCleanup(ctx, e.target, id); err != nil {
			t.Fatal(err)
		}
		assertNothingLeft(t, s.Dir, s.Port)
		if err := e.d.CanaryCleanup(ctx, e.target, id); err != nil {
			t.Fatal(err)
		}
	})

	// A restore cancelled mid-way (during pg_basebackup, and while the copy
	// starts) leaves nothing once cleaned up.
	for _, stage := range []string{"pg_basebackup", "starting the scratch instance"} {
		t.Run("cancelled during "+stage, func(t *testing.T) {
			id := "cancel-" + strings.Fields(stage)[0]
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var once sync.Once
			var dirAtCancel string
			progress := func(p driver.Progress) {
				if strings.HasPrefix(p.Note, stage) {
					once.Do(func() {
						entries, _ := os.ReadDir(e.target.ScratchDir)
						for _, en := range entries {
							if strings.HasPrefix(en.Name(), "drill-cancel") {
								dirAtCancel = filepath.Join(e.target.ScratchDir, en.Name())
							}
						}
						time.AfterFunc(150*time.Millisecond, cancel)
					})
				}
			}
			start := time.Now()
			_, err := e.d.DrillRestore(ctx, e.target, nil, driver.DrillRestoreRequest{DrillID: id}, progress)
			t.Logf("restore cancelled %s into %s: %v after %s", stage, dirAtCancel, err, time.Since(start).Round(time.Millisecond))
			if !errors.Is(err, context.Canceled) || dirAtCancel == "" {
				t.Fatalf("restore: %v (directory at cancellation %q), want context.Canceled mid-way", err, dirAtCancel)
			}
			rep, err := e.d.DrillCleanup(context.Background(), e.target, id)
			if err != nil {
				t.Fatalf("cleanup: %v", err)
			}
			t.Logf("cleanup after cancellation removed %q", rep.Removed)
			assertNothingLeft(t, dirAtCancel, 0)
			de.checkSentinel(t)
		})
	}

	// The server died and its pid now belongs to an unrelated process:
	// clean-up must not signal it, and still removes everything.
	t.Run("stale postmaster.pid", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		const id = "stale-pid"
		s, err := e.d.DrillRestore(ctx, e.target, nil, driver.DrillRestoreRequest{DrillID: id}, nil)
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		pidFile := filepath.Join(s.Dir, "data", "postmaster.pid")
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		first, rest, _ := strings.Cut(string(b), "\n")
		pm, _ := strconv.Atoi(strings.TrimSpace(first))
		if err := syscall.Kill(pm, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the killed server's processes to exit", func() bool { return len(scratchProcs(s.Dir)) == 0 })
		bystander := exec.Command("sleep", "60")
		if err := bystander.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = bystander.Process.Kill(); _ = bystander.Wait() }()
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(bystander.Process.Pid)+"\n"+rest), 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := e.d.DrillCleanup(ctx, e.target, id)
		if err != nil {
			t.Fatalf("cleanup: %v", err)
		}
		t.Logf("cleanup with a stale pid file removed %q", rep.Removed)
		if syscall.Kill(bystander.Process.Pid, 0) != nil {
			t.Error("clean-up signalled the unrelated process named in the stale pid file")
		}
		assertNothingLeft(t, s.Dir, s.Port)
	})

	// orphan_cleanup finds a drill abandoned long ago (no clean-up ever
	// ran) and stops and removes it without pg_ctl.
	t.Run("orphan_cleanup", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		const id = "abandoned"
		s, err := e.d.DrillRestore(ctx, e.target, nil, driver.DrillRestoreRequest{DrillID: id}, nil)
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		res := e.mustRun(domain.TaskOrphanCleanup, nil)
		if _, err := os.Stat(s.Dir); err != nil {
			t.Fatalf("orphan_cleanup removed a fresh drill: %s", res.Summary)
		}
		old := time.Now().Add(-25 * time.Hour)
		if err := os.Chtimes(filepath.Join(s.Dir, "themis-scratch.json"), old, old); err != nil {
			t.Fatal(err)
		}
		res = e.mustRun(domain.TaskOrphanCleanup, nil)
		t.Log(res.Summary)
		assertNothingLeft(t, s.Dir, s.Port)
		de.checkSentinel(t)
	})
	// Damage in the restored copy is reported, not returned as an error.
	// It damages the standby, so it runs last.
	t.Run("corruption", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		// A checkpoint the standby has replayed: its restart then replays
		// no full-page image that would repair the page.
		de.primary.Exec(t, "shop", `CHECKPOINT`)
		de.primary.WaitCaughtUp(t, de.standby)
		de.standby.CorruptIndexPage(t, "shop", "public.seed_1_customer_idx")
		const id = "corrupt"
		s, err := e.d.DrillRestore(ctx, e.target, nil, driver.DrillRestoreRequest{DrillID: id}, nil)
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		defer e.d.DrillCleanup(context.Background(), e.target, id)
		v, err := e.d.DrillVerify(ctx, e.target, s)
		if err != nil {
			t.Fatalf("verify returned an error instead of problems: %v", err)
		}
		t.Logf("corrupt copy: integrity %t, problems %q", v.IntegrityOK, v.Problems)
		if v.IntegrityOK || !strings.Contains(strings.Join(v.Problems, "\n"), "seed_1_customer_idx") || v.ServingAt.IsZero() {
			t.Errorf("verification of a damaged copy: %+v", v)
		}
		if _, err := e.d.DrillCleanup(ctx, e.target, id); err != nil {
			t.Fatal(err)
		}
		assertNothingLeft(t, s.Dir, s.Port)
	})
}

// Without a usable standby the primary is the source; without any scratch
// or backup directory the drill cannot run.
func TestDrillPreflightFallsBackToPrimary(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	e := newEnv(t, shared, db)
	e.target.OSUser = shared.OSUser
	e.target.ReplicaDSNs = []string{"postgres://postgres:secret@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", shared.DSN(db)}
	pre, err := e.d.DrillPreflight(context.Background(), e.target, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s; %s", pre.Source, pre.Notes)
	if !strings.Contains(pre.Source, "of primary") || !strings.Contains(pre.Notes, "unreachable") || !strings.Contains(pre.Notes, "not in recovery") {
		t.Errorf("preflight %+v", pre)
	}
	if strings.Contains(pre.Notes+pre.Source, "secret") {
		t.Error("preflight leaks a replica password")
	}
	e.target.ScratchDir, e.target.BackupDir = "", ""
	if _, err := e.d.DrillPreflight(context.Background(), e.target, nil); permanentKind(err) != driver.KindMisconfigured {
		t.Errorf("no scratch directory: %v", err)
	}
	if rep, err := e.d.DrillCleanup(context.Background(), e.target, "x"); err != nil || len(rep.Removed) != 0 {
		t.Errorf("cleanup without a scratch directory: %+v %v", rep, err)
	}
	if err := e.d.CanaryWrite(context.Background(), e.target, "", 1, time.Now()); permanentKind(err) != driver.KindInvalidInput {
		t.Errorf("empty drill id: %v", err)
	}
}

// A drill directory too long for a socket path gets its socket in a
// private directory of its own under the temp directory, removed with the
// drill. A marker without a socket directory (a drill restored by a version
// that listened on 127.0.0.1) gets its instance restarted on one.
func TestDrillLongScratchDir(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Exec(t, db, `CREATE TABLE public.kept AS SELECT g AS id FROM generate_series(1, 100) g`)
	e := newEnv(t, shared, db)
	e.target.OSUser = shared.OSUser
	e.target.ScratchDir = filepath.Join(e.target.ScratchDir, strings.Repeat("s", 80))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const id = "long"
	s, err := e.d.DrillRestore(ctx, e.target, nil, driver.DrillRestoreRequest{DrillID: id}, nil)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	defer e.d.DrillCleanup(context.Background(), e.target, id)
	t.Log(s.Location)
	sock, _, _ := strings.Cut(strings.TrimPrefix(s.Location, "psql -h "), " ")
	if filepath.Dir(sock) != filepath.Clean(os.TempDir()) || !strings.HasPrefix(filepath.Base(sock), "thm-drill-") {
		t.Fatalf("socket directory %q (location %q), want a thm-drill- directory in %s", sock, s.Location, os.TempDir())
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("socket directory %s: %v, want mode 0700", sock, err)
	}
	verify := func() {
		t.Helper()
		v, err := e.d.DrillVerify(ctx, e.target, s)
		if err != nil || !v.IntegrityOK || v.RowCounts["public.kept"] != 100 {
			t.Fatalf("verify: %+v %v", v, err)
		}
	}
	verify()

	marker := filepath.Join(s.Dir, "themis-scratch.json")
	b, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	legacy := regexp.MustCompile(`\s*"(socket_dir|os_user)": "[^"]*",`).ReplaceAll(b, nil)
	if strings.Contains(string(legacy), "socket_dir") {
		t.Fatalf("marker %s", legacy)
	}
	if err := os.WriteFile(marker, legacy, 0o640); err != nil {
		t.Fatal(err)
	}
	verify()
	if b, _ := os.ReadFile(marker); !strings.Contains(string(b), `"socket_dir": "`+sock+`"`) {
		t.Errorf("marker after the restart names no socket directory: %s", b)
	}

	if _, err := e.d.DrillCleanup(ctx, e.target, id); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, s.Dir, s.Port)
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket directory %s left behind (%v)", sock, err)
	}
}
