package pgcluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// SeedOptions shape the data Seed creates.
type SeedOptions struct {
	// Prefix names the tables (<prefix>_1, <prefix>_2, ...). Optional:
	// defaulted to "seed".
	Prefix string
	// Tables is the number of tables. Optional: defaulted to 2.
	Tables int
	// Rows inserted per table. Optional: defaulted to 60000 (the primary-key
	// index is then about 1.3 MiB).
	Rows int
	// DeletePct is the percentage of rows deleted, spread evenly over the key
	// range so index pages are left sparse rather than emptied. Optional:
	// defaulted to 60; a negative value deletes nothing.
	DeletePct int
	// UpdatePct is the percentage of rows updated on an indexed column (so
	// the updates are not HOT and add index entries). Optional: defaulted to
	// 20; a negative value updates nothing. DeletePct+UpdatePct must not
	// exceed 100.
	UpdatePct int
}

// SeedResult names what Seed created.
type SeedResult struct {
	// Tables are schema-qualified table names ("public.seed_1").
	Tables []string
	// Indexes maps each table to its schema-qualified index names.
	Indexes map[string][]string
	// LiveRows is the number of rows left in each table.
	LiveRows int
}

// Seed creates tables with indexes and realistic bloat in db: rows are
// inserted, a spread-out share deleted and another updated on indexed
// columns, leaving dead tuples in the heap and dead entries in the indexes.
// Autovacuum is disabled on these tables so the dead tuples stay until a test
// removes them. Seed analyses the tables and waits until the statistics
// collector shows their dead tuples.
func (c *Cluster) Seed(t testing.TB, db string, o SeedOptions) SeedResult {
	t.Helper()
	res, err := c.SeedContext(context.Background(), db, o)
	if err != nil {
		t.Fatalf("pgcluster: seed: %v", err)
	}
	return res
}

// SeedContext is Seed without a testing.TB.
func (c *Cluster) SeedContext(ctx context.Context, db string, o SeedOptions) (SeedResult, error) {
	if o.Prefix == "" {
		o.Prefix = "seed"
	}
	if o.Tables <= 0 {
		o.Tables = 2
	}
	if o.Rows <= 0 {
		o.Rows = 60000
	}
	switch {
	case o.DeletePct == 0:
		o.DeletePct = 60
	case o.DeletePct < 0:
		o.DeletePct = 0
	}
	switch {
	case o.UpdatePct == 0:
		o.UpdatePct = 20
	case o.UpdatePct < 0:
		o.UpdatePct = 0
	}
	if o.DeletePct+o.UpdatePct > 100 {
		return SeedResult{}, fmt.Errorf("DeletePct+UpdatePct = %d > 100", o.DeletePct+o.UpdatePct)
	}
	conn, err := c.Connect(ctx, db)
	if err != nil {
		return SeedResult{}, err
	}
	res := SeedResult{Indexes: map[string][]string{}}
	for i := 1; i <= o.Tables; i++ {
		name := fmt.Sprintf("%s_%d", o.Prefix, i)
		tbl := pgx.Identifier{"public", name}.Sanitize()
		idx := func(suffix string) string { return pgx.Identifier{name + "_" + suffix}.Sanitize() }
		stmts := []struct {
			sql  string
			args []any
		}{
			{`CREATE TABLE ` + tbl + ` (
				id          bigint PRIMARY KEY,
				customer_id integer NOT NULL,
				status      text NOT NULL,
				amount      numeric(12,2) NOT NULL,
				created_at  timestamptz NOT NULL,
				note        text
			) WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false)`, nil},
			{`CREATE INDEX ` + idx("customer_idx") + ` ON ` + tbl + ` (customer_id)`, nil},
			{`CREATE INDEX ` + idx("created_idx") + ` ON ` + tbl + ` (created_at)`, nil},
			{`INSERT INTO ` + tbl + `
				SELECT g, ((g::bigint * 7919) % 5000)::int,
				       (ARRAY['new','paid','shipped','cancelled'])[1 + g % 4],
				       (g % 1000) + 0.99,
				       timestamptz '2026-01-01' - make_interval(secs => g),
				       md5(g::text)
				FROM generate_series(1, $1::int) AS g`, []any{o.Rows}},
			{`DELETE FROM ` + tbl + ` WHERE id % 100 < $1`, []any{o.DeletePct}},
			{`UPDATE ` + tbl + ` SET customer_id = customer_id + 1, amount = amount + 1
				WHERE id % 100 >= $1 AND id % 100 < $2`, []any{o.DeletePct, o.DeletePct + o.UpdatePct}},
			{`ANALYZE ` + tbl, nil},
		}
		for _, s := range stmts {
			if _, err := conn.Exec(ctx, s.sql, s.args...); err != nil {
				conn.Close(ctx)
				return SeedResult{}, fmt.Errorf("%s: %w", name, err)
			}
		}
		q := "public." + name
		res.Tables = append(res.Tables, q)
		res.Indexes[q] = []string{"public." + name + "_pkey", "public." + name + "_customer_idx", "public." + name + "_created_idx"}
	}
	res.LiveRows = o.Rows - o.Rows*o.DeletePct/100
	// Closing the session flushes its pending statistics.
	if err := conn.Close(ctx); err != nil {
		return SeedResult{}, err
	}
	if o.DeletePct+o.UpdatePct > 0 {
		if err := c.waitDeadTuples(ctx, db, res.Tables); err != nil {
			return SeedResult{}, err
		}
	}
	return res, nil
}

func (c *Cluster) waitDeadTuples(ctx context.Context, db string, tables []string) error {
	conn, err := c.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	deadline := time.Now().Add(15 * time.Second)
	for _, tbl := range tables {
		for {
			var dead int64
			if err := conn.QueryRow(ctx, `SELECT coalesce(n_dead_tup, 0) FROM pg_stat_all_tables WHERE relid = $1::regclass`, tbl).Scan(&dead); err != nil {
				return err
			}
			if dead > 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("statistics show no dead tuples in %s after 15s", tbl)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// DeadTuples returns n_dead_tup of table (schema-qualified) in db.
func (c *Cluster) DeadTuples(t testing.TB, db, table string) int64 {
	t.Helper()
	return Scalar[int64](t, c, db, `SELECT coalesce(n_dead_tup, 0) FROM pg_stat_all_tables WHERE relid = $1::regclass`, table)
}

// RelationSize returns pg_relation_size of a table or index in db.
func (c *Cluster) RelationSize(t testing.TB, db, rel string) int64 {
	t.Helper()
	return Scalar[int64](t, c, db, `SELECT pg_relation_size($1::regclass)`, rel)
}
