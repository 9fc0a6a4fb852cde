package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/internal/history"
)

// drillHarness is a harness whose target has a scratch directory and a real
// history store.
type drillHarness struct {
	*harness
	store *history.Store
}

func newDrillHarness(t *testing.T) *drillHarness {
	t.Helper()
	h := newHarness(t)
	h.target.ScratchDir = filepath.Join(filepath.Dir(h.target.DSN), "scratch")
	store, err := history.Open(filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	h.hist = store
	return &drillHarness{harness: h, store: store}
}

// sourceCounts returns the row counts of the application tables of path
// (the canary table left out).
func sourceCounts(t *testing.T, path string) map[string]int64 {
	t.Helper()
	db := rawDB(t, path)
	defer db.Close()
	rels, err := listRelations(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, tbl := range userTables(rels) {
		if tbl == canaryTable {
			continue
		}
		n, err := countRows(context.Background(), db, tbl)
		if err != nil {
			t.Fatal(err)
		}
		out[tbl] = n
	}
	return out
}

func hasCanaryTable(t *testing.T, path string) bool {
	t.Helper()
	db := rawDB(t, path)
	defer db.Close()
	ok, err := tableExists(context.Background(), db, canaryTable)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// writeCanary writes n canary rows interval apart and returns the time
// stamp of the last.
func (h *drillHarness) writeCanary(id string, n int, interval time.Duration) time.Time {
	h.t.Helper()
	var last time.Time
	for i := 1; i <= n; i++ {
		if i > 1 {
			time.Sleep(interval)
		}
		last = time.Now()
		if err := h.d.CanaryWrite(context.Background(), h.target, id, int64(i), last); err != nil {
			h.t.Fatalf("canary write %d: %v", i, err)
		}
	}
	return last
}

// drillLeftovers lists every file or directory a drill can leave behind.
func (h *drillHarness) drillLeftovers() []string {
	h.t.Helper()
	var out []string
	entries, _ := os.ReadDir(h.target.ScratchDir)
	for _, e := range entries {
		out = append(out, filepath.Join(h.target.ScratchDir, e.Name()))
	}
	entries, _ = os.ReadDir(h.target.BackupDir)
	for _, e := range entries {
		if strings.Contains(e.Name(), "drill") {
			out = append(out, filepath.Join(h.target.BackupDir, e.Name()))
		}
	}
	return out
}

// backup runs backup_verification and returns the verified backup it
// recorded.
func (h *drillHarness) backup() driver.BackupRecord {
	h.t.Helper()
	h.run(domain.TaskBackupVerification, nil)
	rec, ok, err := h.hist.LatestBackup(context.Background(), h.target.Name)
	if err != nil || !ok {
		h.t.Fatalf("no verified backup after backup_verification: %v", err)
	}
	return rec
}

// addEvent inserts one row into the source's events table.
func (h *drillHarness) addEvent() {
	h.t.Helper()
	db := rawDB(h.t, h.target.DSN)
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO events (kind, subject, payload, created_at) VALUES ('after', 'backup', 'x', 0)`); err != nil {
		h.t.Fatal(err)
	}
}

// The drill restores the latest verified backup, not a copy of the live
// file: rows written after that backup (canary and application rows) are
// not in the restored copy, and the scratch reports that backup.
func TestDrillFullSequence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newDrillHarness(t)
	const id = "drill-demo-1767225600000"

	// No verified backup yet: preflight and restore both say what to do.
	for name, err := range map[string]error{
		"preflight": func() error { _, err := h.d.DrillPreflight(ctx, h.target, h.hist); return err }(),
		"restore": func() error {
			_, err := h.d.DrillRestore(ctx, h.target, h.hist, driver.DrillRestoreRequest{DrillID: id, FailureAt: time.Now()}, nil)
			return err
		}(),
	} {
		if permanentKind(err) != driver.KindMisconfigured || !strings.Contains(fmt.Sprint(err), "no verified backup") ||
			!strings.Contains(fmt.Sprint(err), "run backup_verification first") {
			t.Errorf("%s without a verified backup: %v", name, err)
		}
	}
	if left := h.drillLeftovers(); len(left) != 0 {
		t.Errorf("a refused restore left %v", left)
	}

	before := sourceCounts(t, h.target.DSN)
	rec := h.backup()
	fi, err := os.Stat(rec.Path)
	if err != nil {
		t.Fatal(err)
	}

	pre, err := h.d.DrillPreflight(ctx, h.target, h.hist)
	if err != nil {
		t.Fatal(err)
	}
	if !pre.Healthy || pre.ScratchDir != h.target.ScratchDir || !fileExists(pre.ScratchDir) ||
		pre.NeededBytes != fi.Size() || pre.ScratchFreeBytes < pre.NeededBytes ||
		!strings.Contains(pre.Source, rec.Path) || !strings.Contains(pre.Source, "backup_restore") {
		t.Errorf("preflight = %+v", pre)
	}

	// Writes after the backup: the canary, and an application row.
	h.writeCanary(id, 5, 50*time.Millisecond)
	h.addEvent()
	failureAt := time.Now()

	hb := &heartbeats{}
	s, err := h.d.DrillRestore(ctx, h.target, h.hist, driver.DrillRestoreRequest{DrillID: id, FailureAt: failureAt}, hb.record)
	if err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(h.target.ScratchDir, "drill-"+id, restoredName)
	if s.DrillID != id || s.Dir != filepath.Dir(restored) || s.Location != "sqlite file "+restored ||
		s.RestoredFrom != rec.Path || s.Port != 0 || s.Strategy != driver.StrategyBackupRestore ||
		s.BackupID != filepath.Base(rec.Path) || !s.BackupAt.Equal(rec.TakenAt) ||
		s.RestoredBytes != fi.Size() || s.CopyMs <= 0 || s.WALRange != "" || s.WALBytes != 0 {
		t.Errorf("scratch = %+v, backup %+v", s, rec)
	}
	if !fileExists(restored) || fileExists(restored+partialSuffix) {
		t.Errorf("files after restore: %v", h.drillLeftovers())
	}
	notes := strings.Join(hb.notes(), "\n")
	if strings.Contains(notes, "VACUUM INTO") || !strings.Contains(notes, "copy the verified backup "+s.BackupID) {
		t.Errorf("heartbeats:\n%s", notes)
	}
	if all, _ := h.store.Backups(ctx, "demo", false, 0); len(all) != 1 {
		t.Errorf("%d backup records, want 1 (the drill takes no backup of its own)", len(all))
	}

	// A retried restore finds the copy and copies nothing again.
	hb2 := &heartbeats{}
	s2, err := h.d.DrillRestore(ctx, h.target, h.hist, driver.DrillRestoreRequest{DrillID: id, FailureAt: failureAt}, hb2.record)
	if err != nil || s2.BackupID != s.BackupID || !s2.BackupAt.Equal(s.BackupAt) || s2.RestoredBytes != s.RestoredBytes || s2.Dir != s.Dir {
		t.Errorf("second restore = %+v, %v", s2, err)
	}
	if !strings.Contains(strings.Join(hb2.notes(), "\n"), "already in place") {
		t.Errorf("second restore copied again: %q", hb2.notes())
	}

	start := time.Now()
	v, err := h.d.DrillVerify(ctx, h.target, s)
	if err != nil {
		t.Fatal(err)
	}
	if !v.IntegrityOK || len(v.Problems) != 0 || v.CanaryRows != 0 || !v.NewestCanaryAt.IsZero() || v.Tables != len(before) {
		t.Errorf("verification = %+v (the canary rows came after the backup)", v)
	}
	if v.ServingAt.Before(start) || v.ServingAt.After(time.Now()) {
		t.Errorf("serving at %s, verify started %s", v.ServingAt, start)
	}
	for tbl, n := range before {
		if v.RowCounts[tbl] != n {
			t.Errorf("restored %s has %d rows, %d at backup time", tbl, v.RowCounts[tbl], n)
		}
	}
	if now := sourceCounts(t, h.target.DSN); now["events"] != before["events"]+1 {
		t.Errorf("source events %d, want %d", now["events"], before["events"]+1)
	}

	// Clean-up removes the scratch directory, never the backup it restored.
	rep, err := h.d.DrillCleanup(ctx, h.target, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) != 1 || !strings.Contains(rep.Removed[0], s.Dir) || len(rep.RemovedBackups) != 0 {
		t.Errorf("removed %v (backups %v)", rep.Removed, rep.RemovedBackups)
	}
	if err := h.d.CanaryCleanup(ctx, h.target, id); err != nil {
		t.Fatal(err)
	}
	if left := h.drillLeftovers(); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	if !fileExists(rec.Path) || !fileExists(h.target.ScratchDir) {
		t.Error("clean-up removed the restored backup or the scratch directory itself")
	}
	if hasCanaryTable(t, h.target.DSN) {
		t.Error("canary table left in the source")
	}

	// Clean-up again: nothing left, success.
	rep, err = h.d.DrillCleanup(ctx, h.target, id)
	if err != nil || len(rep.Removed) != 0 {
		t.Errorf("second clean-up = %v, %v", rep.Removed, err)
	}
}

// A backup taken after the failure instant is never restored: the drill
// takes the newest verified backup from before it.
func TestDrillRestoresTheBackupBeforeTheFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newDrillHarness(t)
	const id = "drill-before"
	first := h.backup()
	h.writeCanary(id, 3, 0)
	time.Sleep(5 * time.Millisecond)
	failureAt := time.Now()
	time.Sleep(5 * time.Millisecond)
	second := h.backup() // holds the canary rows: written after the failure
	if second.Path == first.Path || !second.TakenAt.After(failureAt) {
		t.Fatalf("backups %+v and %+v", first, second)
	}
	s, err := h.d.DrillRestore(ctx, h.target, h.hist, driver.DrillRestoreRequest{DrillID: id, FailureAt: failureAt}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.RestoredFrom != first.Path || !s.BackupAt.Equal(first.TakenAt) {
		t.Errorf("restored %s (at %s), want %s (at %s)", s.RestoredFrom, s.BackupAt, first.Path, first.TakenAt)
	}
	v, err := h.d.DrillVerify(ctx, h.target, s)
	if err != nil || v.CanaryRows != 0 {
		t.Errorf("verify = %+v, %v", v, err)
	}

	// A failure instant before every backup: none to restore.
	_, err = h.d.DrillRestore(ctx, h.target, h.hist, driver.DrillRestoreRequest{DrillID: "drill-early", FailureAt: first.TakenAt.Add(-time.Second)}, nil)
	if permanentKind(err) != driver.KindMisconfigured || !strings.Contains(err.Error(), "before the failure instant") {
		t.Errorf("restore before every backup: %v", err)
	}

	// A drill without a failure instant (preflight, say) sees the newest.
	pre, err := h.d.DrillPreflight(ctx, h.target, h.hist)
	if err != nil || !strings.Contains(pre.Source, second.Path) {
		t.Errorf("preflight = %+v, %v", pre, err)
	}
}

// SQLite has no replica: replica_clone is refused by name, whether the
// drill or the target asks for it; an unknown strategy is bad input.
func TestDrillStrategies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newDrillHarness(t)
	h.backup()
	clone := h.target
	clone.DrillStrategy = driver.StrategyReplicaClone
	if _, err := h.d.DrillPreflight(ctx, clone, h.hist); permanentKind(err) != driver.KindNotSupported ||
		!strings.Contains(err.Error(), `"replica_clone"`) || !strings.Contains(err.Error(), "sqlite") {
		t.Errorf("preflight with replica_clone: %v", err)
	}
	for _, tc := range []struct {
		target   driver.Target
		strategy string
		kind     string
	}{
		{h.target, driver.StrategyReplicaClone, driver.KindNotSupported},
		{clone, "", driver.KindNotSupported},
		{h.target, "pitr", driver.KindInvalidInput},
	} {
		_, err := h.d.DrillRestore(ctx, tc.target, h.hist, driver.DrillRestoreRequest{DrillID: "drill-s", Strategy: tc.strategy, FailureAt: time.Now()}, nil)
		if permanentKind(err) != tc.kind {
			t.Errorf("restore by %q (target's %q): %v, want %s", tc.strategy, tc.target.DrillStrategy, err, tc.kind)
		}
	}
	// The drill's strategy wins over the target's.
	s, err := h.d.DrillRestore(ctx, clone, h.hist, driver.DrillRestoreRequest{DrillID: "drill-s", Strategy: driver.StrategyBackupRestore, FailureAt: time.Now()}, nil)
	if err != nil || s.Strategy != driver.StrategyBackupRestore {
		t.Errorf("restore by backup_restore = %+v, %v", s, err)
	}
	if left := h.drillLeftovers(); len(left) != 1 {
		t.Errorf("leftovers %v, want the one restore", left)
	}
}

func TestDrillCanaryIsIdempotentAndPerDrill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newDrillHarness(t)
	at1, at2 := time.Unix(0, 1_000_000_001), time.Unix(0, 2_000_000_002)
	for _, w := range []struct {
		id  string
		seq int64
		at  time.Time
	}{{"a", 1, at1}, {"a", 1, at2}, {"a", 2, at1}, {"b", 1, at1}} {
		if err := h.d.CanaryWrite(ctx, h.target, w.id, w.seq, w.at); err != nil {
			t.Fatal(err)
		}
	}
	db := rawDB(t, h.target.DSN)
	var n, newest int64
	if err := db.QueryRow(`SELECT count(*), max(written_at_ns) FROM `+canaryTable+` WHERE drill_id = 'a'`).Scan(&n, &newest); err != nil {
		t.Fatal(err)
	}
	if n != 2 || newest != at2.UnixNano() {
		t.Errorf("drill a: %d rows, newest %d", n, newest)
	}
	db.Close()

	// Cleaning up drill a leaves drill b's canary running.
	if err := h.d.CanaryCleanup(ctx, h.target, "a"); err != nil {
		t.Fatal(err)
	}
	if !hasCanaryTable(t, h.target.DSN) {
		t.Fatal("canary table dropped while drill b still has rows")
	}
	if err := h.d.CanaryCleanup(ctx, h.target, "b"); err != nil {
		t.Fatal(err)
	}
	if hasCanaryTable(t, h.target.DSN) {
		t.Error("canary table left after the last drill's clean-up")
	}
	if err := h.d.CanaryWrite(ctx, h.target, "", 1, at1); permanentKind(err) != driver.KindInvalidInput {
		t.Errorf("empty drill id: %v", err)
	}
}

func TestDrillCleanupAfterInterruptedRestore(t *testing.T) {
	t.Parallel()
	h := newDrillHarness(t)
	const id = "drill-interrupted"
	h.backup()
	h.writeCanary(id, 2, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	progress := func(p driver.Progress) {
		if strings.HasPrefix(p.Note, "copy the verified backup") {
			cancel()
		}
	}
	_, err := h.d.DrillRestore(ctx, h.target, h.hist, driver.DrillRestoreRequest{DrillID: id, FailureAt: time.Now()}, progress)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted restore: err = %v, want context.Canceled", err)
	}
	if p := filepath.Join(h.target.ScratchDir, "drill-"+id); !fileExists(p) {
		t.Fatalf("%s not there after the interruption (leftovers %v): the test interrupts too late", p, h.drillLeftovers())
	}
	rep, err := h.d.DrillCleanup(context.Background(), h.target, id)
	if err != nil || len(rep.Removed) == 0 {
		t.Errorf("clean-up = %v, %v", rep.Removed, err)
	}
	if err := h.d.CanaryCleanup(context.Background(), h.target, id); err != nil {
		t.Fatal(err)
	}
	if left := h.drillLeftovers(); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	if hasCanaryTable(t, h.target.DSN) {
		t.Error("canary table left in the source")
	}
}

// A retry after an interrupted copy restores the same backup, even when a
// newer one was taken meanwhile (after the failure instant).
func TestDrillRestoreRetryRestoresTheSameBackup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newDrillHarness(t)
	const id = "drill-resume"
	rec := h.backup()
	failureAt := time.Now()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, err := h.d.DrillRestore(cctx, h.target, h.hist, driver.DrillRestoreRequest{DrillID: id, FailureAt: failureAt}, func(p driver.Progress) {
		if strings.HasPrefix(p.Note, "copy the verified backup") {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	time.Sleep(5 * time.Millisecond)
	h.writeCanary(id, 1, 0)
	h.backup()
	s, err := h.d.DrillRestore(ctx, h.target, h.hist, driver.DrillRestoreRequest{DrillID: id, FailureAt: failureAt}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.RestoredFrom != rec.Path {
		t.Errorf("retry restored %s, want %s", s.RestoredFrom, rec.Path)
	}
	v, err := h.d.DrillVerify(ctx, h.target, s)
	if err != nil || !v.IntegrityOK || v.CanaryRows != 0 {
		t.Errorf("verify = %+v, %v", v, err)
	}
	if _, err := h.d.DrillCleanup(ctx, h.target, id); err != nil {
		t.Fatal(err)
	}
	if left := h.drillLeftovers(); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// corrupt overwrites n bytes of path at offset with garbage.
func corrupt(t *testing.T, path string, offset int64, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := make([]byte, n)
	for i := range junk {
		junk[i] = byte(i*131 + 7)
	}
	if _, err := f.WriteAt(junk, offset); err != nil {
		t.Fatal(err)
	}
}

func TestDrillVerifyReportsCorruption(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		offset int64
		n      int
	}{
		{"damaged pages", 8 * 4096, 6 * 4096},
		{"not a database", 0, 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			h := newDrillHarness(t)
			const id = "drill-corrupt"
			h.writeCanary(id, 1, 0)
			h.backup()
			s, err := h.d.DrillRestore(ctx, h.target, h.hist, driver.DrillRestoreRequest{DrillID: id, FailureAt: time.Now()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			corrupt(t, filepath.Join(s.Dir, restoredName), tc.offset, tc.n)
			v, err := h.d.DrillVerify(ctx, h.target, s)
			if err != nil {
				t.Fatalf("verify of a corrupted copy: %v (want a report, not an error)", err)
			}
			if v.IntegrityOK || len(v.Problems) == 0 {
				t.Errorf("verification of a corrupted copy = %+v", v)
			}
			t.Logf("problems: %q", v.Problems)
			if _, err := h.d.DrillCleanup(ctx, h.target, id); err != nil {
				t.Fatal(err)
			}
			if left := h.drillLeftovers(); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

func TestDrillPreflightRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newDrillHarness(t)

	missing := h.target
	missing.DSN = filepath.Join(t.TempDir(), "missing.db")
	if _, err := h.d.DrillPreflight(ctx, missing, h.hist); permanentKind(err) != driver.KindMisconfigured {
		t.Errorf("missing file: err = %v, want Misconfigured", err)
	}
	if fileExists(missing.DSN) {
		t.Error("preflight created the missing database")
	}

	noDirs := h.target
	noDirs.BackupDir, noDirs.ScratchDir = "", ""
	if _, err := h.d.DrillPreflight(ctx, noDirs, h.hist); permanentKind(err) != driver.KindMisconfigured {
		t.Errorf("no backup_dir nor scratch_dir: err = %v, want Misconfigured", err)
	}
	if _, err := h.d.DrillPreflight(ctx, h.target, nil); permanentKind(err) != driver.KindMisconfigured || !strings.Contains(err.Error(), "history store") {
		t.Errorf("no history store: err = %v, want Misconfigured", err)
	}

	unsafe := h.target
	unsafe.ScratchDir = filepath.Dir(h.target.DSN)
	if _, err := h.d.DrillPreflight(ctx, unsafe, h.hist); permanentKind(err) != driver.KindMisconfigured {
		t.Errorf("scratch dir holding the database: err = %v, want Misconfigured", err)
	}

	garbage := h.target
	garbage.DSN = filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(garbage.DSN, []byte(strings.Repeat("not a database ", 500)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.DrillPreflight(ctx, garbage, h.hist); permanentKind(err) != driver.KindIntegrityViolation {
		t.Errorf("not a database: err = %v, want IntegrityViolation", err)
	}

	// A verified backup whose file is gone is refused by name.
	rec := (&drillHarness{harness: h.harness}).backup()
	if err := os.Remove(rec.Path); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.DrillPreflight(ctx, h.target, h.hist); permanentKind(err) != driver.KindMisconfigured || !strings.Contains(err.Error(), rec.Path) {
		t.Errorf("backup file gone: err = %v, want Misconfigured naming it", err)
	}
}

func TestDrillNamesStayInsideTheirDirectories(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newDrillHarness(t)
	safe := regexp.MustCompile(`^drill-[A-Za-z0-9_-]+$`)
	seen := map[string]string{}
	for _, id := range []string{"a/b", "a_b", "..", "../..", "/", ".", "a b", strings.Repeat("x", 300), "ok-id_1"} {
		name, err := drillName(id)
		if err != nil || !safe.MatchString(name) || len(name) > 100 {
			t.Errorf("drillName(%q) = %q, %v", id, name, err)
		}
		if other, dup := seen[name]; dup {
			t.Errorf("drills %q and %q share the name %s", id, other, name)
		}
		seen[name] = id
	}
	if name, _ := drillName("ok-id_1"); name != "drill-ok-id_1" {
		t.Errorf("a safe id is changed: %s", name)
	}
	if _, err := drillName(""); permanentKind(err) != driver.KindInvalidInput {
		t.Errorf("empty id: %v", err)
	}

	// Sentinels the clean-up of hostile ids must not touch.
	sentinels := []string{
		filepath.Join(h.target.ScratchDir, "keep"),
		filepath.Join(h.target.BackupDir, "demo-20260101T000000.000Z.db"),
		filepath.Join(filepath.Dir(h.target.DSN), "keep"),
	}
	for _, p := range sentinels {
		touch(t, p, 0)
	}
	for _, id := range []string{"..", "../..", "/", ".", "../backups", "../../demo"} {
		rep, err := h.d.DrillCleanup(ctx, h.target, id)
		if err != nil || len(rep.Removed) != 0 {
			t.Errorf("clean-up of %q = %v, %v", id, rep.Removed, err)
		}
	}
	for _, p := range append(sentinels, h.target.DSN) {
		if !fileExists(p) {
			t.Errorf("%s removed", p)
		}
	}

	// A hostile id still runs a whole drill inside the scratch directory.
	const id = "../../etc/passwd"
	h.writeCanary(id, 2, 0)
	h.backup()
	s, err := h.d.DrillRestore(ctx, h.target, h.hist, driver.DrillRestoreRequest{DrillID: id, FailureAt: time.Now()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(s.Dir) != h.target.ScratchDir {
		t.Errorf("scratch dir %s is not in %s", s.Dir, h.target.ScratchDir)
	}
	v, err := h.d.DrillVerify(ctx, h.target, s)
	if err != nil || v.CanaryRows != 2 {
		t.Errorf("verify = %+v, %v", v, err)
	}
	bad := s
	bad.Dir = filepath.Dir(h.target.DSN)
	if _, err := h.d.DrillVerify(ctx, h.target, bad); permanentKind(err) != driver.KindInvalidInput {
		t.Errorf("verify of a foreign dir: %v", err)
	}
	if _, err := h.d.DrillCleanup(ctx, h.target, id); err != nil {
		t.Fatal(err)
	}
	if err := h.d.CanaryCleanup(ctx, h.target, id); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(sentinels, h.target.DSN) {
		if !fileExists(p) {
			t.Errorf("%s removed", p)
		}
	}
	left := h.drillLeftovers()
	if len(left) != 1 || left[0] != sentinels[0] {
		t.Errorf("left behind: %v", left)
	}
}
