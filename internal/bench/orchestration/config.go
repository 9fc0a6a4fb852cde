package orchestration

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// Config sizes the bench. Zero values take the defaults of DefaultConfig.
type Config struct {
	// Themisctl is the binary run as worker and API; HealthBin the variant
	// with the extra health probes (cmd/themisctl-bench-health); empty
	// skips the health row. TemporalBin is the pinned Temporal CLI.
	Themisctl, HealthBin, TemporalBin string
	// Runs is the number of measured forced Daily runs and of bare SDK
	// runs (interleaved), after Warmup of each.
	Runs, Warmup int
	// Duration is each load phase: the jobs-per-minute phases and each
	// endpoint's window (BENCH_DURATION).
	Duration time.Duration
	// Conns is the number of connections of the HTTP load.
	Conns int
	// Schedules and Jobs are the list sizes aimed at. ScheduleTimeout
	// bounds creating schedules through the API (the rest are created
	// directly in Temporal in the API's shape); JobsTimeout bounds running
	// the jobs (the notes say how many there were).
	Schedules, Jobs              int
	ScheduleTimeout, JobsTimeout time.Duration
	// Concurrency is the number of jobs kept in flight by the
	// jobs-per-minute phases.
	Concurrency int
	// RequestTimeout bounds one HTTP request of the load (an error beyond).
	RequestTimeout time.Duration
	// HealthProbes is the number of modules GET /health reports in the
	// health row, one of them hanging.
	HealthProbes int
	// Dir keeps the stack's files and logs when set (otherwise a temporary
	// directory, removed at the end).
	Dir string
	// Log receives progress lines.
	Log io.Writer
}

// DefaultConfig is `make bench`: about 10 minutes on 2 busy cores.
func DefaultConfig() Config {
	return Config{
		Runs: 30, Warmup: 3, Duration: 30 * time.Second, Conns: 16,
		Schedules: 1000, Jobs: 1000, ScheduleTimeout: 60 * time.Second, JobsTimeout: 100 * time.Second,
		Concurrency: 32, RequestTimeout: 10 * time.Second, HealthProbes: 20,
		Log: os.Stderr,
	}
}

// RegisterFlags binds the fields to flags of fs, with defaults from c and
// BENCH_DURATION.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	if v := os.Getenv("BENCH_DURATION"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			c.Duration = d
		}
	}
	fs.StringVar(&c.Themisctl, "themisctl", c.Themisctl, "themisctl binary (worker and API)")
	fs.StringVar(&c.HealthBin, "health-bin", c.HealthBin, "themisctl-bench-health binary (API with extra probes, one hanging); empty skips GET /health")
	fs.StringVar(&c.TemporalBin, "temporal", c.TemporalBin, "Temporal CLI (default: $THEMIS_TEMPORAL_BIN, PATH, ./bin/temporal)")
	fs.IntVar(&c.Runs, "runs", c.Runs, "measured forced Daily runs (and as many bare SDK runs)")
	fs.IntVar(&c.Warmup, "warmup", c.Warmup, "unmeasured runs of each kind first")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "each load window (env BENCH_DURATION)")
	fs.IntVar(&c.Conns, "conns", c.Conns, "HTTP connections of the list load")
	fs.IntVar(&c.Schedules, "schedules", c.Schedules, "schedules behind GET /schedules")
	fs.IntVar(&c.Jobs, "jobs", c.Jobs, "jobs behind GET /jobs?limit=100")
	fs.DurationVar(&c.ScheduleTimeout, "schedules-timeout", c.ScheduleTimeout, "bound on creating schedules through the API (the rest are created directly in Temporal)")
	fs.DurationVar(&c.JobsTimeout, "jobs-timeout", c.JobsTimeout, "bound on running the jobs behind GET /jobs")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "jobs in flight in the jobs-per-minute phases")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", c.RequestTimeout, "one HTTP request of the load; longer is an error")
	fs.IntVar(&c.HealthProbes, "health-probes", c.HealthProbes, "health modules in the GET /health row, one hanging")
	fs.StringVar(&c.Dir, "dir", c.Dir, "keep the stack's files and logs in this directory")
}

func (c Config) validate() error {
	var errs []error
	if c.Themisctl == "" {
		errs = append(errs, errors.New("-themisctl is required"))
	}
	for name, v := range map[string]int{"runs": c.Runs, "conns": c.Conns, "schedules": c.Schedules, "jobs": c.Jobs, "concurrency": c.Concurrency} {
		if v < 1 {
			errs = append(errs, fmt.Errorf("-%s must be at least 1, got %d", name, v))
		}
	}
	if c.Warmup < 0 {
		errs = append(errs, errors.New("-warmup must not be negative"))
	}
	for name, v := range map[string]time.Duration{"duration": c.Duration, "schedules-timeout": c.ScheduleTimeout, "jobs-timeout": c.JobsTimeout, "request-timeout": c.RequestTimeout} {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("-%s must be positive, got %s", name, v))
		}
	}
	return errors.Join(errs...)
}

// itoa is strconv.Itoa, for table cells.
func itoa(n int) string { return strconv.Itoa(n) }
