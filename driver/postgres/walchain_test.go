package postgres_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// TestWALChainCheck: on a primary archiving into its archive directory,
// backup_verification with wal_archive_dir reports the chain from its base
// backup OK (and pg_verifybackup run); after a segment written since is
// deleted from the archive, the next run (a pg_dump, so the chain still
// starts at the verified base backup) fails for good with FAILURE naming
// the missing segment.
func TestWALChainCheck(t *testing.T) {
	t.Parallel()
	c := pgcluster.Start(t, pgcluster.Options{})
	c.CreateDatabase(t, "shop")
	c.Seed(t, "shop", pgcluster.SeedOptions{Tables: 1, Rows: 2000})
	e := newEnv(t, c, "shop")
	e.target.OSUser = c.OSUser
	e.target.WALArchiveDir = c.ArchiveDir
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	res, _, err := e.run(ctx, domain.TaskBackupVerification, domain.TaskOptions{"method": "pg_basebackup"}, nil)
	if err != nil {
		t.Fatalf("backup_verification: %v", err)
	}
	t.Log(res.Summary)
	d := detailsJSON(t, res)
	wc, _ := d["wal_chain"].(map[string]any)
	if wc["status"] != "OK" || wc["segments_needed"].(float64) < 1 || wc["segments_present"] != wc["segments_needed"] {
		t.Fatalf("wal_chain %v", wc)
	}
	if !strings.Contains(res.Summary, "WAL chain OK") {
		t.Errorf("summary %q does not report the WAL chain", res.Summary)
	}
	if v, _ := d["pg_verifybackup"].(string); !strings.HasPrefix(v, "passed") {
		t.Errorf("pg_verifybackup %q", d["pg_verifybackup"])
	}

	// Three more segments, all archived; then the middle one is lost.
	var segs []string
	for i := 0; i < 3; i++ {
		c.Exec(t, "shop", `CREATE TABLE IF NOT EXISTS public.walgen AS SELECT 1 AS x; INSERT INTO public.walgen SELECT generate_series(1, 100)`)
		segs = append(segs, pgcluster.Scalar[string](t, c, "shop", `SELECT pg_walfile_name(pg_current_wal_lsn())`))
		c.Exec(t, "shop", `SELECT pg_switch_wal()`)
	}
	last := segs[len(segs)-1]
	waitFor(t, 30*time.Second, "the archiver to archive "+last, func() bool {
		return pgcluster.Scalar[string](t, c, "postgres", `SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver`) >= last
	})
	lost := segs[1]
	if err := os.Remove(filepath.Join(c.ArchiveDir, lost)); err != nil {
		t.Fatal(err)
	}

	_, _, err = e.run(ctx, domain.TaskBackupVerification, domain.TaskOptions{"method": "pg_dump"}, nil)
	if permanentKind(err) != driver.KindVerificationFailed {
		t.Fatalf("after losing %s: %v, want a permanent VerificationFailed", lost, err)
	}
	if !strings.Contains(err.Error(), "WAL chain FAILURE") || !strings.Contains(err.Error(), "missing "+lost) {
		t.Fatalf("error %q should report FAILURE with the missing segment %s", err, lost)
	}
	t.Log(err)
	// The backup is recorded with its chain's verdict: the target's health
	// probe reports it (and the health runner turns it critical).
	th, err2 := e.d.Probe(ctx, e.target, e.history)
	if err2 != nil || th.WALChain != "FAILURE" || !strings.Contains(th.WALChainDetail, lost) {
		t.Fatalf("probe after the gap: %+v %v", th, err2)
	}

	// A fresh base backup starts after the gap: OK again. Then the archiver
	// fails: the segments completed since are missing at the end of the
	// chain and the archiver is not working, which is a FAILURE too.
	if _, _, err := e.run(ctx, domain.TaskBackupVerification, domain.TaskOptions{"method": "pg_basebackup"}, nil); err != nil {
		t.Fatalf("backup_verification after a new base backup: %v", err)
	}
	c.Exec(t, "postgres", `ALTER SYSTEM SET archive_command = 'false'`)
	c.Exec(t, "postgres", `SELECT pg_reload_conf()`)
	t.Cleanup(func() {
		_ = c.ExecContext(context.Background(), "postgres", `ALTER SYSTEM RESET archive_command`)
		_ = c.ExecContext(context.Background(), "postgres", `SELECT pg_reload_conf()`)
	})
	var unarchived []string
	for i := 0; i < 2; i++ {
		c.Exec(t, "shop", `INSERT INTO public.walgen SELECT generate_series(1, 100)`)
		unarchived = append(unarchived, pgcluster.Scalar[string](t, c, "shop", `SELECT pg_walfile_name(pg_current_wal_lsn())`))
		c.Exec(t, "shop", `SELECT pg_switch_wal()`)
	}
	waitFor(t, 30*time.Second, "archiving to fail", func() bool {
		return pgcluster.Scalar[int64](t, c, "postgres", `SELECT failed_count FROM pg_stat_archiver`) > 0
	})
	_, _, err = e.run(ctx, domain.TaskBackupVerification, domain.TaskOptions{"method": "pg_dump"}, nil)
	if permanentKind(err) != driver.KindVerificationFailed || !strings.Contains(err.Error(), "WAL chain FAILURE") ||
		!strings.Contains(err.Error(), "not being archived") || !strings.Contains(err.Error(), unarchived[0]) {
		t.Fatalf("with archiving failing: %v, want FAILURE naming %s and the failing archiver", err, unarchived[0])
	}
	t.Log(err)
}
