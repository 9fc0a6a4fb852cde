package restore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/historytest"
	"github.com/themis-maintenance/themis/driver/postgres"
	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
	"github.com/themis-maintenance/themis/internal/bench/pgbench"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// dbName is the generated database.
const dbName = "bench"

// bench is one run's state.
type bench struct {
	cfg     Config
	c       *pgcluster.Cluster
	pgbench pgbin.Runner
	d       *postgres.Driver
	h       *historytest.Memory
	t       driver.Target
}

func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(b.cfg.Log, "%s bench-restore: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

// Run generates the database, takes the verified base backup, measures the
// floor and restores by each strategy (see the package comment).
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	cfg = cfg.withDefaults()
	started := time.Now()
	rep = &Report{StartedAt: started.UTC(), CPUs: runtime.NumCPU(), Scale: cfg.scale(), WriteSeconds: cfg.WriteSeconds}
	b := &bench{cfg: cfg, h: historytest.New()}

	b.logf("starting a primary (WAL archiving on)")
	c, err := pgcluster.StartCluster(ctx, pgcluster.Options{BinDir: cfg.BinDir, Settings: map[string]string{
		"shared_buffers": "256MB", "max_wal_size": "4GB", "checkpoint_timeout": "30min", "max_connections": "50",
	}})
	if err != nil {
		return nil, err
	}
	b.c = c
	defer func() {
		if cfg.Keep {
			b.logf("kept: primary %s (data %s)", c.DSN(dbName), c.DataDir)
			return
		}
		if serr := c.Stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	u, err := pgbin.ResolveUser(c.OSUser)
	if err != nil {
		return nil, err
	}
	b.pgbench = pgbin.Runner{BinDir: c.BinDir, User: u, Env: []string{
		"PGHOST=" + c.SocketDir, "PGPORT=" + strconv.Itoa(c.Port), "PGUSER=" + pgcluster.Superuser, "PGDATABASE=" + dbName,
	}}
	if err := c.ExecContext(ctx, "postgres", "CREATE DATABASE "+dbName); err != nil {
		return nil, err
	}
	b.logf("pgbench -i -s %d (about %s)", rep.Scale, pgbench.HumanBytes(rep.Scale*scaleBytes))
	t0 := time.Now()
	if _, err := b.pgbench.Run(ctx, "pgbench", "-i", "-s", strconv.FormatInt(rep.Scale, 10), "-I", "dtGvp", "-q"); err != nil {
		return nil, err
	}
	rep.GenerateSeconds = time.Since(t0).Seconds()
	conn, err := c.Connect(ctx, dbName)
	if err != nil {
		return nil, err
	}
	err = conn.QueryRow(ctx, `SELECT pg_database_size(current_database()), current_setting('server_version')`).Scan(&rep.DatabaseBytes, &rep.Server)
	conn.Close(context.Background())
	if err != nil {
		return nil, err
	}
	b.logf("database: %s in %.1f s", pgbench.HumanBytes(rep.DatabaseBytes), rep.GenerateSeconds)

	work, err := os.MkdirTemp("", "themis-bench-restore-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(work, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if !cfg.Keep {
			_ = os.RemoveAll(work)
		}
	}()
	b.t = driver.Target{
		Name: "bench", Driver: postgres.Name, DSN: c.DSN(dbName), BinDir: c.BinDir, OSUser: c.OSUser,
		BackupDir: filepath.Join(work, "backups"), ScratchDir: filepath.Join(work, "scratch"), WALArchiveDir: c.ArchiveDir,
	}
	if cfg.Standby {
		b.logf("starting a streaming standby")
		r, err := c.StartReplicaContext(ctx)
		if err != nil {
			return nil, err
		}
		b.t.ReplicaDSNs = []string{r.DSN(dbName)}
	}
	b.d = postgres.NewWithOptions(postgres.Options{})
	defer b.d.Close()

	b.logf("backup_verification (pg_basebackup, verified by a restore with amcheck and row counts)")
	t0 = time.Now()
	res, err := b.d.Run(ctx, driver.Request{Target: b.t, Task: domain.TaskBackupVerification, JobID: "bench-restore",
		Options: domain.TaskOptions{"method": "pg_basebackup"}, History: b.h})
	if err != nil {
		return nil, fmt.Errorf("backup_verification: %w", err)
	}
	rep.BackupSeconds = time.Since(t0).Seconds()
	rec, ok, _ := b.h.LatestBackup(ctx, b.t.Name)
	if !ok {
		return nil, errors.New("backup_verification recorded no verified backup")
	}
	rep.BackupBytes = rec.Bytes
	b.logf("%s (%.1f s)", res.Summary, rep.BackupSeconds)

	b.logf("pgbench -T %d: writes after the backup, into the WAL archive", cfg.WriteSeconds)
	archivedBefore := postgres.DirSize(c.ArchiveDir)
	if _, err := b.pgbench.Run(ctx, "pgbench", "-n", "-c", "2", "-j", "2", "-T", strconv.Itoa(cfg.WriteSeconds)); err != nil {
		return nil, err
	}
	if _, err := b.switchAndArchive(ctx); err != nil {
		return nil, err
	}
	rep.ArchivedAfterBackup = postgres.DirSize(c.ArchiveDir) - archivedBefore

	// Config.Runs rounds of the floor and both strategies, the order
	// rotating each round; each side's median counts (a shared machine's
	// disk and CPUs vary from minute to minute).
	data := filepath.Join(rec.Path, "data")
	sides := []string{floorSide, driver.StrategyBackupRestore, driver.StrategyReplicaClone}
	per := map[string][]Row{}
	for run := 0; run < cfg.Runs; run++ {
		for i := range sides {
			side := sides[(i+run)%len(sides)]
			var row Row
			if side == floorSide {
				row, err = b.floor(ctx, data)
			} else {
				row, err = b.restore(ctx, side, run)
			}
			if err != nil {
				return nil, fmt.Errorf("%s (run %d): %w", side, run+1, err)
			}
			per[side] = append(per[side], row)
		}
	}
	for _, side := range sides {
		row := median(per[side])
		if side == floorSide {
			row.Source = "cp -a of the base backup's data directory into the scratch directory"
			rep.Floor = row
		} else {
			rep.Rows = append(rep.Rows, row)
		}
	}
	for i := range rep.Rows {
		rep.Rows[i].FloorRatio = rep.Rows[i].RestoreSec / rep.Floor.RestoreSec
		rep.Rows[i].CopyFloorRatio = rep.Rows[i].CopySec / rep.Floor.RestoreSec
	}
	rep.Floor.FloorRatio, rep.Floor.CopyFloorRatio = 1, 1
	rep.TotalSeconds = time.Since(started).Seconds()
	return rep, nil
}

// switchAndArchive ends the primary's WAL segment and waits until it is
// archived, as archive_timeout would.
func (b *bench) switchAndArchive(ctx context.Context) (string, error) {
	conn, err := b.c.Connect(ctx, dbName)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var seg string
	if err := conn.QueryRow(ctx, `SELECT pg_walfile_name(pg_current_wal_lsn())`).Scan(&seg); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, `SELECT pg_switch_wal()`); err != nil {
		return "", err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(b.c.ArchiveDir, seg)); err == nil {
			return seg, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("segment %s not archived after 2 minutes", seg)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// floor times cp -a of data into the scratch directory (same disk).
func (b *bench) floor(ctx context.Context, data string) (Row, error) {
	dst := filepath.Join(b.t.ScratchDir, "floor-cp")
	if err := os.MkdirAll(b.t.ScratchDir, 0o755); err != nil {
		return Row{}, err
	}
	_ = os.RemoveAll(dst)
	defer os.RemoveAll(dst)
	syscall.Sync() // no earlier side's dirty pages are written back during this one
	start := time.Now()
	if out, err := exec.CommandContext(ctx, "cp", "-a", data, dst).CombinedOutput(); err != nil {
		return Row{}, fmt.Errorf("cp -a: %w: %s", err, out)
	}
	sec := time.Since(start).Seconds()
	n := postgres.DirSize(dst)
	b.logf("floor: cp -a of %s in %.2f s", pgbench.HumanBytes(n), sec)
	return Row{Name: floorSide, RestoreSec: sec, CopySec: sec, RestoredBytes: n, RateMiBs: mibs(n, sec)}, nil
}

// floorSide names the floor among the sides.
const floorSide = "floor: cp -a"

// median is the row with the median restore time, with every run's time.
func median(rows []Row) Row {
	sorted := slices.Clone(rows)
	slices.SortFunc(sorted, func(a, b Row) int { return cmp.Compare(a.RestoreSec, b.RestoreSec) })
	m := sorted[(len(sorted)-1)/2]
	m.Runs = nil
	for _, r := range rows {
		m.Runs = append(m.Runs, r.RestoreSec)
	}
	return m
}

// restore runs one drill's restore by strategy: canary rows, the failure
// instant, DrillRestore, DrillVerify, clean-up.
func (b *bench) restore(ctx context.Context, strategy string, run int) (Row, error) {
	id := fmt.Sprintf("bench-%s-%d", strategy, run+1)
	row := Row{Name: strategy}
	const rows = 5
	for seq := int64(1); seq <= rows; seq++ {
		if seq > 1 {
			time.Sleep(canaryInterval)
		}
		if err := b.d.CanaryWrite(ctx, b.t, id, seq, time.Now()); err != nil {
			return row, err
		}
	}
	failureAt := time.Now()
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		if _, err := b.d.DrillCleanup(cctx, b.t, id); err != nil {
			b.logf("%s: cleanup: %v", strategy, err)
		}
		if err := b.d.CanaryCleanup(cctx, b.t, id); err != nil {
			b.logf("%s: canary cleanup: %v", strategy, err)
		}
	}()
	if strategy == driver.StrategyBackupRestore {
		// Production goes on: a commit after the failure instant reaches
		// the archive, and the replay stops before it.
		if err := b.d.CanaryWrite(ctx, b.t, id, rows+1, time.Now()); err != nil {
			return row, err
		}
		if _, err := b.switchAndArchive(ctx); err != nil {
			return row, err
		}
	}
	b.logf("%s: DrillRestore", strategy)
	syscall.Sync()
	start := time.Now()
	s, err := b.d.DrillRestore(ctx, b.t, b.h, driver.DrillRestoreRequest{DrillID: id, Strategy: strategy, FailureAt: failureAt}, nil)
	if err != nil {
		return row, err
	}
	row.RestoreSec = time.Since(start).Seconds()
	row.Source = s.RestoredFrom
	row.CopySec, row.ReplaySec = float64(s.CopyMs)/1000, float64(s.ReplayMs)/1000
	row.RestoredBytes, row.WALBytes, row.WALRange = s.RestoredBytes, s.WALBytes, s.WALRange
	row.RateMiBs = mibs(s.RestoredBytes, row.RestoreSec)
	b.logf("%s: restored in %.2f s (copy %.2f s, replay %.2f s): %s, WAL %s %s", strategy, row.RestoreSec, row.CopySec, row.ReplaySec,
		pgbench.HumanBytes(s.RestoredBytes), pgbench.HumanBytes(s.WALBytes), s.WALRange)
	if b.cfg.Verify {
		b.logf("%s: DrillVerify", strategy)
		v, err := b.d.DrillVerify(ctx, b.t, s)
		if err != nil {
			return row, err
		}
		rto, rpo := v.ServingAt.Sub(failureAt).Seconds(), float64(failureAt.Sub(v.NewestCanaryAt).Microseconds())/1000
		row.RTOSec, row.RPOMs = &rto, &rpo
		row.Check = fmt.Sprintf("%d of %d canary rows", v.CanaryRows, rows)
		if !v.IntegrityOK {
			row.Check += fmt.Sprintf("; integrity: %v", v.Problems)
		} else {
			row.Check += ", amcheck ok"
		}
		b.logf("%s: RTO %.1f s, RPO %.1f ms, %s", strategy, rto, rpo, row.Check)
	}
	return row, nil
}

func mibs(bytes int64, sec float64) float64 {
	if sec <= 0 {
		return 0
	}
	return float64(bytes) / (1 << 20) / sec
}
