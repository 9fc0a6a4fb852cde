package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

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

func TestDrillFullSequence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newDrillHarness(t)
	const id = "drill-demo-1767225600000"
	before := sourceCounts(t, h.target.DSN)

	pre, err := h.d.DrillPreflight(ctx, h.target, h.hist)
	if err != nil {
		t.Fatal(err)
	}
	usage, _ := readDiskUsage(h.target.DSN)
	if !pre.Healthy || pre.ScratchDir != h.target.ScratchDir || !fileExists(pre.ScratchDir) ||
		pre.NeededBytes != 2*(usage.File+usage.WAL) || pre.ScratchFreeBytes < pre.NeededBytes ||
		!strings.Contains(pre.Source, "latest backup file") || !strings.Contains(pre.Notes, "no verified backup on record") {
		t.Errorf("preflight = %+v", pre)
	}

	last := h.writeCanary(id, 5, 50*time.Millisecond)

	hb := &heartbeats{}
	s, err := h.d.DrillRestore(ctx, h.target, h.hist, driver.DrillRestoreRequest{DrillID: id}, hb.record)
	if err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(h.target.ScratchDir, "drill-"+id, restoredName)
	backup := filepath.Join(h.target.BackupDir, "demo-drill-"+id+".db")
	if s.DrillID != id || s.Dir != filepath.Dir(restored) || s.Location != "sqlite file "+restored ||
		s.RestoredFrom != backup || s.Port != 0 {
		t.Errorf("scratch = %+v", s)
	}
	if !fileExists(restored) || !fileExists(backup) || fileExists(backup+partialSuffix) || fileExists(restored+partialSuffix) {
		t.Errorf("files after restore: %v", h.drillLeftovers())
	}
	notes := strings.Join(hb.notes(), "\n")
	for _, want := range []string{"VACUUM INTO", "integrity_check of the copy", "verify rows of", "copy the backup", "restored into"} {
		if !strings.Contains(notes, want) {
			t.Errorf("no heartbeat %q in\n%s", want, notes)
		}
	}
	rec, ok, err := h.hist.LatestBackup(ctx, "demo")
	if err != nil || !ok || rec.Path != backup || rec.Method != "drill" || !rec.Verified || rec.Bytes == 0 || rec.Details["drill_id"] != id {
		t.Errorf("latest backup = %+v, %v, %v", rec, ok, err)
	}

	// A retried restore finds the copy and neither takes nor records another.
	hb2 := &heartbeats{}
	s2, err := h.d.DrillRestore(ctx, h.target, h.hist, driver.DrillRestoreRequest{DrillID: id}, hb2.record)
	if err != nil || s2 != s {
		t.Errorf("second restore = %+v, %v", s2, err)
	}
	if strings.Contains(strings.Join(hb2.notes(), "\n"), "VACUUM INTO") {
		t.Error("second restore took another backup")
	}
	if all, _ := h.store.Backups(ctx, "demo", false, 0); len(all) != 1 {
		t.Errorf("%d backup records, want 1", len(all))
	}

	start := time.Now()
	v, err := h.d.DrillVerify(ctx, h.target, s)
	if err != nil {
		t.Fatal(err)
	}
	if !v.IntegrityOK || len(v.Problems) != 0 || v.CanaryRows != 5 || v.Tables != len(before) {
		t.Errorf("verification = %+v", v)
	}
	if !v.NewestCanaryAt.Equal(last) || v.NewestCanaryAt.UnixNano() != last.UnixNano() {
		t.Errorf("newest canary %s, last write %s", v.NewestCanaryAt.Format(time.RFC3339Nano), last.Format(time.RFC3339Nano))
	}
	if v.ServingAt.Before(start) || v.ServingAt.After(time.Now()) {
		t.Errorf("serving at %s, verify started %s", v.ServingAt, start)
	}
	if len(v.RowCounts) != len(before) {
		t.Errorf("row counts %v, source %v", v.RowCounts, before)
	}
	for tbl, n := range before {
		if v.RowCounts[tbl] != n {
			t.Errorf("restored %s has %d rows, source %d", tbl, v.RowCounts[tbl], n)
		}
	}

	// Clean-up as the activity does it: scratch and backup, then canary.
	rep, err := h.d.DrillCleanup(ctx, h.target, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) != 2 || !strings.Contains(strings.Join(rep.Removed, "\n"), s.Dir) ||
		!strings.Contains(strings.Join(rep.Removed, "\n"), backup) {
		t.Errorf("removed %v", rep.Removed)
	}
	if err := h.d.CanaryCleanup(ctx, h.target, id); err != nil {
		t.Fatal(err)
	}
	if left := h.drillLeftovers(); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	if !fileExists(h.target.ScratchDir) {
		t.Error("the scratch directory itself was removed")
	}
	if hasCanaryTable(t, h.target.DSN) {
		t.Error("canary table left in the source")
	}
	after := sourceCounts(t, h.target.DSN)
	if len(after) != len(before) {
		t.Errorf("source tables %v, before %v", after, before)
	}
	for tbl, n := range before {
		if after[tbl] != n {
			t.Errorf("source %s has %d rows after the drill, %d before", tbl, after[tbl], n)
		}
	}

	// Clean-up again: nothing left, success.
	rep, err = h.d.DrillCleanup(ctx, h.target, id)
	if err != nil || len(rep.Removed) != 0 {
		t.Errorf("second clean-up = %v, %v", rep.Removed, err)
	}
	if err := h.d.CanaryCleanup(ctx, h.target, id); err != nil {
		t.Errorf("second canary clean-up: %v", err)
	}

	// The next preflight notes that the recorded backup is gone.
	pre, err = h.d.DrillPreflight(ctx, h.target, h.hist)
	if err != nil || !strings.Contains(pre.Notes, "no longer present") {
		t.Errorf("preflight after a drill = %+v, %v", pre, err)
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
	for _, tc := range []struct {
		name, cancelAt string
		leftover       func(h *drillHarness, id string) string // must exist after the interruption
	}{
		{"while verifying the backup", "verify rows of", func(h *drillHarness, id string) string {
			return filepath.Join(h.target.BackupDir, "demo-drill-"+id+".db"+partialSuffix)
		}},
		{"while copying into scratch", "copy the backup", func(h *drillHarness, id string) string {
			return filepath.Join(h.target.ScratchDir, "drill-"+id)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newDrillHarness(t)
			h.d.Delay = 20 * time.Millisecond // a pause before each step, where cancellation is seen
			const id = "drill-interrupted"
			h.writeCanary(id, 2, 0)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			progress := func(p driver.Progress) {
				if strings.HasPrefix(p.Note, tc.cancelAt) {
					cancel()
				}
			}
			_, err := h.d.DrillRestore(ctx, h.target, h.hist, driver.DrillRestoreRequest{DrillID: id}, progress)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted restore: err = %v, want context.Canceled", err)
			}
			if p := tc.leftover(h, id); !fileExists(p) {
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
		})
	}
}

func TestDrillRestoreResumesFromItsBackup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newDrillHarness(t)
	const id = "drill-resume"
	h.writeCanary(id, 3, 0)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, err := h.d.DrillRestore(cctx, h.target, h.hist, driver.DrillRestoreRequest{DrillID: id}, func(p driver.Progress) {
		if strings.HasPrefix(p.Note, "copy the backup") {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	// More canary rows after the failure instant must not reach the copy:
	// the retry restores the backup taken by the first attempt.
	if err := h.d.CanaryWrite(ctx, h.target, id, 4, time.Now()); err != nil {
		t.Fatal(err)
	}
	hb := &heartbeats{}
	s, err := h.d.DrillRestore(ctx, h.target, h.hist, driver.DrillRestoreRequest{DrillID: id}, hb.record)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.Join(hb.notes(), "\n"), "VACUUM INTO") {
		t.Error("retry took a new backup instead of reusing the verified one")
	}
	v, err := h.d.DrillVerify(ctx, h.target, s)
	if err != nil || !v.IntegrityOK || v.CanaryRows != 3 {
		t.Errorf("verify = %+v, %v", v, err)
	}
	if all, _ := h.store.Backups(ctx, "demo", false, 0); len(all) != 1 {
		t.Errorf("%d backup records, want 1", len(all))
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
			s, err := h.d.DrillRestore(ctx, h.target, h.hist, driver.DrillRestoreRequest{DrillID: id}, nil)
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

	noBackups := h.target
	noBackups.BackupDir = ""
	if _, err := h.d.DrillPreflight(ctx, noBackups, h.hist); permanentKind(err) != driver.KindMisconfigured {
		t.Errorf("no backup_dir: err = %v, want Misconfigured", err)
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

	// A verified backup on record is named in the notes.
	if _, err := h.d.DrillRestore(ctx, h.target, h.hist, driver.DrillRestoreRequest{DrillID: "x"}, nil); err != nil {
		t.Fatal(err)
	}
	pre, err := h.d.DrillPreflight(ctx, h.target, h.hist)
	if err != nil || !strings.Contains(pre.Notes, "demo-drill-x.db") {
		t.Errorf("preflight = %+v, %v", pre, err)
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
	s, err := h.d.DrillRestore(ctx, h.target, h.hist, driver.DrillRestoreRequest{DrillID: id}, nil)
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
