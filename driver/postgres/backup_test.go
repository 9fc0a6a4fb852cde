package postgres_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// scratchEmpty reports whether no restore directory is left behind.
func scratchEmpty(t *testing.T, dir string) bool {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "themis-restore-") {
			return false
		}
	}
	return true
}

func TestBackupVerification(t *testing.T) {
	t.Parallel()
	c := pgcluster.Start(t, pgcluster.Options{})
	c.CreateDatabase(t, "shop")
	seed := c.Seed(t, "shop", pgcluster.SeedOptions{Tables: 2, Rows: 20000})
	c.Exec(t, "shop", `CREATE MATERIALIZED VIEW public.order_totals AS SELECT status, count(*) AS n FROM public.seed_1 GROUP BY status`)
	c.Exec(t, "shop", `CREATE UNLOGGED TABLE public.cache (k int PRIMARY KEY)`)
	c.Exec(t, "shop", `INSERT INTO public.cache SELECT generate_series(1, 100)`)
	e := newEnv(t, c, "shop")
	e.target.OSUser = c.OSUser
	// Relative directories (the default data_dir was relative before the
	// config made paths absolute): pg_ctl and pg_basebackup, which run
	// elsewhere, must still find them.
	e.target.BackupDir, e.target.ScratchDir = relPath(t, e.target.BackupDir), relPath(t, e.target.ScratchDir)

	for _, method := range []string{"pg_basebackup", "pg_dump"} {
		t.Run(method, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			start := time.Now()
			res, rec, err := e.run(ctx, domain.TaskBackupVerification, domain.TaskOptions{"method": method}, nil)
			if err != nil {
				t.Fatalf("backup_verification: %v", err)
			}
			t.Logf("%s in %s (%d heartbeats)", res.Summary, time.Since(start).Round(time.Millisecond), rec.count())
			d := detailsJSON(t, res)
			if d["method"] != method {
				t.Errorf("method %v", d["method"])
			}
			// Two seeded tables, plus the materialised view (physical only)
			// and the unlogged table (logical only).
			if n := d["tables_compared"].(float64); n != 3 {
				t.Errorf("tables_compared = %v, want 3", n)
			}
			if d["indexes_checked"].(float64) < float64(3*len(seed.Tables)) {
				t.Errorf("indexes_checked = %v", d["indexes_checked"])
			}
			if d["exact_counts"] != true {
				t.Errorf("exact_counts = %v", d["exact_counts"])
			}
			latest, ok, _ := e.history.LatestBackup(ctx, e.target.Name)
			if !ok || !latest.Verified || latest.Method != method || latest.Path != d["path"] {
				t.Errorf("history latest backup %+v", latest)
			}
			if _, err := os.Stat(latest.Path); err != nil {
				t.Errorf("backup directory: %v", err)
			}
			if !scratchEmpty(t, e.target.ScratchDir) {
				t.Error("scratch restore directory left behind")
			}
		})
	}

	// A retried attempt whose previous attempt heartbeated "taken" verifies
	// that backup instead of taking another.
	t.Run("resume", func(t *testing.T) {
		latest, _, _ := e.history.LatestBackup(context.Background(), e.target.Name)
		marker := filepath.Join(latest.Path, "themis-backup.json")
		b, err := os.ReadFile(marker)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(marker, []byte(strings.Replace(string(b), `"state": "verified"`, `"state": "taken"`, 1)), 0o640); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadDir(filepath.Dir(latest.Path))
		cp := []byte(`{"path":` + strconv.Quote(latest.Path) + `,"stage":"taken"}`)
		res, _, err := e.run(context.Background(), domain.TaskBackupVerification, domain.TaskOptions{"method": "pg_dump"}, cp)
		if err != nil {
			t.Fatal(err)
		}
		after, _ := os.ReadDir(filepath.Dir(latest.Path))
		if d := detailsJSON(t, res); d["path"] != latest.Path || len(after) != len(before) {
			t.Errorf("resumed run verified %v (want %s); %d backups before, %d after", d["path"], latest.Path, len(before), len(after))
		}
	})

	t.Run("prune", func(t *testing.T) {
		res := e.mustRun(domain.TaskBackupVerification, domain.TaskOptions{"method": "pg_dump", "keep_backups": int64(1)})
		d := detailsJSON(t, res)
		if len(d["pruned"].([]any)) != 2 {
			t.Errorf("pruned %v, want the two older backups", d["pruned"])
		}
		entries, _ := os.ReadDir(filepath.Dir(d["path"].(string)))
		if len(entries) != 1 {
			t.Errorf("%d backups kept, want 1", len(entries))
		}
	})

	// A corrupted index travels into a physical backup; the restored copy
	// does not verify.
	t.Run("corrupt source", func(t *testing.T) {
		c.CorruptIndexPage(t, "shop", "public.seed_1_customer_idx")
		e.d.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		_, _, err := e.run(ctx, domain.TaskBackupVerification, domain.TaskOptions{"method": "pg_basebackup"}, nil)
		if permanentKind(err) != driver.KindVerificationFailed || !strings.Contains(err.Error(), "seed_1_customer_idx") {
			t.Fatalf("got %v, want a permanent %s naming the index", err, driver.KindVerificationFailed)
		}
		t.Log(err)
		latest, _, _ := e.history.LatestBackup(ctx, e.target.Name)
		all := e.history.Backups()
		last := all[len(all)-1]
		if last.Verified || last.Path == latest.Path {
			t.Errorf("failed backup recorded as verified: %+v", last)
		}
		if !scratchEmpty(t, e.target.ScratchDir) {
			t.Error("scratch restore directory left behind after a failed verification")
		}
	})
}

// relPath is path relative to the working directory.
func relPath(t *testing.T, path string) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, path)
	if err != nil || filepath.IsAbs(rel) {
		t.Fatalf("no relative form of %s: %v", path, err)
	}
	return rel
}

// TestBackupVerificationPreflightUnreachableScratch: a scratch directory
// the server's OS user cannot reach fails backup_verification before any
// backup is taken, with the drill's reason: the directory and the user.
func TestBackupVerificationPreflightUnreachableScratch(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	e := newEnv(t, shared, db)
	e.target.OSUser = shared.OSUser
	private := filepath.Join(filepath.Dir(e.target.BackupDir), "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	e.target.ScratchDir = filepath.Join(private, "scratch")
	ctx := context.Background()
	_, _, err := e.run(ctx, domain.TaskBackupVerification, nil, nil)
	if permanentKind(err) != driver.KindMisconfigured || !strings.Contains(err.Error(), e.target.ScratchDir) ||
		!strings.Contains(err.Error(), "OS user "+shared.OSUser) || !strings.Contains(err.Error(), private+" is not searchable") {
		t.Fatalf("backup_verification with an unreachable scratch dir: %v (kind %q)", err, permanentKind(err))
	}
	if entries, _ := os.ReadDir(e.target.BackupDir); len(entries) != 0 {
		t.Errorf("a backup was started before the preflight failed: %v", entries)
	}
	// The drill's preflight says the same (one check for both).
	_, derr := e.d.DrillPreflight(ctx, e.target, e.history)
	if permanentKind(derr) != driver.KindMisconfigured || !strings.Contains(derr.Error(), "OS user "+shared.OSUser) {
		t.Errorf("drill preflight: %v", derr)
	}
}

// TestBackupVerificationPreflightSpace: with the real free-space reading
// the preflight passes (see TestBackupVerification for a whole run); with
// a tiny one injected, backup_verification fails before taking the backup,
// naming the directory and the sizes.
func TestBackupVerificationPreflightSpace(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	e := newEnv(t, shared, db)
	e.target.OSUser = shared.OSUser
	ctx := context.Background()
	pf, err := e.d.DrillPreflight(ctx, e.target, nil)
	if err != nil || pf.ScratchFreeBytes <= pf.NeededBytes || pf.NeededBytes <= 0 {
		t.Fatalf("real free space: %+v, %v", pf, err)
	}
	postgres.SetFreeSpace(e.d, func(string) (int64, error) { return 1 << 10, nil })
	_, _, err = e.run(ctx, domain.TaskBackupVerification, nil, nil)
	if permanentKind(err) != driver.KindMisconfigured || !strings.Contains(err.Error(), "not enough space for backup_verification's restore in "+e.target.ScratchDir) ||
		!strings.Contains(err.Error(), "1.0 KiB free") {
		t.Fatalf("backup_verification without space: %v (kind %q)", err, permanentKind(err))
	}
	if entries, _ := os.ReadDir(e.target.BackupDir); len(entries) != 0 {
		t.Errorf("a backup was started before the preflight failed: %v", entries)
	}
	if _, err := e.d.DrillPreflight(ctx, e.target, nil); permanentKind(err) != driver.KindMisconfigured || !strings.Contains(err.Error(), "not enough space for the drill") {
		t.Errorf("drill preflight without space: %v", err)
	}
}

func TestBackupVerificationNeedsBackupDir(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	e := newEnv(t, shared, db)
	e.target.BackupDir = ""
	_, _, err := e.run(context.Background(), domain.TaskBackupVerification, nil, nil)
	if permanentKind(err) != driver.KindMisconfigured {
		t.Errorf("no backup_dir: %v", err)
	}
}
