package impact

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
	"github.com/themis-maintenance/themis/internal/bench/pgbench"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// The databases: the foreground's and the maintained one.
const (
	appDB   = "app"
	benchDB = "bench"
)

// genConns is how many tables are seeded at once.
const genConns = 2

// Dataset describes the generated databases.
type Dataset struct {
	Tables          int     `json:"tables"`
	Indexes         int     `json:"indexes"`
	RowsPerTable    int     `json:"rows_per_table"`
	DeletePct       int     `json:"delete_pct"`
	UpdatePct       int     `json:"update_pct"`
	DeadTuples      int64   `json:"dead_tuples"`
	DatabaseBytes   int64   `json:"database_bytes"`
	HeapBytes       int64   `json:"heap_bytes"`
	IndexBytes      int64   `json:"index_bytes"`
	AppBytes        int64   `json:"foreground_database_bytes"`
	Scale           int     `json:"pgbench_scale"`
	GenSeconds      float64 `json:"generation_seconds"`
	SnapshotSeconds float64 `json:"snapshot_seconds"`
}

// generate creates the foreground database (pgbench -i) and the maintained
// one: seeded tables, genConns at a time, in rounds until cfg.Tables exist
// and the database holds cfg.SizeBytes.
func (b *bench) generate(ctx context.Context) (Dataset, error) {
	cfg := b.cfg
	ds := Dataset{RowsPerTable: cfg.rowsPerTable(), DeletePct: deletePct, UpdatePct: updatePct, Scale: cfg.Scale}
	start := time.Now()
	for _, db := range []string{appDB, benchDB} {
		if err := b.c.ExecContext(ctx, "postgres", "CREATE DATABASE "+db); err != nil {
			return ds, err
		}
	}
	b.logf("pgbench -i -s %d in %s", cfg.Scale, appDB)
	if _, err := b.tools.Run(ctx, "pgbench", "-i", "-s", fmt.Sprint(cfg.Scale), "-I", "dtGvp", "-q", "-d", appDB); err != nil {
		return ds, err
	}
	b.logf("seeding %d tables of %d rows (%d %% deleted, %d %% updated) in %s, at least %s",
		cfg.Tables, ds.RowsPerTable, deletePct, updatePct, benchDB, pgbench.HumanBytes(cfg.SizeBytes))
	next := 1
	for {
		size, err := b.dbSize(ctx, benchDB)
		if err != nil {
			return ds, err
		}
		if next > cfg.Tables && size >= cfg.SizeBytes {
			break
		}
		g, gctx := errgroup.WithContext(ctx)
		for range genConns {
			i := next
			next++
			g.Go(func() error {
				_, err := b.c.SeedContext(gctx, benchDB, pgcluster.SeedOptions{
					Prefix: fmt.Sprintf("bloat_%03d", i), Tables: 1, Rows: ds.RowsPerTable,
					DeletePct: deletePct, UpdatePct: updatePct,
				})
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return ds, fmt.Errorf("seed: %w", err)
		}
		if (next-1)%max(2, cfg.Tables/8) < genConns {
			b.logf("seeded %d tables, %s (%s)", next-1, pgbench.HumanBytes(size), time.Since(start).Round(time.Second))
		}
	}
	ds.Tables = next - 1
	ds.GenSeconds = time.Since(start).Seconds()
	conn, err := b.c.Connect(ctx, benchDB)
	if err != nil {
		return ds, err
	}
	defer conn.Close(context.Background())
	err = conn.QueryRow(ctx, `
		SELECT pg_database_size(current_database()),
		       coalesce(sum(n_dead_tup), 0)::int8, coalesce(sum(pg_table_size(relid)), 0)::int8,
		       (SELECT coalesce(sum(pg_relation_size(indexrelid)), 0)::int8 FROM pg_stat_user_indexes),
		       (SELECT count(*) FROM pg_stat_user_indexes)
		FROM pg_stat_user_tables`).Scan(&ds.DatabaseBytes, &ds.DeadTuples, &ds.HeapBytes, &ds.IndexBytes, &ds.Indexes)
	if err != nil {
		return ds, err
	}
	ds.AppBytes, err = b.dbSize(ctx, appDB)
	return ds, err
}

func (b *bench) dbSize(ctx context.Context, db string) (int64, error) {
	conn, err := b.c.Connect(ctx, db)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int64
	err = conn.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&n)
	return n, err
}

// server stops, snapshots and restores the primary's data directory.
type server struct {
	c    *pgcluster.Cluster
	inst *pgbin.Instance
	snap string
}

func newServer(c *pgcluster.Cluster, u *pgbin.User) *server {
	return &server{
		c: c,
		inst: &pgbin.Instance{
			Runner: pgbin.Runner{BinDir: c.BinDir, User: u}, DataDir: c.DataDir,
			LogFile: filepath.Join(c.Root, "server.log"), Host: c.SocketDir, Port: c.Port,
		},
		snap: filepath.Join(c.Root, "snapshot"),
	}
}

// snapshot shuts the primary down cleanly (a shutdown checkpoint, the
// statistics written out, so n_dead_tup survives) and copies its data
// directory.
func (s *server) snapshot(ctx context.Context) error {
	if err := s.inst.Stop(ctx, "fast"); err != nil {
		return err
	}
	if err := cpA(ctx, s.c.DataDir, s.snap); err != nil {
		return err
	}
	syscall.Sync()
	return nil
}

// restore throws the data directory away, puts the snapshot back, flushes
// it so no write-back of the copy competes with the side, and starts the
// primary with empty shared buffers.
func (s *server) restore(ctx context.Context) error {
	if err := s.inst.Stop(ctx, "immediate"); err != nil {
		return err
	}
	if err := os.RemoveAll(s.c.DataDir); err != nil {
		return err
	}
	if err := cpA(ctx, s.snap, s.c.DataDir); err != nil {
		return err
	}
	syscall.Sync()
	return s.inst.Start(ctx)
}

// cpA copies directory src to dst (which must not exist) with modes and
// ownership, as cp -a does.
func cpA(ctx context.Context, src, dst string) error {
	if out, err := exec.CommandContext(ctx, "cp", "-a", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("cp -a %s %s: %w: %s", src, dst, err, out)
	}
	return nil
}
