package postgres_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

var walRangeRE = regexp.MustCompile(`^([0-9A-F]{24})-([0-9A-F]{24})$`)

// switchAndArchive ends the primary's current WAL segment and waits until
// the archiver has archived it; it returns the segment's name.
func (de *drillEnv) switchAndArchive(t *testing.T) string {
	t.Helper()
	seg := pgcluster.Scalar[string](t, de.primary, "shop", `SELECT pg_walfile_name(pg_current_wal_lsn())`)
	de.primary.Exec(t, "shop", `SELECT pg_switch_wal()`)
	waitFor(t, 30*time.Second, "the archiver to archive "+seg, func() bool {
		_, err := os.Stat(filepath.Join(de.primary.ArchiveDir, seg))
		return err == nil
	})
	return seg
}

// TestDrillBackupRestore: on a primary (with a streaming standby) archiving
// its WAL, the drill by backup_restore restores the base backup that
// backup_verification recorded as verified and replays the archive up to
// the failure instant: canary rows written after it are not restored, the
// newest one before it is; the scratch names the backup and the WAL range.
// With the archive behind the failure instant it replays what is archived
// (the RPO is the archive's lag). With a segment lost from the archive it
// fails for good naming the missing segment, and leaves nothing.
func TestDrillBackupRestore(t *testing.T) {
	t.Parallel()
	de := newDrillEnv(t)
	e := de.env
	e.target.WALArchiveDir = de.primary.ArchiveDir
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// No verified base backup yet: the default is replica_clone, and
	// backup_restore cannot run.
	pre, err := e.d.DrillPreflight(ctx, e.target, e.history)
	if err != nil || !strings.Contains(pre.Notes, "strategy replica_clone (the driver's default") || !strings.Contains(pre.Source, "pg_basebackup -X stream of standby") {
		t.Fatalf("preflight without a backup: %+v %v", pre, err)
	}
	withStrategy := e.target
	withStrategy.DrillStrategy = driver.StrategyBackupRestore
	if _, err := e.d.DrillPreflight(ctx, withStrategy, e.history); permanentKind(err) != driver.KindMisconfigured || !strings.Contains(err.Error(), "no verified pg_basebackup backup") {
		t.Fatalf("preflight of backup_restore without a backup: %v, want Misconfigured", err)
	}
	if _, err := e.d.DrillRestore(ctx, e.target, e.history, driver.DrillRestoreRequest{DrillID: "x", Strategy: "snapshot"}, nil); permanentKind(err) != driver.KindInvalidInput {
		t.Fatalf("unknown strategy: %v, want InvalidInput", err)
	}

	if _, _, err := e.run(ctx, domain.TaskBackupVerification, domain.TaskOptions{"method": "pg_basebackup"}, nil); err != nil {
		t.Fatalf("backup_verification: %v", err)
	}
	rec, ok, _ := e.history.LatestBackup(ctx, e.target.Name)
	if !ok || !rec.Verified {
		t.Fatalf("no verified backup recorded: %+v", rec)
	}
	backupID := filepath.Base(rec.Path)
	label, err := os.ReadFile(filepath.Join(rec.Path, "data", "backup_label"))
	if err != nil {
		t.Fatal(err)
	}
	startSeg := regexp.MustCompile(`\(file ([0-9A-F]{24})\)`).FindStringSubmatch(string(label))[1]

	pre, err = e.d.DrillPreflight(ctx, e.target, e.history)
	if err != nil {
		t.Fatalf("preflight with a backup: %v", err)
	}
	t.Logf("preflight: %s; %s", pre.Source, pre.Notes)
	if !strings.Contains(pre.Source, "verified base backup "+backupID) || !strings.Contains(pre.Source, de.primary.ArchiveDir) ||
		!strings.Contains(pre.Notes, "strategy backup_restore (the driver's default") || !strings.Contains(pre.Notes, "WAL chain OK") {
		t.Errorf("preflight %+v", pre)
	}

	// A wal_archive_dir that is not there: preflight and restore refuse.
	noArchive := e.target
	noArchive.WALArchiveDir = filepath.Join(de.primary.Root, "no-such-archive")
	if _, err := e.d.DrillPreflight(ctx, noArchive, e.history); permanentKind(err) != driver.KindMisconfigured || !strings.Contains(err.Error(), "wal_archive_dir") {
		t.Errorf("preflight with a missing archive: %v, want Misconfigured naming wal_archive_dir", err)
	}
	if _, err := e.d.DrillRestore(ctx, noArchive, e.history, driver.DrillRestoreRequest{DrillID: "no-archive", FailureAt: time.Now()}, nil); permanentKind(err) != driver.KindMisconfigured {
		t.Errorf("restore with a missing archive: %v, want Misconfigured", err)
	}
	assertNothingLeft(t, filepath.Join(e.target.ScratchDir, "drill-no-archive"), 0)

	t.Run("to the failure instant", func(t *testing.T) {
		const id = "pitr"
		lastAt := writeCanaries(t, e, id, 1, 10)
		failureAt := time.Now()
		// Production goes on after the failure instant; the archive gets
		// those rows too, and the restore must stop before them.
		writeCanaries(t, e, id, 11, 15)
		failureSeg := de.switchAndArchive(t)

		rec2 := &recorder{}
		start := time.Now()
		s, err := e.d.DrillRestore(ctx, e.target, e.history, driver.DrillRestoreRequest{DrillID: id, FailureAt: failureAt}, rec2.report)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		defer e.d.DrillCleanup(context.Background(), e.target, id)
		t.Logf("restore %d ms (copy %d ms, replay %d ms): %d bytes restored, %d WAL bytes %s; %s",
			took.Milliseconds(), s.CopyMs, s.ReplayMs, s.RestoredBytes, s.WALBytes, s.WALRange, s.RestoredFrom)
		checkScratch(t, e, s, id)
		if s.Strategy != driver.StrategyBackupRestore || s.BackupID != backupID || !s.BackupAt.Equal(rec.TakenAt) {
			t.Errorf("scratch strategy %q backup %q at %s, want backup_restore of %s at %s", s.Strategy, s.BackupID, s.BackupAt, backupID, rec.TakenAt)
		}
		m := walRangeRE.FindStringSubmatch(s.WALRange)
		if m == nil || m[1] != startSeg || m[2] < failureSeg {
			t.Errorf("WAL range %q, want %s-(%s or later)", s.WALRange, startSeg, failureSeg)
		}
		if s.RestoredBytes < 10<<20 || s.WALBytes <= 0 || s.ReplayMs <= 0 || s.CopyMs < 0 ||
			!strings.Contains(s.RestoredFrom, "strategy backup_restore (the driver's default") || rec2.count() == 0 {
			t.Errorf("scratch %+v (%d heartbeats)", s, rec2.count())
		}
		v, err := e.d.DrillVerify(ctx, e.target, s)
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		rpo := failureAt.Sub(v.NewestCanaryAt)
		t.Logf("verify: %d canary rows, newest %s; RPO %d µs", v.CanaryRows, v.NewestCanaryAt.Format(time.RFC3339Nano), rpo.Microseconds())
		if !v.IntegrityOK || v.CanaryRows != 10 || !v.NewestCanaryAt.Equal(lastAt.Truncate(time.Microsecond)) || rpo < 0 || rpo > canaryInterval {
			t.Errorf("restored %d canary rows, newest %s (integrity %t %v); want the 10 written before the failure instant, newest %s",
				v.CanaryRows, v.NewestCanaryAt, v.IntegrityOK, v.Problems, lastAt)
		}
		for _, tbl := range de.seed.Tables {
			if want := pgcluster.Scalar[int64](t, de.primary, "shop", "SELECT count(*) FROM "+tbl); v.RowCounts[tbl] != want {
				t.Errorf("%s: %d rows restored, %d on the primary", tbl, v.RowCounts[tbl], want)
			}
		}
		// Retried: the same instance.
		if again, err := e.d.DrillRestore(ctx, e.target, e.history, driver.DrillRestoreRequest{DrillID: id, FailureAt: failureAt}, nil); err != nil || again != s {
			t.Errorf("restore again: %+v %v, want %+v", again, err, s)
		}
		rep, err := e.d.DrillCleanup(ctx, e.target, id)
		if err != nil {
			t.Fatalf("cleanup: %v", err)
		}
		t.Logf("cleanup removed %q", rep.Removed)
		assertNothingLeft(t, s.Dir, s.Port)
		if _, err := os.Stat(filepath.Join(rec.Path, "data", "backup_label")); err != nil {
			t.Errorf("the restored backup itself was touched: %v", err)
		}
		de.checkSentinel(t)
	})

	t.Run("archive behind the failure instant", func(t *testing.T) {
		const id = "lagging-archive"
		archivedAt := writeCanaries(t, e, id, 1, 5)
		de.switchAndArchive(t)
		// Written, but still in the primary's current segment: a real
		// failure now would lose them.
		writeCanaries(t, e, id, 6, 8)
		failureAt := time.Now()
		s, err := e.d.DrillRestore(ctx, e.target, e.history, driver.DrillRestoreRequest{DrillID: id, Strategy: driver.StrategyBackupRestore, FailureAt: failureAt}, nil)
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		defer e.d.DrillCleanup(context.Background(), e.target, id)
		t.Logf("%s; WAL %s", s.RestoredFrom, s.WALRange)
		v, err := e.d.DrillVerify(ctx, e.target, s)
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		rpo := failureAt.Sub(v.NewestCanaryAt)
		t.Logf("%d canary rows, RPO %d ms", v.CanaryRows, rpo.Milliseconds())
		if v.CanaryRows != 5 || !v.NewestCanaryAt.Equal(archivedAt.Truncate(time.Microsecond)) || rpo < 3*canaryInterval {
			t.Errorf("restored %d canary rows, newest %s, RPO %s; want the 5 archived, newest %s", v.CanaryRows, v.NewestCanaryAt, rpo, archivedAt)
		}
		if !strings.Contains(s.RestoredFrom, "every archived segment was replayed") {
			t.Errorf("restored from %q should say the whole archive was replayed", s.RestoredFrom)
		}
		if _, err := e.d.DrillCleanup(ctx, e.target, id); err != nil {
			t.Fatal(err)
		}
		assertNothingLeft(t, s.Dir, s.Port)
	})

	// Cancelled while the copy replays: nothing is left once cleaned up.
	t.Run("cancelled during replay", func(t *testing.T) {
		const id = "cancel-replay"
		cctx, cancelRestore := context.WithCancel(ctx)
		defer cancelRestore()
		var once sync.Once
		progress := func(p driver.Progress) {
			if strings.HasPrefix(p.Note, "starting the scratch instance") {
				once.Do(func() { time.AfterFunc(100*time.Millisecond, cancelRestore) })
			}
		}
		_, err := e.d.DrillRestore(cctx, e.target, e.history, driver.DrillRestoreRequest{DrillID: id, FailureAt: time.Now()}, progress)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("restore: %v, want context.Canceled", err)
		}
		if _, err := e.d.DrillCleanup(ctx, e.target, id); err != nil {
			t.Fatalf("cleanup: %v", err)
		}
		assertNothingLeft(t, filepath.Join(e.target.ScratchDir, "drill-"+id), 0)
	})

	// An archive the server's account cannot read (this process can, as
	// root, so the WAL-chain check passes) is a misconfiguration, not a
	// restore that silently stops at the backup.
	t.Run("archive unreadable by the server", func(t *testing.T) {
		if os.Geteuid() != 0 || e.target.OSUser == "" {
			t.Skip("needs root running the server as another account")
		}
		const id = "unreadable"
		if err := os.Chmod(de.primary.ArchiveDir, 0); err != nil {
			t.Fatal(err)
		}
		_, err := e.d.DrillRestore(ctx, e.target, e.history, driver.DrillRestoreRequest{DrillID: id, FailureAt: time.Now()}, nil)
		if cerr := os.Chmod(de.primary.ArchiveDir, 0o700); cerr != nil {
			t.Fatal(cerr)
		}
		t.Log(err)
		if permanentKind(err) != driver.KindMisconfigured || !strings.Contains(err.Error(), "restored no segment") {
			t.Fatalf("restore from an unreadable archive: %v, want Misconfigured", err)
		}
		assertNothingLeft(t, filepath.Join(e.target.ScratchDir, "drill-"+id), 0)
	})

	// Last: it breaks the archive.
	t.Run("segment lost from the archive", func(t *testing.T) {
		const id = "gap"
		var segs []string
		for i := int64(1); i <= 3; i++ {
			writeCanaries(t, e, id, i, i)
			segs = append(segs, de.switchAndArchive(t))
		}
		lost := segs[1]
		if err := os.Remove(filepath.Join(de.primary.ArchiveDir, lost)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.d.DrillPreflight(ctx, e.target, e.history); permanentKind(err) != driver.KindVerificationFailed || !strings.Contains(err.Error(), "missing "+lost) {
			t.Errorf("preflight with %s lost: %v, want VerificationFailed naming it", lost, err)
		}
		_, err := e.d.DrillRestore(ctx, e.target, e.history, driver.DrillRestoreRequest{DrillID: id, FailureAt: time.Now()}, nil)
		t.Log(err)
		if permanentKind(err) != driver.KindVerificationFailed || !strings.Contains(err.Error(), "WAL chain FAILURE") || !strings.Contains(err.Error(), "missing "+lost) {
			t.Fatalf("restore with %s lost: %v, want a permanent VerificationFailed naming the missing segment", lost, err)
		}
		dir := filepath.Join(e.target.ScratchDir, "drill-"+id)
		assertNothingLeft(t, dir, 0)
		rep, err := e.d.DrillCleanup(ctx, e.target, id)
		if err != nil || len(rep.Removed) != 0 {
			t.Errorf("cleanup after the refused restore: %q %v", rep.Removed, err)
		}
		de.checkSentinel(t)
	})
}
