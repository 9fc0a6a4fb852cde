package history

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// jobRecord is what activities.RecordJob writes for j.
func jobRecord(t *testing.T, j domain.Job) TaskRecord {
	t.Helper()
	raw, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	var details map[string]any
	if err := json.Unmarshal(raw, &details); err != nil {
		t.Fatal(err)
	}
	return TaskRecord{
		JobID: j.ID, Target: j.Target, Task: JobRecordTask, State: j.State,
		StartedAt: time.UnixMilli(j.StartedAtMs), FinishedAt: time.UnixMilli(j.FinishedAtMs),
		Summary: j.ResultSummary, Error: j.ErrorMessage, Details: details,
	}
}

// legacyFile makes a history file with the hand-rolled migrations of the
// releases before goose (the first n of them) and rows as that code wrote
// them.
func legacyFile(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "old", "history.db")
	s, err := Open(filepath.Join(filepath.Dir(path), "scratch.db")) // only to create the directory
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	if err := legacyMigrate(ctx, db, legacyMigrations[:n]); err != nil {
		t.Fatal(err)
	}
	job := domain.Job{ID: "job-old", ScheduleID: "nightly", Target: "orders", State: domain.StateSucceeded,
		StartedAtMs: 1000, FinishedAtMs: 2000, ResultSummary: "done",
		Tasks: []domain.TaskRun{{TaskType: domain.TaskQuotaCheck, State: domain.StateSucceeded}}}
	raw, _ := json.Marshal(job)
	stmts := []struct {
		q    string
		args []any
	}{
		{`INSERT INTO samples (target, metric, at_ms, value) VALUES ('orders', 'size_bytes', 1000, 42), ('orders', 'size_bytes', 2000, 43)`, nil},
		{`INSERT INTO baselines (target, probe, value_ms, updated_at_ms) VALUES ('orders', 'p', 1.5, 1000)`, nil},
		// The old code could record one backup path twice.
		{`INSERT INTO backups (target, path, method, taken_at_ms, verified, bytes, details_json) VALUES
			('orders', '/b/1.db', 'vacuum_into', 1000, 1, 10, '{}'),
			('orders', '/b/1.db', 'vacuum_into', 1000, 1, 11, '{}'),
			('orders', '/b/2.db', 'vacuum_into', 2000, 1, 20, '{"tables":4}')`, nil},
		// ... and one job twice (a retried RecordJob whose StartedAt moved).
		{`INSERT INTO task_results (job_id, target, task, state, started_at_ms, finished_at_ms, summary, details_json, error)
			VALUES ('job-old', 'orders', 'job', 'running', 999, 1500, 'first', '{}', ''),
			       ('job-old', 'orders', 'job', 'succeeded', 1000, 2000, 'done', ?, ''),
			       ('job-old', 'orders', 'quota_check', 'succeeded', 1000, 1100, 'ok', '{"pct":3}', ''),
			       ('job-bad', 'orders', 'job', 'failed', 500, 600, 'hand-written', '{not json', 'x')`, []any{string(raw)}},
		{`INSERT INTO drill_reports (id, target, report_json, created_at_ms, updated_at_ms) VALUES ('d1', 'orders', '{"passed":true}', 1000, 1000)`, nil},
	}
	for _, st := range stmts {
		if _, err := db.ExecContext(ctx, st.q, st.args...); err != nil {
			t.Fatalf("%s: %v", st.q, err)
		}
	}
	return path
}

func TestAdoptLegacyFile(t *testing.T) {
	for _, n := range []int{len(legacyMigrations), 2} {
		t.Run(fmt.Sprintf("legacy-versions-1-%d", n), func(t *testing.T) {
			path := legacyFile(t, n)
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx := t.Context()
			if v, err := s.SchemaVersion(ctx); err != nil || v != latestVersion(t, DriverSQLite) {
				t.Fatalf("schema version %d, %v", v, err)
			}
			var legacy int
			if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&legacy); err != nil || legacy != 3 {
				t.Errorf("schema_migrations rows = %d, %v; want 3 (kept for older releases)", legacy, err)
			}
			sm, err := s.Samples(ctx, "orders", "size_bytes", time.Time{})
			if err != nil || len(sm) != 2 || sm[1].Value != 43 {
				t.Errorf("samples = %+v, %v", sm, err)
			}
			if bl, err := s.Baseline(ctx, "orders"); err != nil || bl["p"] != 1.5 {
				t.Errorf("baseline = %v, %v", bl, err)
			}
			bk, err := s.Backups(ctx, "orders", false, 0)
			if err != nil || len(bk) != 2 || bk[0].Path != "/b/2.db" || bk[0].Details["tables"] != float64(4) ||
				bk[1].Path != "/b/1.db" || bk[1].Bytes != 11 {
				t.Errorf("backups = %+v, %v; want /b/2.db and one /b/1.db (the later record)", bk, err)
			}
			j, err := s.JobRecord(ctx, "job-old")
			if err != nil || j.State != domain.StateSucceeded || j.ResultSummary != "done" || len(j.Tasks) != 1 || j.ScheduleID != "nightly" {
				t.Errorf("job record = %+v, %v", j, err)
			}
			jobs, err := s.ListJobRecords(ctx, JobRecordFilter{ScheduleID: "nightly"})
			if err != nil || len(jobs) != 1 || jobs[0].ID != "job-old" {
				t.Errorf("jobs of nightly = %+v, %v (schedule_id backfilled from the JSON)", jobs, err)
			}
			bad, err := s.JobRecord(ctx, "job-bad")
			if err != nil || bad.State != domain.StateFailed || bad.ErrorMessage != "x" || bad.StartedAtMs != 500 {
				t.Errorf("hand-written job record = %+v, %v", bad, err)
			}
			tr, err := s.TaskResults(ctx, "orders", 0)
			if err != nil || len(tr) != 3 {
				t.Errorf("task results = %d, %v; want 3", len(tr), err)
			}
			if d, err := s.DrillReport(ctx, "d1"); err != nil || string(d.Report) != `{"passed":true}` {
				t.Errorf("drill report = %+v, %v", d, err)
			}
			// The adopted file takes new writes, idempotent ones included.
			if err := s.RecordBackup(ctx, driver.BackupRecord{Target: "orders", Path: "/b/1.db", Method: "m", Verified: true, Bytes: 12}); err != nil {
				t.Fatal(err)
			}
			if bk, _ := s.Backups(ctx, "orders", false, 0); len(bk) != 2 {
				t.Errorf("backups after re-record = %d, want 2", len(bk))
			}
			// Opening again changes nothing.
			s2, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			s2.Close()
		})
	}
}

func TestJobRecords(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ backend, s *Store) {
		ctx := t.Context()
		if _, err := s.JobRecord(ctx, "nope"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("missing job err = %v", err)
		}
		j := domain.Job{ID: "j1", RunID: "r1", ScheduleID: "nightly", ScheduleName: "Nightly", Target: "orders",
			State: domain.StateRunning, TriggeredBy: "schedule", StartedAtMs: 10_000, FinishedAtMs: 11_000,
			Tasks: []domain.TaskRun{{TaskType: domain.TaskQuotaCheck, State: domain.StateSucceeded, Attempt: 2,
				Details: map[string]any{"pct": 1.5}}}}
		for i := 0; i < 3; i++ { // retried activity
			if err := s.RecordTaskResult(ctx, jobRecord(t, j)); err != nil {
				t.Fatal(err)
			}
		}
		j.State, j.ResultSummary, j.StartedAtMs, j.FinishedAtMs = domain.StateSucceeded, "all done", 10_001, 12_000
		if err := s.RecordTaskResult(ctx, jobRecord(t, j)); err != nil {
			t.Fatal(err)
		}
		got, err := s.JobRecord(ctx, "j1")
		if err != nil {
			t.Fatal(err)
		}
		wantJSON, _ := json.Marshal(j)
		gotJSON, _ := json.Marshal(got)
		if string(gotJSON) != string(wantJSON) {
			t.Errorf("job record\n got %s\nwant %s", gotJSON, wantJSON)
		}
		var n int
		if err := s.queryRow(ctx, `SELECT count(*) FROM task_results WHERE job_id = ?`, "j1").Scan(&n); err != nil || n != 1 {
			t.Errorf("job j1 has %d rows, %v; want 1", n, err)
		}

		// Listing: filters and pages.
		for i, spec := range []struct {
			target, sched string
			state         domain.JobState
			started       int64
		}{
			{"orders", "nightly", domain.StateFailed, 20_000},
			{"orders", "weekly", domain.StateSucceeded, 20_000}, // same ms as the one before
			{"orders", "nightly", domain.StateSucceeded, 30_000},
			{"other", "nightly", domain.StateSucceeded, 40_000},
		} {
			jj := domain.Job{ID: fmt.Sprintf("k%d", i), Target: spec.target, ScheduleID: spec.sched, State: spec.state,
				StartedAtMs: spec.started, FinishedAtMs: spec.started + 1}
			if err := s.RecordTaskResult(ctx, jobRecord(t, jj)); err != nil {
				t.Fatal(err)
			}
		}
		// A task record of a job is not a job record.
		if err := s.RecordTaskResult(ctx, TaskRecord{JobID: "k0", Target: "orders", Task: domain.TaskQuotaCheck,
			State: domain.StateSucceeded, StartedAt: time.UnixMilli(20_000)}); err != nil {
			t.Fatal(err)
		}
		ids := func(f JobRecordFilter) string {
			t.Helper()
			list, err := s.ListJobRecords(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, j := range list {
				out = append(out, j.ID)
			}
			return fmt.Sprint(out)
		}
		for _, c := range []struct {
			f    JobRecordFilter
			want string
		}{
			{JobRecordFilter{}, "[k3 k2 k1 k0 j1]"},
			{JobRecordFilter{Target: "orders"}, "[k2 k1 k0 j1]"},
			{JobRecordFilter{ScheduleID: "nightly"}, "[k3 k2 k0 j1]"},
			{JobRecordFilter{Target: "orders", ScheduleID: "nightly", State: domain.StateSucceeded}, "[k2 j1]"},
			{JobRecordFilter{Limit: 2}, "[k3 k2]"},
			{JobRecordFilter{Limit: 2, BeforeMs: 30_000, BeforeID: "k2"}, "[k1 k0]"},
			{JobRecordFilter{Limit: 1, BeforeMs: 20_000, BeforeID: "k1"}, "[k0]"},
			{JobRecordFilter{BeforeMs: 20_000}, "[j1]"},
			{JobRecordFilter{State: domain.StateCancelled}, "[]"},
		} {
			if got := ids(c.f); got != c.want {
				t.Errorf("ListJobRecords(%+v) = %s, want %s", c.f, got, c.want)
			}
		}
	})
}

func TestRecordBackupIdempotent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ backend, s *Store) {
		ctx := t.Context()
		at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		rec := driver.BackupRecord{Target: "orders", Path: "/b/1.db", Method: "m", TakenAt: at, Verified: true, Bytes: 1}
		for i := 0; i < 3; i++ {
			if err := s.RecordBackup(ctx, rec); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.MarkBackupRemoved(ctx, "orders", "/b/1.db", at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		// A new backup written to the same path replaces the removed record.
		rec.TakenAt, rec.Bytes = at.Add(2*time.Hour), 2
		if err := s.RecordBackup(ctx, rec); err != nil {
			t.Fatal(err)
		}
		all, err := s.Backups(ctx, "orders", false, 0)
		if err != nil || len(all) != 1 || all[0].Bytes != 2 || all[0].RemovedAt != nil {
			t.Fatalf("backups = %+v, %v; want one present record of 2 bytes", all, err)
		}
		// The same path of another target is another record.
		rec.Target = "other"
		if err := s.RecordBackup(ctx, rec); err != nil {
			t.Fatal(err)
		}
		if o, ok, err := s.LatestBackup(ctx, "other"); err != nil || !ok || o.Path != "/b/1.db" {
			t.Errorf("other = %+v %v %v", o, ok, err)
		}
	})
}

func TestRecordSamplesOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ backend, s *Store) {
		ctx := t.Context()
		sm := driver.Sample{Target: "t", Metric: "m", Value: 1}
		for i := 0; i < 3; i++ {
			if err := s.RecordSamplesOnce(ctx, "job-1/size", sm, sm); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RecordSamplesOnce(ctx, "job-2/size", sm); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordSamplesOnce(ctx, "", sm); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordSamplesOnce(ctx, "job-3/size", driver.Sample{Target: "t", Metric: "m"}, driver.Sample{Metric: "m"}); err == nil {
			t.Error("invalid batch accepted")
		}
		// The refused batch did not burn its key.
		if err := s.RecordSamplesOnce(ctx, "job-3/size", sm); err != nil {
			t.Fatal(err)
		}
		got, err := s.Samples(ctx, "t", "m", time.Time{})
		if err != nil || len(got) != 5 {
			t.Errorf("samples = %d, %v; want 5", len(got), err)
		}
	})
}

func TestPrune(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ backend, s *Store) {
		ctx := t.Context()
		now := time.Now().UTC().Truncate(time.Millisecond)
		old, recent := now.Add(-100*24*time.Hour), now.Add(-time.Hour)
		cutoff := now.Add(-30 * 24 * time.Hour)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.RecordSamples(ctx,
			driver.Sample{Target: "t", Metric: "m", At: old, Value: 1},
			driver.Sample{Target: "t", Metric: "m", At: recent, Value: 2}))
		must(s.RecordSamplesOnce(ctx, "k", driver.Sample{Target: "t", Metric: "m", At: recent, Value: 3}))
		must(s.RecordTaskResult(ctx, jobRecord(t, domain.Job{ID: "old", Target: "t", State: domain.StateSucceeded,
			StartedAtMs: old.UnixMilli(), FinishedAtMs: old.UnixMilli()})))
		must(s.RecordTaskResult(ctx, TaskRecord{JobID: "old", Target: "t", Task: domain.TaskQuotaCheck, StartedAt: old, FinishedAt: old}))
		must(s.RecordTaskResult(ctx, jobRecord(t, domain.Job{ID: "new", Target: "t", State: domain.StateSucceeded,
			StartedAtMs: recent.UnixMilli(), FinishedAtMs: recent.UnixMilli()})))
		// Drill reports: two old ones and a recent one of t, one old one of u.
		for _, d := range []struct {
			id, target string
			at         time.Time
		}{{"d1", "t", old}, {"d2", "t", old.Add(time.Hour)}, {"d3", "t", recent}, {"d4", "u", old}} {
			_, err := s.exec(ctx, `INSERT INTO drill_reports (id, target, report_json, created_at_ms, updated_at_ms) VALUES (?, ?, '{}', ?, ?)`,
				d.id, d.target, ms(d.at), ms(d.at))
			must(err)
		}
		// Backups of t: b1 removed long ago, b2 removed long ago and the
		// newest verified one, b3 present and old, b4 removed recently.
		for _, b := range []struct {
			path     string
			taken    time.Time
			verified bool
			removed  time.Time
		}{
			{"/b1", old, true, old},
			{"/b2", old.Add(2 * time.Hour), true, old.Add(3 * time.Hour)},
			{"/b3", old.Add(time.Hour), true, time.Time{}},
			{"/b4", old.Add(30 * time.Minute), false, recent},
			{"/b5", old.Add(3 * time.Hour), false, old.Add(3 * time.Hour)},
		} {
			must(s.RecordBackup(ctx, driver.BackupRecord{Target: "t", Path: b.path, Method: "m", TakenAt: b.taken, Verified: b.verified}))
			if !b.removed.IsZero() {
				must(s.MarkBackupRemoved(ctx, "t", b.path, b.removed))
			}
		}
		r, err := s.Prune(ctx, cutoff, cutoff)
		must(err)
		want := PruneResult{Samples: 1, SampleKeys: 0, TaskResults: 2, DrillReports: 2, Backups: 2}
		if r != want {
			t.Errorf("prune = %+v, want %+v", r, want)
		}
		if _, err := s.JobRecord(ctx, "old"); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("old job record still there: %v", err)
		}
		if _, err := s.JobRecord(ctx, "new"); err != nil {
			t.Errorf("new job record: %v", err)
		}
		var drills []string
		list, err := s.ListDrillReports(ctx, 0)
		must(err)
		for _, d := range list {
			drills = append(drills, d.ID)
		}
		if fmt.Sprint(drills) != "[d3 d4]" {
			t.Errorf("drill reports left = %v, want [d3 d4] (the newest of each target)", drills)
		}
		var paths []string
		bk, err := s.Backups(ctx, "t", false, 0)
		must(err)
		for _, b := range bk {
			paths = append(paths, b.Path)
		}
		if fmt.Sprint(paths) != "[/b2 /b3 /b4]" {
			t.Errorf("backups left = %v, want [/b2 /b3 /b4]", paths)
		}
		// Zero cutoffs prune nothing; a second run finds nothing more.
		if r, err := s.Prune(ctx, time.Time{}, time.Time{}); err != nil || r != (PruneResult{}) {
			t.Errorf("zero cutoffs: %+v, %v", r, err)
		}
		if r, err := s.Prune(ctx, cutoff, cutoff); err != nil || r != (PruneResult{}) {
			t.Errorf("second prune: %+v, %v", r, err)
		}
		// The batch key goes with the samples' cutoff.
		if r, err := s.Prune(ctx, now.Add(time.Minute), time.Time{}); err != nil || r.Samples != 2 || r.SampleKeys != 1 {
			t.Errorf("prune all samples: %+v, %v", r, err)
		}
	})
}

func TestRunRetention(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ backend, s *Store) {
		ctx := t.Context()
		now := time.Now()
		if err := s.RecordSamples(ctx, driver.Sample{Target: "t", Metric: "m", At: now.Add(-2 * time.Hour), Value: 1}); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordTaskResult(ctx, TaskRecord{JobID: "j", Target: "t", Task: JobRecordTask,
			StartedAt: now.Add(-3 * time.Hour), FinishedAt: now.Add(-3 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.RunRetention(rctx, time.Hour, 0, 20*time.Millisecond)
		}()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := s.Samples(ctx, "t", "m", time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("retention did not prune the old sample")
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Sample written after the loop started, old again: pruned at a later tick.
		if err := s.RecordSamples(ctx, driver.Sample{Target: "t", Metric: "m", At: now.Add(-2 * time.Hour), Value: 1}); err != nil {
			t.Fatal(err)
		}
		for {
			got, _ := s.Samples(ctx, "t", "m", time.Time{})
			if len(got) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("retention did not run again")
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("RunRetention did not return after its context ended")
		}
		// Job retention 0 kept the job record.
		if _, err := s.JobRecord(ctx, "j"); err != nil {
			t.Errorf("job record pruned with job retention 0: %v", err)
		}
	})
}

func TestAuditEvents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ backend, s *Store) {
		ctx := t.Context()
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC)
		for i := 0; i < 10; i++ {
			ev := fmt.Sprintf(`{"i":%d}`, i)
			if err := s.AppendAuditEvent(ctx, AuditRecord{Time: t0.Add(time.Duration(i) * time.Nanosecond), Principal: "ops",
				Action: "schedule.create", Outcome: "success", Event: json.RawMessage(ev)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AppendAuditEvent(ctx, AuditRecord{Time: t0, Event: json.RawMessage(`{bad`)}); err == nil {
			t.Error("invalid JSON accepted")
		}
		if err := s.AppendAuditEvent(ctx, AuditRecord{Event: json.RawMessage(`{}`)}); err == nil {
			t.Error("event without time accepted")
		}
		all, more, err := s.AuditEvents(ctx, time.Time{}, 0)
		if err != nil || more || len(all) != 10 || string(all[0].Event) != `{"i":0}` || !all[0].Time.Equal(t0) ||
			all[0].Principal != "ops" || all[9].Seq <= all[0].Seq {
			t.Fatalf("all = %+v, %v, %v", all, more, err)
		}
		// since is exact to the nanosecond; the newest limit come back oldest first.
		got, more, err := s.AuditEvents(ctx, t0.Add(5*time.Nanosecond), 3)
		if err != nil || !more || len(got) != 3 || string(got[0].Event) != `{"i":7}` || string(got[2].Event) != `{"i":9}` {
			t.Errorf("since+limit = %+v, %v, %v", got, more, err)
		}
		got, more, err = s.AuditEvents(ctx, t0.Add(5*time.Nanosecond), 5)
		if err != nil || more || len(got) != 5 {
			t.Errorf("exact limit = %d, %v, %v", len(got), more, err)
		}
		if got, _, err := s.AuditEvents(ctx, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), 0); err != nil || len(got) != 0 {
			t.Errorf("far future since = %d, %v", len(got), err)
		}
		if got, _, err := s.AuditEvents(ctx, time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC), 0); err != nil || len(got) != 10 {
			t.Errorf("far past since = %d, %v", len(got), err)
		}
	})
}

// TestTwoProcesses opens two Stores on one fresh database at the same time
// (both migrating) and has them write concurrently, as two workers or API
// replicas would.
func TestTwoProcesses(t *testing.T) {
	forEachFreshBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		var stores [2]*Store
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for i := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := b.dial()
				if err != nil {
					errs <- err
					return
				}
				stores[i] = s
			}()
		}
		wg.Wait()
		for _, s := range stores {
			if s != nil {
				t.Cleanup(func() { s.Close() })
			}
		}
		select {
		case err := <-errs:
			t.Fatalf("concurrent open: %v", err)
		default:
		}
		var applied int
		if err := stores[0].queryRow(ctx, `SELECT count(*) FROM `+VersionTable+` WHERE version_id > 0`).Scan(&applied); err != nil {
			t.Fatal(err)
		}
		if int64(applied) != latestVersion(t, b.name) {
			t.Errorf("versions applied %d times in all, want %d (each once)", applied, latestVersion(t, b.name))
		}

		job := domain.Job{ID: "shared-job", Target: "orders", State: domain.StateSucceeded, StartedAtMs: 5000, FinishedAtMs: 6000}
		baselines := []map[string]float64{{"a": 1, "b": 1}, {"b": 2, "c": 2}}
		for p, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 25; i++ {
					for _, err := range []error{
						s.RecordTaskResult(ctx, jobRecord(t, job)),
						s.AppendAuditEvent(ctx, AuditRecord{Time: time.Now(), Principal: fmt.Sprint("p", p), Action: "a", Outcome: "success",
							Event: json.RawMessage(fmt.Sprintf(`{"p":%d,"i":%d}`, p, i))}),
						s.RecordSamples(ctx, driver.Sample{Target: "orders", Metric: "m", Value: float64(i)}),
						s.RecordSamplesOnce(ctx, fmt.Sprint("batch-", i), driver.Sample{Target: "orders", Metric: "once", Value: float64(i)}),
						s.SaveBaseline(ctx, "orders", baselines[p]),
						s.RecordBackup(ctx, driver.BackupRecord{Target: "orders", Path: fmt.Sprint("/b/", i), Method: "m", Verified: true}),
					} {
						if err != nil {
							errs <- fmt.Errorf("store %d: %w", p, err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		s := stores[1]
		jobs, err := s.ListJobRecords(ctx, JobRecordFilter{})
		if err != nil || len(jobs) != 1 || jobs[0].ID != "shared-job" {
			t.Errorf("job records = %+v, %v; want one", jobs, err)
		}
		evs, _, err := s.AuditEvents(ctx, time.Time{}, 0)
		if err != nil || len(evs) != 50 {
			t.Fatalf("audit events = %d, %v; want 50", len(evs), err)
		}
		seen := map[int64]bool{}
		for _, e := range evs {
			if seen[e.Seq] {
				t.Errorf("sequence %d used twice", e.Seq)
			}
			seen[e.Seq] = true
		}
		if sm, err := s.Samples(ctx, "orders", "m", time.Time{}); err != nil || len(sm) != 50 {
			t.Errorf("samples = %d, %v; want 50", len(sm), err)
		}
		if sm, err := s.Samples(ctx, "orders", "once", time.Time{}); err != nil || len(sm) != 25 {
			t.Errorf("keyed samples = %d, %v; want 25 (each batch once)", len(sm), err)
		}
		bl, err := s.Baseline(ctx, "orders")
		if err != nil || (fmt.Sprint(bl) != fmt.Sprint(baselines[0]) && fmt.Sprint(bl) != fmt.Sprint(baselines[1])) {
			t.Errorf("baseline = %v, %v; want one of the two saved, not a merge", bl, err)
		}
		if bk, err := s.Backups(ctx, "orders", false, 0); err != nil || len(bk) != 25 {
			t.Errorf("backups = %d, %v; want 25", len(bk), err)
		}
	})
}

func TestOpenPostgresErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for _, dsn := range []string{"", "  ", "postgres://u:s3cr3t@[::1/x", "host=127.0.0.1 port=1 user=u password=s3cr3t connect_timeout=2"} {
		s, err := OpenPostgres(ctx, dsn)
		if err == nil {
			s.Close()
			t.Errorf("OpenPostgres(%q) succeeded", dsn)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
	if _, err := Open(""); err == nil {
		t.Error("Open(\"\") succeeded")
	}
}
