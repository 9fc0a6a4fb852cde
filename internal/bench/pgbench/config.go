package pgbench

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Pair identifiers, in the order they run.
const (
	PairMVCC        = "mvcc_cleanup"
	PairFullCheck   = "full_checkdb"
	PairConsistency = "consistency_check"
	PairRebuild     = "index_rebuild"
)

// AllPairs lists every pair in run order.
var AllPairs = []string{PairMVCC, PairFullCheck, PairConsistency, PairRebuild}

// Config shapes a benchmark. The zero value of each optional field takes
// the default named in its comment.
type Config struct {
	// Tables is the number of generated tables. Optional: 200.
	Tables int
	// SizeBytes is the minimum database size after generation. Optional: 1 GiB.
	SizeBytes int64
	// Jobs is the parallelism N of both sides. Optional: 2.
	Jobs int
	// Runs is the number of measured runs per pair. Optional: 3.
	Runs int
	// Pairs selects pairs by id (AllPairs). Optional: all.
	Pairs []string
	// DeletePct and UpdatePct shape the dead tuples. Optional: 30 and 20.
	DeletePct, UpdatePct int
	// GenConns is the number of connections generating tables. Optional:
	// the number of CPUs, at least 2.
	GenConns int
	// SharedBuffers is the server's shared_buffers. Optional: 256MB.
	SharedBuffers string
	// BinDir holds the server binaries and the native tools. Optional: found
	// like pgcluster does.
	BinDir string
	// Keep leaves the cluster running after the benchmark (it is reaped by
	// the next pgcluster start of any process once this one has exited).
	Keep bool
	// Temporal runs the ours side through the MaintenanceWorkflow on a local
	// Temporal dev server (TemporalBin, or found like devserver does).
	Temporal    bool
	TemporalBin string
	// QuietWait is how long to wait, before each measured side, for the
	// machine to be quiet: the CPU used outside the cluster and this
	// process under QuietPct over a 2 s window. Optional: 1 minute;
	// negative: do not wait.
	QuietWait time.Duration
	// Retries is how often a side is measured again (from a fresh restore)
	// when more than NoisyPct of the machine's CPU went elsewhere while it
	// ran; the attempt with the least outside CPU is kept, whatever its time.
	// Optional: 2; negative: none.
	Retries int
	// Log receives progress lines. Optional: discarded.
	Log io.Writer
}

func (c Config) withDefaults() Config {
	if c.Tables <= 0 {
		c.Tables = 200
	}
	if c.SizeBytes <= 0 {
		c.SizeBytes = 1 << 30
	}
	if c.Jobs <= 0 {
		c.Jobs = 2
	}
	if c.Runs <= 0 {
		c.Runs = 3
	}
	if len(c.Pairs) == 0 {
		c.Pairs = AllPairs
	}
	if c.DeletePct == 0 {
		c.DeletePct = 30
	}
	if c.UpdatePct == 0 {
		c.UpdatePct = 20
	}
	if c.GenConns <= 0 {
		c.GenConns = max(2, runtime.NumCPU())
	}
	if c.SharedBuffers == "" {
		c.SharedBuffers = "256MB"
	}
	switch {
	case c.QuietWait == 0:
		c.QuietWait = time.Minute
	case c.QuietWait < 0:
		c.QuietWait = 0
	}
	switch {
	case c.Retries == 0:
		c.Retries = 2
	case c.Retries < 0:
		c.Retries = 0
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c
}

func (c Config) validate() error {
	if c.DeletePct < 0 || c.UpdatePct < 0 || c.DeletePct+c.UpdatePct > 90 {
		return fmt.Errorf("delete (%d%%) and update (%d%%) percentages must be non-negative and total at most 90", c.DeletePct, c.UpdatePct)
	}
	if c.UpdatePct == 0 && c.DeletePct == 0 {
		return fmt.Errorf("no dead tuples: set a delete or update percentage")
	}
	if c.Jobs > 48 {
		return fmt.Errorf("-j %d: at most 48 (the cluster allows 50 connections)", c.Jobs)
	}
	known := map[string]bool{}
	for _, p := range AllPairs {
		known[p] = true
	}
	for _, p := range c.Pairs {
		if !known[p] {
			return fmt.Errorf("unknown pair %q (known: %s)", p, strings.Join(AllPairs, ", "))
		}
	}
	return nil
}

func (c Config) wants(pair string) bool {
	for _, p := range c.Pairs {
		if p == pair {
			return true
		}
	}
	return false
}

// ParseSize parses a size such as "1GB", "512MB", "1.5GiB", "64kB" or a
// plain byte count. Units are binary, as in postgresql.conf: 1GB = 1 GiB.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (kB, MB, GB, TB)", s)
	}
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "ib"), "b")
	mult := map[string]float64{"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("size %q: unknown unit", s)
	}
	v := f * mult
	if v > math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return int64(v), nil
}

// HumanBytes formats a byte count with binary units.
func HumanBytes(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
