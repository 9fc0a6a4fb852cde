package pgbench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// clusterSettings are the server settings on top of pgcluster's defaults
// (which include fsync=off and synchronous_commit=off).
func clusterSettings(cfg Config) map[string]string {
	return map[string]string{
		// Nothing but the measured side touches the tables.
		"autovacuum": "off",
		// No WAL archive copying in the background of a measured run.
		"archive_mode":   "off",
		"shared_buffers": cfg.SharedBuffers,
		// No checkpoint in the middle of a measured run.
		"max_wal_size":       "8GB",
		"checkpoint_timeout": "1h",
		// Old WAL segments are removed, not kept for reuse, so the
		// snapshot (and every restore) holds little WAL.
		"wal_recycle": "off",
		// No replicas: nothing to keep WAL for.
		"wal_keep_size": "0",
	}
}

// reportedSettings are read back from the server for the report.
var reportedSettings = []string{
	"fsync", "synchronous_commit", "full_page_writes", "autovacuum", "shared_buffers", "maintenance_work_mem",
	"max_parallel_maintenance_workers", "max_wal_size", "wal_level",
}

// bench is one benchmark's state.
type bench struct {
	cfg    Config
	c      *pgcluster.Cluster
	srv    *server
	runner pgbin.Runner
	ours   oursRunner
	exp    expected
	// statements: pg_stat_statements (14+, for its toplevel column) is
	// installed in the benchmark database and measures server time.
	statements bool
}

func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(b.cfg.Log, time.Now().Format("15:04:05 ")+format+"\n", a...)
}

// query runs fn on a fresh connection to the benchmark database.
func (b *bench) query(ctx context.Context, fn func(*pgx.Conn) error) error {
	conn, err := b.c.Connect(ctx, DBName)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return fn(conn)
}

// Run generates the database, measures every selected pair cfg.Runs times
// and returns the report. The cluster is stopped and removed at the end
// unless cfg.Keep.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	began := time.Now()
	b := &bench{cfg: cfg}
	rep = &Report{StartedAt: began.UTC(), Jobs: cfg.Jobs, Runs: cfg.Runs, CPUs: runtime.NumCPU(), Settings: map[string]string{}}

	b.logf("starting a throwaway cluster")
	if b.c, err = pgcluster.StartCluster(ctx, pgcluster.Options{BinDir: cfg.BinDir, Settings: clusterSettings(cfg)}); err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	defer func() {
		if cfg.Keep {
			// rep is nil when Run fails; the cluster is kept for a look anyway.
			if rep != nil {
				rep.KeptDSN = b.c.DSN(DBName)
			}
			b.logf("cluster kept: %s (data %s)", b.c.DSN(DBName), b.c.DataDir)
			return
		}
		if serr := b.c.Stop(); serr != nil && err == nil {
			err = fmt.Errorf("stop cluster: %w", serr)
		}
	}()
	if b.srv, err = newServer(b.c); err != nil {
		return nil, err
	}
	u, err := pgbin.ResolveUser(b.c.OSUser)
	if err != nil {
		return nil, err
	}
	env, err := pgbin.LibpqEnv(clusterDSN(b.c), "")
	if err != nil {
		return nil, err
	}
	b.runner = pgbin.Runner{BinDir: b.c.BinDir, User: u, Env: env}

	if cfg.Temporal {
		b.logf("starting a Temporal dev server and a worker")
		tr, err := newTemporalRunner(ctx, clusterDSN(b.c), cfg.TemporalBin, cfg.Log)
		if err != nil {
			return nil, fmt.Errorf("temporal mode: %w", err)
		}
		b.ours = tr
	} else {
		b.ours = directRunner{dsn: clusterDSN(b.c)}
	}
	defer b.ours.close()
	rep.Mode = b.ours.mode()

	b.logf("generating %d tables, at least %s", cfg.Tables, HumanBytes(cfg.SizeBytes))
	ds, err := generate(ctx, b.c, cfg)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	var exp expected
	if err := b.query(ctx, func(conn *pgx.Conn) error {
		if err := conn.QueryRow(ctx, `SELECT current_setting('server_version'), pg_database_size(current_database())`).Scan(&rep.Server, &ds.DatabaseBytes); err != nil {
			return err
		}
		for _, s := range reportedSettings {
			var v string
			if err := conn.QueryRow(ctx, `SELECT current_setting($1)`, s).Scan(&v); err != nil {
				return err
			}
			rep.Settings[s] = v
		}
		var err error
		exp, err = readExpected(ctx, conn)
		return err
	}); err != nil {
		return nil, err
	}
	ds.Indexes = int(exp.fp.Indexes)
	ds.DeadTuples, ds.HeapBytes, ds.IndexBytes, ds.SmallestIndex = exp.fp.DeadTuples, exp.fp.HeapBytes, exp.fp.IndexBytes, exp.smallestIndex
	b.logf("generated in %.1fs: %s (heap %s, indexes %s), %d dead tuples; %d tables to vacuum, %d indexes to rebuild",
		ds.GenSeconds, HumanBytes(ds.DatabaseBytes), HumanBytes(ds.HeapBytes), HumanBytes(ds.IndexBytes), ds.DeadTuples,
		len(exp.vacuumTables), len(exp.rebuildIndexes))
	if ds.DatabaseBytes < cfg.SizeBytes {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the database is %s, under the requested %s", HumanBytes(ds.DatabaseBytes), HumanBytes(cfg.SizeBytes)))
	}
	if len(exp.vacuumTables) != cfg.Tables {
		return nil, fmt.Errorf("%d of %d tables show dead tuples", len(exp.vacuumTables), cfg.Tables)
	}

	b.exp = exp
	// pg_stat_statements, in the snapshot, gives each side's time inside
	// SQL statements (see serverTime); without it that column is left out.
	if err := b.query(ctx, func(conn *pgx.Conn) error {
		var v int
		if err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&v); err != nil {
			return err
		}
		if v < 140000 {
			return fmt.Errorf("server %d predates the toplevel column", v)
		}
		_, err := conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`)
		return err
	}); err != nil {
		rep.Notes = append(rep.Notes, "pg_stat_statements is not usable ("+err.Error()+"): no session-idle figures")
	} else {
		b.statements = true
	}
	pairs, err := buildPairs(ctx, cfg, b.runner, exp)
	if err != nil {
		return nil, err
	}

	b.logf("snapshotting the data directory")
	start := time.Now()
	if ds.SnapshotBytes, err = b.srv.snapshot(ctx); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	ds.SnapshotSeconds = time.Since(start).Seconds()
	rep.Dataset = ds

	type sideRuns struct {
		secs, overhead []float64
		checks         []string
		order          []string
		other          []*float64
		idle           []*float64
	}
	results := make([]map[string]*sideRuns, len(pairs))
	var restoreTotal float64
	var waited time.Duration
	restores, retried, unquiet := 0, 0, 0
	for run := 1; run <= cfg.Runs; run++ {
		for pi, p := range pairs {
			if results[pi] == nil {
				results[pi] = map[string]*sideRuns{}
			}
			sides := slices.Clone(p.sides)
			order := "ours first"
			if run%2 == 0 {
				slices.Reverse(sides)
				order = "native first"
			}
			for _, s := range sides {
				var m measurement
				for attempt := 0; attempt <= cfg.Retries; attempt++ {
					got, err := b.measureSide(ctx, p, s, run)
					if err != nil {
						return nil, err
					}
					restoreTotal += got.restoreSecs
					restores++
					waited += got.waited
					if !got.quiet {
						unquiet++
					}
					if attempt == 0 || got.otherShare() < m.otherShare() {
						m = got
					}
					b.logf("run %d/%d %s %s: %.2fs (%s%s)", run, cfg.Runs, p.id, s.key, got.secs, got.check, got.otherNote())
					if !noisy(pct(got.other)) {
						break
					}
					if attempt < cfg.Retries {
						b.logf("  %.0f%% of the CPU went elsewhere during that run: measuring it again", 100*got.otherShare())
						retried++
					}
				}
				if m.ours != nil && m.ours.attempt > 1 {
					rep.Notes = append(rep.Notes, fmt.Sprintf("%s run %d: ours needed %d Temporal attempts", p.id, run, m.ours.attempt))
				}
				sr := results[pi][s.key]
				if sr == nil {
					sr = &sideRuns{}
					results[pi][s.key] = sr
				}
				sr.secs = append(sr.secs, m.secs)
				sr.checks = append(sr.checks, m.check)
				sr.order = append(sr.order, order)
				sr.other = append(sr.other, m.other)
				sr.idle = append(sr.idle, m.idlePct(cfg.Jobs))
				if m.overhead != nil {
					sr.overhead = append(sr.overhead, *m.overhead)
				}
			}
		}
	}
	rep.RestoreSecAvg = restoreTotal / float64(max(1, restores))

	noisyRuns := 0
	for pi, p := range pairs {
		ours := results[pi]["ours"]
		for _, s := range p.sides[1:] {
			nat := results[pi][s.key]
			row := PairRow{
				Pair: p.id, Ours: p.oursDoc, Native: s.display, Matched: p.matched,
				OursMed: median(ours.secs), NativeMed: median(nat.secs),
			}
			row.Ratio = ratio(row.OursMed, row.NativeMed)
			row.GoalMet = row.Ratio <= Goal
			if len(ours.overhead) > 0 {
				m := median(ours.overhead)
				row.OverMed = &m
			}
			row.OursIdleMed, row.NativeIdleMed = medianOf(ours.idle), medianOf(nat.idle)
			for i := range ours.secs {
				rr := RunRow{Run: i + 1, Order: ours.order[i], Ours: ours.secs[i], Native: nat.secs[i],
					Ratio: ratio(ours.secs[i], nat.secs[i]), OursCheck: ours.checks[i], NativeCheck: nat.checks[i],
					OursOtherCPU: pct(ours.other[i]), NativeOtherCPU: pct(nat.other[i]),
					OursIdlePct: ours.idle[i], NativeIdlePct: nat.idle[i]}
				if noisy(rr.OursOtherCPU) || noisy(rr.NativeOtherCPU) {
					rr.Noisy = true
					noisyRuns++
				}
				if len(ours.overhead) > i {
					o := ours.overhead[i]
					rr.OverheadMs = &o
				}
				row.PerRun = append(row.PerRun, rr)
			}
			rep.Rows = append(rep.Rows, row)
		}
	}
	if retried > 0 || waited > 5*time.Second || unquiet > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("shared machine: waited %s in all for quiet windows before measured sides (%d time(s) the wait ran out), and re-measured %d side(s) because other processes took more than %.0f %% of the CPU",
			waited.Round(time.Second), unquiet, retried, NoisyPct))
	}
	if noisyRuns > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d run row(s) marked * had a side during which more than %.0f %% of the machine's CPU went to other processes or to other virtual machines (steal): their ratios are less reliable", noisyRuns, NoisyPct))
	}
	rep.Notes = append(rep.Notes, notes(cfg)...)
	rep.TotalSeconds = time.Since(began).Seconds()
	return rep, nil
}

// notes are the caveats every report carries.
func notes(cfg Config) []string {
	n := []string{
		"each measured side starts from a file-level copy of the same stopped data directory (statistics included), synced to disk, with empty shared buffers and a warm OS page cache; restore time is not measured",
		"ratio = median(ours) / median(native); the goal (orchestration overhead ≤ 5 %) is ratio ≤ 1.05",
		"sessions idle % = share of a side's wall time its N sessions were not executing SQL: (wall − server time of its top-level statements from pg_stat_statements / N) / wall; it is what the client adds (start-up, catalog reads, per-relation round trips and bookkeeping, the tail when fewer than N relations are left), free of the run-to-run variation of the server work that moves the ratio",
		"native tools run as the server's OS user through pgbin with PG* environment variables (no password on any command line); their time includes process start and connection",
	}
	if cfg.Temporal {
		n = append(n, "temporal share = wall time of the workflow (start → result) minus the time inside driver.Run: workflow and activity scheduling, heartbeats, history-store writes")
	} else {
		n = append(n, "ours excludes Temporal: the per-task Temporal cost (workflow start, activity scheduling, heartbeats, result) is not in these figures; run with -temporal to include it")
	}
	return n
}

// NoisyPct is the share of the machine's CPU used outside the benchmark
// during a side above which its run is flagged as unreliable.
const NoisyPct = 20.0

func pct(f *float64) *float64 {
	if f == nil {
		return nil
	}
	v := 100 * *f
	return &v
}

func noisy(p *float64) bool { return p != nil && *p > NoisyPct }

// measurement is one measured side.
type measurement struct {
	secs        float64
	check       string
	other       *float64 // share of the CPU used elsewhere
	overhead    *float64 // Temporal share, ms
	ours        *oursResult
	restoreSecs float64
	serverSecs  *float64 // time inside top-level SQL statements, summed over sessions
	waited      time.Duration
	quiet       bool
}

// idlePct is the share of the side's wall time its n sessions were not
// executing a statement: wall minus the server time spread over n sessions
// (connection set-up, catalog reads done client-side, per-relation
// bookkeeping, and the tail where fewer than n relations are left).
func (m measurement) idlePct(n int) *float64 {
	if m.serverSecs == nil || m.secs <= 0 {
		return nil
	}
	v := 100 * (m.secs - *m.serverSecs/float64(max(1, n))) / m.secs
	return &v
}

// serverTime is the time spent in top-level statements since the reset,
// summed over sessions (the reset and this query excluded).
func (b *bench) serverTime(ctx context.Context) (float64, error) {
	var ms float64
	err := b.query(ctx, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `SELECT coalesce(sum(total_exec_time), 0) FROM pg_stat_statements
			WHERE toplevel AND query NOT LIKE '%pg_stat_statements%'`).Scan(&ms)
	})
	if err != nil {
		return 0, fmt.Errorf("read pg_stat_statements: %w", err)
	}
	return ms / 1000, nil
}

func (m measurement) otherShare() float64 {
	if m.other == nil {
		return 0
	}
	return *m.other
}

func (m measurement) otherNote() string {
	if m.other == nil {
		return ""
	}
	return fmt.Sprintf(", other CPU %.0f%%", 100**m.other)
}

// measureSide restores the snapshot, checks the state, waits for a quiet
// machine, runs one side of p and verifies its work.
func (b *bench) measureSide(ctx context.Context, p pairDef, s side, run int) (measurement, error) {
	var m measurement
	rs := time.Now()
	if err := b.srv.restore(ctx); err != nil {
		return m, fmt.Errorf("restore: %w", err)
	}
	m.restoreSecs = time.Since(rs).Seconds()
	var fp fingerprint
	if err := b.query(ctx, func(conn *pgx.Conn) (err error) { fp, err = readFingerprint(ctx, conn); return err }); err != nil {
		return m, err
	}
	if fp != b.exp.fp {
		return m, fmt.Errorf("restored state differs from the snapshot: %+v, want %+v", fp, b.exp.fp)
	}
	pm := postmasterPID(b.c.DataDir)
	m.quiet = true
	if b.cfg.QuietWait > 0 {
		var err error
		if m.waited, m.quiet, err = waitQuiet(ctx, pm, runtime.NumCPU(), b.cfg.QuietWait); err != nil {
			return m, err
		}
	}
	if b.statements {
		if err := b.query(ctx, func(conn *pgx.Conn) error {
			_, err := conn.Exec(ctx, `SELECT pg_stat_statements_reset()`)
			return err
		}); err != nil {
			return m, fmt.Errorf("reset pg_stat_statements: %w", err)
		}
	}
	var out sideOutput
	// CPU samples are taken with no backend alive (see settle); a sample
	// whose backends did not go away in time is not trusted.
	settled := settle(ctx, pm, 10*time.Second)
	cpuBefore := readCPU(pm)
	switch s.kind {
	case sideOurs:
		res, err := b.ours.run(ctx, p.task, p.opts, fmt.Sprintf("%s-run%d", p.id, run))
		if err != nil {
			return m, err
		}
		m.ours = &res
		m.secs, out.details, out.measured = res.wall.Seconds(), res.details, res.measured
		if b.cfg.Temporal {
			o := float64((res.wall - res.driver).Microseconds()) / 1000
			m.overhead = &o
		}
	default:
		d, output, err := runNative(ctx, b.runner, s)
		if err != nil {
			return m, fmt.Errorf("%s: %w", s.display, err)
		}
		m.secs, out.output = d.Seconds(), output
	}
	settled = settle(ctx, pm, 10*time.Second) && settled
	if b.statements {
		st, err := b.serverTime(ctx)
		if err != nil {
			return m, err
		}
		m.serverSecs = &st
	}
	if f, ok := foreignShare(cpuBefore, readCPU(pm), m.secs, runtime.NumCPU()); ok && settled {
		m.other = &f
	}
	check, err := p.verify(ctx, b, s, out)
	if err != nil {
		return m, fmt.Errorf("%s run %d: %w", p.id, run, err)
	}
	m.check = check
	return m, nil
}
