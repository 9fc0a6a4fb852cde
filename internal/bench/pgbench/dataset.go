package pgbench

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// DBName is the generated database.
const DBName = "bench"

// minIndexBytes is what every generated index must reach: the rebuild task
// skips indexes under 1 MiB, so a margin above it keeps both sides' index
// sets equal.
const minIndexBytes = 1<<20 + 1<<18

// calibrationRows is the size of the throwaway table that measures bytes
// per row before the real tables are sized.
const calibrationRows = 60_000

// Dataset describes the generated database.
type Dataset struct {
	Tables          int     `json:"tables"`
	Indexes         int     `json:"indexes"`
	Rows            int64   `json:"rows_loaded"`
	MinRowsPerTable int64   `json:"min_rows_per_table"`
	MaxRowsPerTable int64   `json:"max_rows_per_table"`
	DeletePct       int     `json:"delete_pct"`
	UpdatePct       int     `json:"update_pct"`
	DeadTuples      int64   `json:"dead_tuples"`
	DatabaseBytes   int64   `json:"database_bytes"`
	HeapBytes       int64   `json:"heap_bytes"`
	IndexBytes      int64   `json:"index_bytes"`
	SmallestIndex   int64   `json:"smallest_index_bytes"`
	GenConns        int     `json:"generation_connections"`
	GenSeconds      float64 `json:"generation_seconds"`
	SnapshotBytes   int64   `json:"snapshot_bytes"`
	SnapshotSeconds float64 `json:"snapshot_seconds"`
}

// tableStatements create, fill, index and bloat one table.
func tableStatements(name string, rows int64, delPct, updPct int) []stmt {
	t := pgx.Identifier{"public", name}.Sanitize()
	ix := func(s string) string { return pgx.Identifier{name + "_" + s}.Sanitize() }
	return []stmt{
		{`CREATE TABLE ` + t + ` (
			id          bigint NOT NULL,
			customer_id bigint NOT NULL,
			status      text NOT NULL,
			amount      numeric(12,2) NOT NULL,
			created_at  timestamptz NOT NULL,
			note        text
		) WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false)`, nil},
		// customer_id is a near-unique scramble of id, so its index is not
		// shrunk by btree deduplication and its updates land all over it.
		{`INSERT INTO ` + t + `
			SELECT g, (g * 2654435761) % 4294967291,
			       (ARRAY['new','paid','shipped','cancelled'])[1 + (g % 4)::int],
			       (g % 100000) / 100.0,
			       timestamptz '2026-01-01' - make_interval(secs => g),
			       md5(g::text)
			FROM generate_series(1, $1::bigint) AS g`, []any{rows}},
		{`ALTER TABLE ` + t + ` ADD CONSTRAINT ` + ix("pkey") + ` PRIMARY KEY (id)`, nil},
		{`CREATE INDEX ` + ix("customer_idx") + ` ON ` + t + ` (customer_id)`, nil},
		{`CREATE INDEX ` + ix("created_idx") + ` ON ` + t + ` (created_at)`, nil},
		// One transaction: the UPDATE's scan cannot prune the rows the
		// DELETE removed (their deleter is still running), so every deleted
		// and every updated row stays a dead tuple until VACUUM. The
		// updates are not HOT (an indexed column changes) and add entries to
		// every index, splitting the freshly built, packed pages.
		{`BEGIN`, nil},
		{`DELETE FROM ` + t + ` WHERE id % 100 < $1`, []any{delPct}},
		{`UPDATE ` + t + ` SET customer_id = customer_id + 1, amount = amount + 1
			WHERE id % 100 >= $1 AND id % 100 < $2`, []any{delPct, delPct + updPct}},
		{`COMMIT`, nil},
		{`ANALYZE ` + t, nil},
	}
}

type stmt struct {
	sql  string
	args []any
}

func execAll(ctx context.Context, conn *pgx.Conn, stmts []stmt) error {
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s.sql, s.args...); err != nil {
			return fmt.Errorf("%.60s…: %w", s.sql, err)
		}
	}
	return nil
}

// tableName is the name of table i (1-based) of n.
func tableName(i, n int) string {
	w := len(fmt.Sprint(n))
	return fmt.Sprintf("bench_%0*d", w, i)
}

// plan sizes the tables: weights between 0.5 and 1.5 spread over the tables
// (so sizes differ and are not in OID order), scaled to the target size, and
// no table under minRows.
func plan(tables int, totalRows, minRows int64) []int64 {
	w := make([]float64, tables)
	sum := 0.0
	for i := range w {
		w[i] = 0.5 + float64((i*37)%101)/100
		sum += w[i]
	}
	rows := make([]int64, tables)
	for i := range rows {
		r := int64(math.Round(float64(totalRows) * w[i] / sum))
		rows[i] = max(minRows, r)
	}
	return rows
}

// calibrate builds one table the real way and returns its total bytes per
// row and the bytes per row of its smallest index.
func calibrate(ctx context.Context, c *pgcluster.Cluster, cfg Config) (perRow, minIdxPerRow float64, err error) {
	conn, err := c.Connect(ctx, DBName)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(context.Background())
	if err := execAll(ctx, conn, tableStatements("bench_calibration", calibrationRows, cfg.DeletePct, cfg.UpdatePct)); err != nil {
		return 0, 0, fmt.Errorf("calibration table: %w", err)
	}
	var total, minIdx int64
	if err := conn.QueryRow(ctx, `
		SELECT pg_total_relation_size('public.bench_calibration'::regclass),
		       (SELECT min(pg_relation_size(indexrelid)) FROM pg_index WHERE indrelid = 'public.bench_calibration'::regclass)`).
		Scan(&total, &minIdx); err != nil {
		return 0, 0, err
	}
	if _, err := conn.Exec(ctx, `DROP TABLE public.bench_calibration`); err != nil {
		return 0, 0, err
	}
	return float64(total) / calibrationRows, float64(minIdx) / calibrationRows, nil
}

// generate creates DBName with cfg.Tables tables of at least cfg.SizeBytes
// in total, cfg.GenConns tables at a time.
func generate(ctx context.Context, c *pgcluster.Cluster, cfg Config) (Dataset, error) {
	ds := Dataset{Tables: cfg.Tables, DeletePct: cfg.DeletePct, UpdatePct: cfg.UpdatePct, GenConns: cfg.GenConns}
	if err := c.ExecContext(ctx, "postgres", "CREATE DATABASE "+DBName); err != nil {
		return ds, err
	}
	// The extensions both sides need exist up front, so that neither side
	// pays for CREATE EXTENSION inside its timing.
	for _, ext := range []string{"amcheck", "pgstattuple"} {
		if err := c.ExecContext(ctx, DBName, "CREATE EXTENSION IF NOT EXISTS "+ext); err != nil {
			return ds, fmt.Errorf("create extension %s: %w", ext, err)
		}
	}
	start := time.Now()
	perRow, idxPerRow, err := calibrate(ctx, c, cfg)
	if err != nil {
		return ds, err
	}
	minRows := int64(math.Ceil(minIndexBytes/idxPerRow/1000)) * 1000
	totalRows := int64(math.Ceil(float64(cfg.SizeBytes) * 1.05 / perRow))
	rows := plan(cfg.Tables, totalRows, minRows)
	names := make([]string, cfg.Tables)
	for i := range names {
		names[i] = tableName(i+1, cfg.Tables)
		ds.Rows += rows[i]
		ds.MaxRowsPerTable = max(ds.MaxRowsPerTable, rows[i])
	}
	ds.MinRowsPerTable = rows[0]
	for _, r := range rows {
		ds.MinRowsPerTable = min(ds.MinRowsPerTable, r)
	}
	fmt.Fprintf(cfg.Log, "generate: calibration %.0f B/row (smallest index %.1f B/row) → %d tables of %d–%d rows, %d rows, %d connections\n",
		perRow, idxPerRow, cfg.Tables, ds.MinRowsPerTable, ds.MaxRowsPerTable, ds.Rows, cfg.GenConns)

	// Tables are created in name order (so OIDs follow names) and filled in
	// parallel.
	type job struct {
		name string
		rows int64
	}
	jobs := make(chan job)
	g, gctx := errgroup.WithContext(ctx)
	var mu sync.Mutex
	done := 0
	for w := 0; w < cfg.GenConns; w++ {
		g.Go(func() error {
			conn, err := c.Connect(gctx, DBName)
			if err != nil {
				return err
			}
			// Closing the session flushes its statistics (dead tuples).
			defer conn.Close(context.Background())
			for j := range jobs {
				if err := execAll(gctx, conn, tableStatements(j.name, j.rows, cfg.DeletePct, cfg.UpdatePct)); err != nil {
					return fmt.Errorf("%s: %w", j.name, err)
				}
				mu.Lock()
				done++
				if done%max(1, cfg.Tables/10) == 0 || done == cfg.Tables {
					fmt.Fprintf(cfg.Log, "generate: %d/%d tables (%s)\n", done, cfg.Tables, time.Since(start).Round(time.Second))
				}
				mu.Unlock()
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(jobs)
		for i, n := range names {
			select {
			case jobs <- job{n, rows[i]}:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return ds, err
	}
	if err := waitDeadTuples(ctx, c, len(names)); err != nil {
		return ds, err
	}
	ds.GenSeconds = time.Since(start).Seconds()
	return ds, nil
}

// waitDeadTuples waits until the statistics show dead tuples in n user tables.
func waitDeadTuples(ctx context.Context, c *pgcluster.Cluster, n int) error {
	conn, err := c.Connect(ctx, DBName)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_user_tables WHERE n_dead_tup > 0`).Scan(&got); err != nil {
			return err
		}
		if got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("statistics show dead tuples in %d of %d tables after 30s", got, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// server stops, snapshots, restores and starts the cluster's data directory.
type server struct {
	c    *pgcluster.Cluster
	inst *pgbin.Instance
	snap string
}

func newServer(c *pgcluster.Cluster) (*server, error) {
	u, err := pgbin.ResolveUser(c.OSUser)
	if err != nil {
		return nil, err
	}
	return &server{
		c: c,
		inst: &pgbin.Instance{
			Runner: pgbin.Runner{BinDir: c.BinDir, User: u}, DataDir: c.DataDir,
			LogFile: filepath.Join(c.Root, "server.log"), Host: c.SocketDir, Port: c.Port,
		},
		snap: filepath.Join(c.Root, "snapshot"),
	}, nil
}

// snapshot shuts the server down cleanly (a shutdown checkpoint, and the
// statistics written to pg_stat/) and copies the data directory.
func (s *server) snapshot(ctx context.Context) (int64, error) {
	if err := s.inst.Stop(ctx, "fast"); err != nil {
		return 0, err
	}
	n, err := copyTree(s.c.DataDir, s.snap)
	if err != nil {
		return 0, err
	}
	syscall.Sync()
	return n, nil
}

// restore throws the data directory away (immediate stop: nothing in it is
// worth a checkpoint), puts the snapshot back, flushes it to disk so no
// write-back of the copy competes with the measured run, and starts the
// server with empty shared buffers.
func (s *server) restore(ctx context.Context) error {
	if err := s.inst.Stop(ctx, "immediate"); err != nil {
		return err
	}
	if err := os.RemoveAll(s.c.DataDir); err != nil {
		return err
	}
	if _, err := copyTree(s.snap, s.c.DataDir); err != nil {
		return err
	}
	syscall.Sync()
	return s.inst.Start(ctx)
}

// copyTree copies directory src to dst (which must not exist) with modes and
// ownership; it returns the bytes copied. Regular files go through
// copy_file_range (a reflink where the file system can).
func copyTree(src, dst string) (int64, error) {
	var total int64
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st, _ := info.Sys().(*syscall.Stat_t)
		switch {
		case d.IsDir():
			if err := os.Mkdir(to, info.Mode().Perm()); err != nil {
				return err
			}
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, to); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			n, err := copyFile(p, to, info.Mode().Perm())
			if err != nil {
				return err
			}
			total += n
		default:
			return nil // sockets and the like: not part of a data directory
		}
		if st != nil && os.Geteuid() == 0 {
			if err := os.Lchown(to, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
		}
		if d.IsDir() {
			return os.Chmod(to, info.Mode().Perm())
		}
		return nil
	})
	return total, err
}

func copyFile(src, dst string, perm fs.FileMode) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}
