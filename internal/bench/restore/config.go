package restore

import (
	"io"
	"time"
)

// Config shapes a benchmark; the zero value of each optional field takes
// the default in its comment.
type Config struct {
	// SizeBytes is the generated database's size. Optional: 1 GiB.
	SizeBytes int64
	// WriteSeconds is how long pgbench writes after the base backup (the
	// WAL backup_restore replays). Optional: 20 s.
	WriteSeconds int
	// Runs is how many times each side (the floor, each strategy) is
	// measured; the median counts. Optional: 3.
	Runs int
	// Standby gives the primary a streaming standby, the replica_clone
	// source (without one the primary is copied).
	Standby bool
	// Verify runs DrillVerify after each restore (RTO and RPO need it).
	Verify bool
	// BinDir holds the server binaries. Optional: found like pgcluster does.
	BinDir string
	// Keep leaves the cluster running afterwards (reaped by the next
	// pgcluster start once this process has exited).
	Keep bool
	// Log receives progress lines. Optional: discarded.
	Log io.Writer
}

// scaleBytes is about what one pgbench scale unit takes (pgbench_accounts'
// 100 000 rows and its primary key).
const scaleBytes = 15 << 20

func (c Config) withDefaults() Config {
	if c.SizeBytes <= 0 {
		c.SizeBytes = 1 << 30
	}
	if c.WriteSeconds <= 0 {
		c.WriteSeconds = 20
	}
	if c.Runs <= 0 {
		c.Runs = 3
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c
}

// scale is the pgbench scale factor for SizeBytes (at least 1).
func (c Config) scale() int64 {
	return max(1, (c.SizeBytes+scaleBytes-1)/scaleBytes)
}

// canaryInterval spaces a drill's canary rows in the benchmark.
const canaryInterval = 200 * time.Millisecond
