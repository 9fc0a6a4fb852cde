package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// TestIntegrityChecksFindACorruptedIndex damages a btree page on disk and
// expects both checks, which pass before, to fail permanently naming it.
func TestIntegrityChecksFindACorruptedIndex(t *testing.T) {
	t.Parallel()
	c := pgcluster.Start(t, pgcluster.Options{})
	c.CreateDatabase(t, "shop")
	c.Seed(t, "shop", pgcluster.SeedOptions{Tables: 2, Rows: 20000})
	e := newEnv(t, c, "shop")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, rec, err := e.run(ctx, domain.TaskConsistencyCheck, nil, nil)
	if err != nil {
		t.Fatalf("consistency_check on a healthy database: %v", err)
	}
	d := detailsJSON(t, res)
	if n := d["relations_checked"].(float64); n < 6 {
		t.Errorf("relations_checked = %v, want the 6 seeded indexes and the catalog's", n)
	}
	if rec.count() < 6 {
		t.Errorf("%d heartbeats, want one per index", rec.count())
	}
	res = e.mustRun(domain.TaskFullCheckDB, nil)
	if d := detailsJSON(t, res); d["heap_check"] != "verify_heapam(check_toast => true)" || d["tables"].(float64) < 2 {
		t.Errorf("full_checkdb details: %v", d)
	}

	block := c.CorruptIndexPage(t, "shop", "public.seed_2_pkey")
	t.Logf("zeroed block %d of public.seed_2_pkey", block)

	for _, task := range []domain.TaskType{domain.TaskConsistencyCheck, domain.TaskFullCheckDB} {
		e.d.Close() // the restart dropped the pool's connections
		_, _, err := e.run(ctx, task, nil, nil)
		if permanentKind(err) != driver.KindIntegrityViolation {
			t.Fatalf("%s after corruption: %v, want a permanent %s", task, err, driver.KindIntegrityViolation)
		}
		if !strings.Contains(err.Error(), "public.seed_2_pkey") {
			t.Errorf("%s error does not name the index: %v", task, err)
		}
		if strings.Contains(err.Error(), "public.seed_1_pkey") {
			t.Errorf("%s blames a healthy index: %v", task, err)
		}
		t.Logf("%s: %v", task, err)
	}
}

// TestConsistencyCheckResumesFromCheckpoint skips indexes a previous
// attempt checked.
func TestConsistencyCheckResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Seed(t, db, pgcluster.SeedOptions{Tables: 1, Rows: 2000})
	e := newEnv(t, shared, db)
	ctx := context.Background()
	_, rec, err := e.run(ctx, domain.TaskConsistencyCheck, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	full := rec.count()
	res, rec2, err := e.run(ctx, domain.TaskConsistencyCheck, nil, rec.lastCheckpoint())
	if err != nil {
		t.Fatal(err)
	}
	if d := detailsJSON(t, res); d["resumed"].(float64) < 3 {
		t.Errorf("resumed = %v", d["resumed"])
	}
	if rec2.count() >= full {
		t.Errorf("resumed run heartbeated %d times, the first %d: nothing was skipped", rec2.count(), full)
	}
}

func TestConsistencyCheckWithoutAmcheckFailsPermanently(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	role := db + "_nocheck" // roles are cluster-wide: one per database, so -count=N works
	shared.Exec(t, db, `CREATE ROLE `+pgx.Identifier{role}.Sanitize()+` LOGIN`)
	e := newEnv(t, shared, db)
	e.target.DSN = strings.Replace(shared.DSN(db), "postgres@", role+"@", 1)
	_, _, err := e.run(context.Background(), domain.TaskConsistencyCheck, nil, nil)
	if permanentKind(err) != driver.KindMisconfigured || !strings.Contains(err.Error(), "amcheck") {
		t.Fatalf("got %v, want a permanent Misconfigured error about amcheck", err)
	}
}
