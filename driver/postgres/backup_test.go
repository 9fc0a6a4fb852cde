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
