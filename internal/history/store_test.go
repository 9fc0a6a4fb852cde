package history

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "history.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// latestVersion is the newest migration shipped for driver.
func latestVersion(t *testing.T, driver string) int64 {
	t.Helper()
	ents, err := migrationFiles.ReadDir("migrations/" + driver)
	if err != nil || len(ents) == 0 {
		t.Fatalf("migrations of %s: %v", driver, err)
	}
	return int64(len(ents))
}

func TestSQLiteWAL(t *testing.T) {
	s, _ := openTemp(t)
	var mode string
	if err := s.db.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
}

func TestOpenIsIdempotent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend, s *Store) {
		ctx := t.Context()
		if err := s.RecordSamples(ctx, driver.Sample{Target: "t", Metric: "m", Value: 1}); err != nil {
			t.Fatal(err)
		}
		// A second open of the same database applies no migration twice
		// and sees the data.
		s2 := b.open(t)
		v, err := s2.SchemaVersion(ctx)
		if err != nil || v != latestVersion(t, b.name) {
			t.Errorf("schema version = %d, %v; want %d", v, err, latestVersion(t, b.name))
		}
		var applied int
		if err := s2.queryRow(ctx, `SELECT count(*) FROM `+VersionTable+` WHERE version_id > 0`).Scan(&applied); err != nil {
			t.Fatal(err)
		}
		if int64(applied) != latestVersion(t, b.name) {
			t.Errorf("%s has %d applied rows, want %d", VersionTable, applied, latestVersion(t, b.name))
		}
		got, err := s2.Samples(ctx, "t", "m", time.Time{})
		if err != nil || len(got) != 1 {
			t.Fatalf("samples after reopen = %v, %v", got, err)
		}
	})
}

func TestSamples(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ backend, s *Store) {
		ctx := t.Context()
		base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		var in []driver.Sample
		for i := 4; i >= 0; i-- { // inserted newest first
			in = append(in, driver.Sample{Target: "orders", Metric: "size_bytes", At: base.Add(time.Duration(i) * 24 * time.Hour), Value: float64(100 + i)})
		}
		in = append(in, driver.Sample{Target: "orders", Metric: "rows.events", At: base, Value: 7},
			driver.Sample{Target: "other", Metric: "size_bytes", At: base, Value: 9})
		if err := s.RecordSamples(ctx, in...); err != nil {
			t.Fatal(err)
		}
		got, err := s.Samples(ctx, "orders", "size_bytes", base.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 4 {
			t.Fatalf("got %d samples, want 4: %+v", len(got), got)
		}
		for i, sm := range got {
			if want := float64(101 + i); sm.Value != want || sm.Target != "orders" || sm.Metric != "size_bytes" {
				t.Errorf("sample %d = %+v, want value %v oldest first", i, sm, want)
			}
			if i > 0 && !sm.At.After(got[i-1].At) {
				t.Errorf("samples not oldest first: %v then %v", got[i-1].At, sm.At)
			}
		}
		if err := s.RecordSamples(ctx, driver.Sample{Target: "x", Metric: "m", Value: math.NaN()}); err == nil {
			t.Error("NaN sample accepted")
		}
		if err := s.RecordSamples(ctx, driver.Sample{Metric: "m", Value: 1}); err == nil {
			t.Error("sample without target accepted")
		}
		n, err := s.PruneSamples(ctx, base.Add(2*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if n != 4 { // two size samples of orders, rows.events, other
			t.Errorf("pruned %d, want 4", n)
		}
	})
}

func TestBaseline(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ backend, s *Store) {
		ctx := t.Context()
		got, err := s.Baseline(ctx, "orders")
		if err != nil || got == nil || len(got) != 0 {
			t.Fatalf("empty baseline = %v, %v; want empty map", got, err)
		}
		if err := s.SaveBaseline(ctx, "orders", map[string]float64{"a": 1.5, "b": 2}); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveBaseline(ctx, "orders", map[string]float64{"b": 3, "c": 4}); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveBaseline(ctx, "other", map[string]float64{"a": 9}); err != nil {
			t.Fatal(err)
		}
		got, err = s.Baseline(ctx, "orders")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]float64{"b": 3, "c": 4}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("baseline = %v, want %v (replaced, not merged)", got, want)
		}
	})
}

func TestBackups(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ backend, s *Store) {
		ctx := t.Context()
		if _, ok, err := s.LatestBackup(ctx, "orders"); ok || err != nil {
			t.Fatalf("LatestBackup on empty store = %v, %v", ok, err)
		}
		base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		recs := []driver.BackupRecord{
			{Target: "orders", Path: "/b/1.db", Method: "vacuum_into", TakenAt: base, Verified: true, Bytes: 10},
			{Target: "orders", Path: "/b/2.db", Method: "vacuum_into", TakenAt: base.Add(time.Hour), Verified: true, Bytes: 20,
				Details: map[string]any{"tables": 4}},
			{Target: "orders", Path: "/b/3.db", Method: "vacuum_into", TakenAt: base.Add(2 * time.Hour), Verified: false, Bytes: 30},
			{Target: "other", Path: "/o/1.db", Method: "vacuum_into", TakenAt: base.Add(3 * time.Hour), Verified: true, Bytes: 40},
		}
		for _, r := range recs {
			if err := s.RecordBackup(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		latest, ok, err := s.LatestBackup(ctx, "orders")
		if err != nil || !ok {
			t.Fatalf("LatestBackup = %v, %v", ok, err)
		}
		if latest.Path != "/b/2.db" || !latest.TakenAt.Equal(base.Add(time.Hour)) || latest.Bytes != 20 {
			t.Errorf("latest verified = %+v, want /b/2.db (the unverified newer one skipped)", latest)
		}
		if latest.Details["tables"] != float64(4) {
			t.Errorf("details = %v", latest.Details)
		}
		all, err := s.Backups(ctx, "orders", false, 0)
		if err != nil || len(all) != 3 || all[0].Path != "/b/3.db" || all[0].Verified {
			t.Errorf("Backups(all) = %+v, %v", all, err)
		}

		// A removed backup stays on record but is no longer the latest; the
		// other target's record with the same path is not touched.
		removedAt := base.Add(4 * time.Hour)
		if err := s.MarkBackupRemoved(ctx, "orders", "/b/2.db", removedAt); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkBackupRemoved(ctx, "orders", "/b/never-recorded.db", removedAt); err != nil {
			t.Errorf("marking an unknown path: %v", err)
		}
		latest, ok, err = s.LatestBackup(ctx, "orders")
		if err != nil || !ok || latest.Path != "/b/1.db" || latest.RemovedAt != nil {
			t.Errorf("LatestBackup after removal = %+v, %v, %v; want /b/1.db", latest, ok, err)
		}
		verified, err := s.Backups(ctx, "orders", true, 0)
		if err != nil || len(verified) != 2 || verified[0].Path != "/b/2.db" || verified[0].RemovedAt == nil || !verified[0].RemovedAt.Equal(removedAt) {
			t.Errorf("Backups(verified) = %+v, %v; want /b/2.db first, removed at %v", verified, err, removedAt)
		}
		if o, ok, err := s.LatestBackup(ctx, "other"); err != nil || !ok || o.Path != "/o/1.db" {
			t.Errorf("other target's latest = %+v, %v, %v", o, ok, err)
		}
	})
}

func TestTaskResults(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ backend, s *Store) {
		ctx := t.Context()
		base := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
		rec := TaskRecord{
			JobID: "job-1", Target: "orders", Task: domain.TaskQuotaCheck, State: domain.StateRunning,
			StartedAt: base, FinishedAt: base.Add(time.Second), Summary: "first",
			Details: map[string]any{"pct": 12.5},
		}
		if err := s.RecordTaskResult(ctx, rec); err != nil {
			t.Fatal(err)
		}
		// Recording the same task of the same job again replaces it.
		rec.State, rec.Summary = domain.StateSucceeded, "second"
		if err := s.RecordTaskResult(ctx, rec); err != nil {
			t.Fatal(err)
		}
		other := TaskRecord{
			JobID: "job-2", Target: "orders", Task: domain.TaskFullCheckDB, State: domain.StateFailed,
			StartedAt: base.Add(time.Hour), FinishedAt: base.Add(time.Hour + time.Minute), Error: "corrupt",
		}
		if err := s.RecordTaskResult(ctx, other); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordTaskResult(ctx, TaskRecord{JobID: "j", Target: "else", Task: domain.TaskQuotaCheck, StartedAt: base}); err != nil {
			t.Fatal(err)
		}
		got, err := s.TaskResults(ctx, "orders", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("got %d results, want 2: %+v", len(got), got)
		}
		if got[0].JobID != "job-2" || got[0].State != domain.StateFailed || got[0].Error != "corrupt" {
			t.Errorf("newest = %+v", got[0])
		}
		if got[1].Summary != "second" || got[1].State != domain.StateSucceeded || got[1].Details["pct"] != 12.5 ||
			!got[1].StartedAt.Equal(base) {
			t.Errorf("replaced record = %+v", got[1])
		}
		all, err := s.TaskResults(ctx, "", 0)
		if err != nil || len(all) != 3 {
			t.Errorf("all targets = %d, %v; want 3", len(all), err)
		}
		if err := s.RecordTaskResult(ctx, TaskRecord{Target: "x", Task: "t", Details: map[string]any{"bad": math.Inf(1)}}); err == nil {
			t.Error("details that do not encode as JSON were accepted")
		}
	})
}

func TestDrillReports(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ backend, s *Store) {
		ctx := t.Context()
		if _, err := s.DrillReport(ctx, "nope"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("missing report err = %v, want ErrNotFound", err)
		}
		if err := s.SaveDrillReport(ctx, "d1", "orders", json.RawMessage(`{"step":"preflight"}`)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
		if err := s.SaveDrillReport(ctx, "d2", "orders", json.RawMessage(`{"step":"report","passed":true}`)); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveDrillReport(ctx, "d1", "orders", json.RawMessage(`{"step":"verify"}`)); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveDrillReport(ctx, "d3", "orders", json.RawMessage(`{not json`)); err == nil {
			t.Error("invalid JSON accepted")
		}
		d1, err := s.DrillReport(ctx, "d1")
		if err != nil {
			t.Fatal(err)
		}
		if string(d1.Report) != `{"step":"verify"}` || d1.Target != "orders" || d1.UpdatedAt.Before(d1.CreatedAt) {
			t.Errorf("d1 = %+v", d1)
		}
		list, err := s.ListDrillReports(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != "d2" || list[1].ID != "d1" {
			t.Errorf("list = %+v, want d2, d1", list)
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ backend, s *Store) {
		ctx := t.Context()
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < 25; i++ {
					if err := s.RecordSamples(ctx, driver.Sample{Target: "t", Metric: "m", Value: float64(i)}); err != nil {
						errs <- err
						return
					}
					if err := s.SaveBaseline(ctx, fmt.Sprint("t", g%2), map[string]float64{"p": float64(i)}); err != nil {
						errs <- err
						return
					}
					if _, err := s.Samples(ctx, "t", "m", time.Time{}); err != nil {
						errs <- err
						return
					}
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		got, err := s.Samples(ctx, "t", "m", time.Time{})
		if err != nil || len(got) != 200 {
			t.Errorf("samples = %d, %v; want 200", len(got), err)
		}
	})
}
