package impact

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"time"

	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
	"github.com/themis-maintenance/themis/internal/bench/pgbench"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// The sides, in the order they run.
const (
	sideQuiet  = "quiet"
	sideOurs   = "ours"
	sideNative = "native"
)

// bench is one run's state.
type bench struct {
	cfg   Config
	c     *pgcluster.Cluster
	srv   *server
	tools pgbin.Runner
	// work holds pgbench's transaction logs (writable by the server's
	// OS user, which pgbench runs as).
	work string
}

func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(b.cfg.Log, "%s bench-impact: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

// clusterSettings are the primary's settings on top of pgcluster's
// defaults (fsync and synchronous_commit off); the standby copies them.
func clusterSettings() map[string]string {
	return map[string]string{
		// Nothing but the sides touch the tables.
		"autovacuum":   "off",
		"archive_mode": "off",
		// A checkpoint spreads over the run rather than landing in one side.
		"shared_buffers": "256MB", "max_wal_size": "4GB", "checkpoint_timeout": "30min",
		// A standby behind by a whole side's WAL can still stream it.
		"wal_keep_size": "2GB",
	}
}

// Run generates the databases, snapshots them and measures each side from
// the snapshot (see the package comment).
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	started := time.Now()
	b := &bench{cfg: cfg}
	rep = &Report{StartedAt: started.UTC(), CPUs: runtime.NumCPU(), Jobs: cfg.Jobs, Clients: cfg.Clients, Threads: cfg.Threads,
		Rate: cfg.Rate, Runs: cfg.Runs, BaselineSeconds: cfg.BaselineSeconds, TailSeconds: cfg.TailSeconds, SampleMs: cfg.SampleInterval.Milliseconds(),
		MaxLagMs: cfg.MaxLagMs, MaxActive: cfg.MaxActive, Intensity: cfg.Intensity}

	b.logf("starting a primary")
	c, err := pgcluster.StartCluster(ctx, pgcluster.Options{BinDir: cfg.BinDir, Settings: clusterSettings()})
	if err != nil {
		return nil, err
	}
	b.c = c
	defer func() {
		if cfg.Keep {
			b.logf("kept: primary %s (data %s)", c.DSN(benchDB), c.DataDir)
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
	env, err := pgbin.LibpqEnv(c.DSN(benchDB), "")
	if err != nil {
		return nil, err
	}
	b.tools = pgbin.Runner{BinDir: c.BinDir, User: u, Env: env}
	b.work = filepath.Join(c.Root, "foreground")
	if err := u.MkdirOwned(b.work, 0o700); err != nil {
		return nil, err
	}

	ds, err := b.generate(ctx)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	conn, err := c.Connect(ctx, benchDB)
	if err != nil {
		return nil, err
	}
	w, err := readWork(ctx, conn)
	if err == nil {
		err = conn.QueryRow(ctx, `SELECT current_setting('server_version')`).Scan(&rep.Server)
	}
	conn.Close(context.Background())
	if err != nil {
		return nil, err
	}
	if len(w.vacuum) != ds.Tables || len(w.reindex) != ds.Tables {
		return nil, fmt.Errorf("%d tables generated, %d show dead tuples and %d have indexes", ds.Tables, len(w.vacuum), len(w.reindex))
	}
	b.logf("generated in %.0f s: %s (heap %s, indexes %s in %d indexes), %d dead tuples; foreground %s",
		ds.GenSeconds, pgbench.HumanBytes(ds.DatabaseBytes), pgbench.HumanBytes(ds.HeapBytes), pgbench.HumanBytes(ds.IndexBytes),
		ds.Indexes, ds.DeadTuples, pgbench.HumanBytes(ds.AppBytes))

	b.srv = newServer(c, u)
	b.logf("snapshotting the primary's data directory")
	t0 := time.Now()
	if err := b.srv.snapshot(ctx); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	ds.SnapshotSeconds = time.Since(t0).Seconds()
	rep.Dataset = ds

	// Config.Runs rounds of Config.Sides, the order rotating each round; each side's
	// figures are the medians of its rounds (a shared machine's CPUs and
	// disk vary from minute to minute).
	order := cfg.Sides
	runs := map[string][]Side{}
	for run := 0; run < cfg.Runs; run++ {
		for i := range order {
			name := order[(i+run)%len(order)]
			if cfg.Runs > 1 {
				b.logf("round %d of %d: %s", run+1, cfg.Runs, name)
			}
			s, err := b.side(ctx, name, w)
			if err != nil {
				return nil, fmt.Errorf("%s (round %d): %w", name, run+1, err)
			}
			runs[name] = append(runs[name], s)
		}
	}
	for _, name := range order {
		rep.Sides = append(rep.Sides, medianSide(runs[name]))
	}
	rep.compare()
	rep.TotalSeconds = time.Since(started).Seconds()
	return rep, nil
}

// side measures one side from a restored snapshot with a fresh standby.
func (b *bench) side(ctx context.Context, name string, w work) (s Side, err error) {
	s.Name = name
	b.logf("%s: restoring the snapshot, making a fresh standby", name)
	if err := b.srv.restore(ctx); err != nil {
		return s, fmt.Errorf("restore: %w", err)
	}
	r, err := b.c.StartReplicaContext(ctx)
	if err != nil {
		return s, err
	}
	defer func() {
		if serr := r.Stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	if err := b.waitStreaming(ctx); err != nil {
		return s, err
	}
	sm, err := startSampler(ctx, b.c.DSN("postgres"), r.DSN("postgres"), b.cfg.SampleInterval)
	if err != nil {
		return s, err
	}
	defer sm.stop()
	fg, err := b.startForeground(ctx, name)
	if err != nil {
		return s, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_, _ = b.stopForeground(context.WithoutCancel(ctx), fg)
		}
	}()
	if err := sleep(ctx, time.Duration(b.cfg.WarmupSeconds)*time.Second); err != nil {
		return s, err
	}
	if err := fg.alive(); err != nil {
		return s, err
	}
	b.logf("%s: pgbench running; window opens", name)
	from, cpuFrom := time.Now(), readCPUTimes()
	switch name {
	case sideQuiet:
		err = sleep(ctx, time.Duration(b.cfg.BaselineSeconds)*time.Second)
	case sideOurs:
		s.Steps, err = b.runOurs(ctx, r.DSN(benchDB), w)
	case sideNative:
		s.Steps, err = b.runNative(ctx, w)
	}
	to, cpuTo := time.Now(), readCPUTimes()
	if err != nil {
		return s, err
	}
	s.CPUsBusy = cpusBusy(cpuFrom, cpuTo, runtime.NumCPU())
	if err := fg.alive(); err != nil {
		return s, err
	}
	tail := time.Duration(b.cfg.TailSeconds) * time.Second
	if err := sleep(ctx, tail); err != nil {
		return s, err
	}
	samples, errs := sm.stop()
	txns, err := b.stopForeground(ctx, fg)
	stopped = true
	if err != nil {
		return s, err
	}
	s.WindowSeconds = to.Sub(from).Seconds()
	if name != sideQuiet {
		s.MaintenanceSeconds = s.WindowSeconds
	}
	for _, st := range s.Steps {
		s.ThrottledMs += st.ThrottledMs + st.SleptMs
	}
	s.Foreground = foregroundIn(txns, from, to)
	for i := range s.Steps {
		s.Steps[i].P99Ms = foregroundIn(txns, s.Steps[i].from, s.Steps[i].to).P99Ms
		s.Steps[i].MaxLagMs = lagIn(samples, 0, s.Steps[i].from, s.Steps[i].to, b.cfg.SampleInterval, b.cfg.MaxLagMs).MaxLagMs()
	}
	s.Lag = lagIn(samples, errs, from, to.Add(tail), b.cfg.SampleInterval, b.cfg.MaxLagMs)
	b.logf("%s: window %.1f s, %.0f tps, p99 %.1f ms, max lag %.0f ms (standby view %.0f ms, %s), %.2f CPUs busy", name, s.WindowSeconds,
		s.Foreground.TPS, s.Foreground.P99Ms, s.Lag.MaxMs, s.Lag.MaxStandbyMs, pgbench.HumanBytes(s.Lag.MaxBytes), s.CPUsBusy)
	return s, nil
}

// waitStreaming waits until a standby streams and has replayed what the
// primary had written when it was called.
func (b *bench) waitStreaming(ctx context.Context) error {
	conn, err := b.c.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var lsn string
	if err := conn.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_replication
			WHERE state = 'streaming' AND replay_lsn >= $1::pg_lsn)`, lsn).Scan(&ok); err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no standby streaming and caught up to %s after 2 minutes", lsn)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
