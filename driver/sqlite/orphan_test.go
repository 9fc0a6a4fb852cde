package sqlite

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

func touch(t *testing.T, path string, age time.Duration) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("leftover"), 0o600); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-age)
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

func age(t *testing.T, path string, d time.Duration) {
	t.Helper()
	at := time.Now().Add(-d)
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

func TestOrphanCleanup(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	bd := h.target.BackupDir
	stalePartial := filepath.Join(bd, "demo-20260101T000000.000Z.db.partial")
	freshPartial := filepath.Join(bd, "demo-20260102T000000.000Z.db.partial")
	verified := filepath.Join(bd, "demo-20250101T000000.000Z.db")
	otherTarget := filepath.Join(bd, "other-20260101T000000.000Z.db.partial")
	touch(t, stalePartial, 3*time.Hour)
	touch(t, freshPartial, time.Minute)
	touch(t, verified, 400*24*time.Hour)
	touch(t, otherTarget, 3*time.Hour)

	scratch := filepath.Join(bd, "scratch")
	staleDir := filepath.Join(scratch, "drill-old")
	touch(t, filepath.Join(staleDir, "restore.db"), 48*time.Hour)
	age(t, staleDir, 48*time.Hour)
	busyDir := filepath.Join(scratch, "drill-running")
	touch(t, filepath.Join(busyDir, "old.db"), 48*time.Hour)
	touch(t, filepath.Join(busyDir, "new.db"), time.Minute) // still in use
	age(t, busyDir, 48*time.Hour)

	res := h.run(domain.TaskOrphanCleanup, nil)
	removed := res.Details["removed"].([]string)
	if len(removed) != 2 || !strings.Contains(res.Summary, "removed 2") {
		t.Errorf("removed %v: %q", removed, res.Summary)
	}
	for path, want := range map[string]bool{
		stalePartial: false, freshPartial: true, verified: true, otherTarget: true,
		staleDir: false, busyDir: true, h.target.DSN: true,
	} {
		if fileExists(path) != want {
			t.Errorf("%s exists = %v, want %v", path, !want, want)
		}
	}
	// Idempotent: nothing left to remove.
	res = h.run(domain.TaskOrphanCleanup, nil)
	if len(res.Details["removed"].([]string)) != 0 || !strings.HasPrefix(res.Summary, "nothing to remove") {
		t.Errorf("second run: %q", res.Summary)
	}
}

func TestOrphanCleanupRefusesUnsafeScratchDir(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.target.ScratchDir = filepath.Dir(h.target.DSN) // holds the database itself
	_, err := h.d.Run(t.Context(), h.req(domain.TaskOrphanCleanup, nil, nil))
	if permanentKind(err) != driver.KindMisconfigured {
		t.Fatalf("err = %v, want Misconfigured", err)
	}
	if !fileExists(h.target.DSN) {
		t.Fatal("database removed")
	}
}
