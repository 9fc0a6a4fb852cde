package pgcluster_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

func TestClusterLifecycle(t *testing.T) {
	var root string
	t.Run("cluster", func(t *testing.T) {
		c := pgcluster.Start(t, pgcluster.Options{})
		root = c.Root
		if got := pgcluster.Scalar[string](t, c, "postgres", "SHOW shared_preload_libraries"); got != "pg_stat_statements" {
			t.Errorf("shared_preload_libraries = %q", got)
		}
		if got := pgcluster.Scalar[string](t, c, "postgres", "SHOW archive_mode"); got != "on" {
			t.Errorf("archive_mode = %q", got)
		}
		c.CreateDatabase(t, "shop")
		res := c.Seed(t, "shop", pgcluster.SeedOptions{Tables: 1, Rows: 5000})
		if len(res.Tables) != 1 || res.LiveRows != 2000 {
			t.Fatalf("seed result %+v", res)
		}
		if n := pgcluster.Scalar[int64](t, c, "shop", "SELECT count(*) FROM public.seed_1"); n != 2000 {
			t.Errorf("live rows = %d, want 2000", n)
		}
		if dead := c.DeadTuples(t, "shop", "public.seed_1"); dead < 3000 {
			t.Errorf("dead tuples = %d, want >= 3000", dead)
		}
		if v := pgcluster.Scalar[string](t, c, "shop", "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = 'public.seed_1'::regclass"); v != "autovacuum_enabled=false" {
			t.Errorf("reloptions = %q", v)
		}

		// A WAL switch is archived into the cluster's archive directory.
		c.Exec(t, "postgres", "SELECT pg_switch_wal()")
		c.Exec(t, "postgres", "CHECKPOINT")

		r := c.StartReplica(t)
		c.Exec(t, "shop", "INSERT INTO public.seed_1 VALUES (1000000, 1, 'new', 1, now(), 'x')")
		c.WaitCaughtUp(t, r)
		if !pgcluster.Scalar[bool](t, r, "postgres", "SELECT pg_is_in_recovery()") {
			t.Fatal("replica is not in recovery")
		}
		if n := pgcluster.Scalar[int64](t, r, "shop", "SELECT count(*) FROM public.seed_1"); n != 2001 {
			t.Errorf("replica rows = %d, want 2001", n)
		}

		c.CorruptIndexPage(t, "shop", "public.seed_1_pkey")
		c.Exec(t, "shop", "CREATE EXTENSION IF NOT EXISTS amcheck")
		err := c.ExecContext(context.Background(), "shop", "SELECT bt_index_check('public.seed_1_pkey'::regclass)")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "XX002" {
			t.Fatalf("bt_index_check after corruption: %v, want SQLSTATE XX002", err)
		}
	})
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("cluster directory %s still exists after the test (err=%v)", root, err)
	}
}
