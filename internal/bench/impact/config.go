package impact

import (
	"fmt"
	"io"
	"time"
)

// Config shapes a benchmark; the zero value of each optional field takes
// the default in its comment.
type Config struct {
	// SizeBytes is the least size of the maintained database. Optional: 1 GiB.
	SizeBytes int64
	// Tables is how many tables it is spread over (more are added when the
	// size is not reached). Optional: 64.
	Tables int
	// Jobs is the parallelism of both sides (parallelism=, -j). Optional: 2.
	Jobs int
	// RebuildJobs is ours' parallelism on index_rebuild. Optional: Jobs.
	RebuildJobs int
	// Clients and Threads are pgbench's -c and -j. Optional: 4 and 2.
	Clients, Threads int
	// Rate is pgbench's -R, transactions per second; negative: no limit
	// (every client as fast as it can). Optional: 200.
	Rate int
	// Scale is the foreground database's pgbench scale. Optional: 10.
	Scale int
	// Sides are the sides measured, in the first round's order (quiet,
	// ours, native); the rest are left out. Optional: all three.
	Sides []string
	// Runs is how many rounds of the sides run (the order rotating
	// each round); each figure of a side is the median of its rounds.
	// Optional: 1.
	Runs int
	// BaselineSeconds is the quiet side's window. Optional: 30.
	BaselineSeconds int
	// WarmupSeconds is how long pgbench runs before a window opens.
	// Optional: 5.
	WarmupSeconds int
	// TailSeconds is how long lag is still sampled after a window closes.
	// Optional: 5.
	TailSeconds int
	// SampleInterval spaces the lag samples. Optional: 200 ms.
	SampleInterval time.Duration
	// MaxLagMs, MaxActive and Intensity are ours' max_lag_ms,
	// max_active_backends and intensity. Optional: 500, Clients − 1 (the
	// task waits while every pgbench client is busy), 1 (no pacing sleep);
	// MaxActive negative: off.
	MaxLagMs  int64
	MaxActive int64
	Intensity float64
	// CostDelayMs is ours' cost_delay_ms on mvcc_cleanup (VACUUM paced as
	// autovacuum paces itself, with cost_limit 200). Optional: 0, none.
	CostDelayMs float64
	// ParallelWorkers is ours' parallel_workers on both tasks (the
	// sessions' max_parallel_maintenance_workers). Optional: nil, the
	// server's setting (vacuumdb and reindexdb always run with it).
	ParallelWorkers *int64
	// RebuildUnit is ours' rebuild_unit on index_rebuild ("table" or
	// "index"). Optional: "table".
	RebuildUnit string
	// BinDir holds the server binaries and tools. Optional: found as
	// pgcluster does.
	BinDir string
	// Keep leaves the cluster running afterwards (reaped by the next
	// pgcluster start once this process has exited).
	Keep bool
	// Log receives progress lines. Optional: discarded.
	Log io.Writer
}

// The seeded tables' shape (pgcluster.SeedOptions).
const (
	deletePct = 30
	updatePct = 20
	// seedRowBytes is about what one seeded row takes with its indexes,
	// dead versions included: the first guess at rows per table.
	seedRowBytes = 220
)

func (c Config) withDefaults() Config {
	if c.SizeBytes <= 0 {
		c.SizeBytes = 1 << 30
	}
	if c.Tables <= 0 {
		c.Tables = 64
	}
	if c.Jobs <= 0 {
		c.Jobs = 2
	}
	if c.RebuildJobs <= 0 {
		c.RebuildJobs = c.Jobs
	}
	if c.Clients <= 0 {
		c.Clients = 4
	}
	if c.Threads <= 0 {
		c.Threads = 2
	}
	if c.Rate == 0 {
		c.Rate = 200
	}
	if c.Scale <= 0 {
		c.Scale = 10
	}
	if c.Runs <= 0 {
		c.Runs = 1
	}
	if len(c.Sides) == 0 {
		c.Sides = []string{sideQuiet, sideOurs, sideNative}
	}
	if c.BaselineSeconds <= 0 {
		c.BaselineSeconds = 30
	}
	if c.WarmupSeconds <= 0 {
		c.WarmupSeconds = 5
	}
	if c.TailSeconds <= 0 {
		c.TailSeconds = 5
	}
	if c.SampleInterval <= 0 {
		c.SampleInterval = 200 * time.Millisecond
	}
	if c.MaxLagMs <= 0 {
		c.MaxLagMs = 500
	}
	switch {
	case c.MaxActive == 0:
		c.MaxActive = int64(max(1, c.Clients-1))
	case c.MaxActive < 0:
		c.MaxActive = 0
	}
	if c.Intensity <= 0 {
		c.Intensity = 1
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c
}

func (c Config) validate() error {
	seen := map[string]bool{}
	for _, s := range c.Sides {
		if s != sideQuiet && s != sideOurs && s != sideNative {
			return fmt.Errorf("side %q: quiet, ours or native", s)
		}
		if seen[s] {
			return fmt.Errorf("side %q listed twice", s)
		}
		seen[s] = true
	}
	switch {
	case c.Threads > c.Clients:
		return fmt.Errorf("pgbench threads (%d) must not exceed clients (%d)", c.Threads, c.Clients)
	case c.Clients+c.Jobs > 40:
		return fmt.Errorf("%d clients + %d jobs: at most 40 sessions (the cluster allows 50 connections)", c.Clients, c.Jobs)
	case c.Intensity > 1:
		return fmt.Errorf("intensity %g: at most 1", c.Intensity)
	case c.CostDelayMs < 0 || c.CostDelayMs > 100:
		return fmt.Errorf("cost delay %g ms: 0 to 100", c.CostDelayMs)
	case c.RebuildUnit != "" && c.RebuildUnit != "table" && c.RebuildUnit != "index":
		return fmt.Errorf("rebuild unit %q: table or index", c.RebuildUnit)
	case c.ParallelWorkers != nil && (*c.ParallelWorkers < 0 || *c.ParallelWorkers > 64):
		return fmt.Errorf("parallel workers %d: 0 to 64", *c.ParallelWorkers)
	case c.SampleInterval < 10*time.Millisecond:
		return fmt.Errorf("sample interval %s: at least 10ms", c.SampleInterval)
	}
	return nil
}

// rowsPerTable is the first guess at each seeded table's rows.
func (c Config) rowsPerTable() int {
	return int(max(2000, c.SizeBytes/int64(c.Tables)/seedRowBytes))
}
