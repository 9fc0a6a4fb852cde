package pgbench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/historytest"
	"github.com/themis-maintenance/themis/driver/postgres"
)

// oursResult is one run of a task by this project.
type oursResult struct {
	wall    time.Duration // what the side is timed by
	driver  time.Duration // driver.Run alone (equals wall in direct mode, minus driver creation)
	summary string
	details map[string]any
	attempt int
	// measured is how long into driver.Run the last "measured …" progress
	// note came (the bloat measurement pass of index_rebuild); 0 when there
	// was none or progress is not observed (Temporal mode).
	measured time.Duration
}

// oursRunner runs one task the project's way.
type oursRunner interface {
	run(ctx context.Context, task domain.TaskType, opts domain.TaskOptions, jobID string) (oursResult, error)
	mode() string
	close()
}

// target is the benchmark database as a driver target.
func target(dsn string) driver.Target {
	return driver.Target{Name: DBName, Driver: postgres.Name, DSN: dsn}
}

// directRunner calls driver.Run in-process. Each run gets a new driver, so
// pool creation and the first connection are inside the timing, as a native
// tool's connection is.
type directRunner struct{ dsn string }

func (d directRunner) mode() string {
	return "driver: driver.Run in-process (engine work + driver orchestration; no Temporal round-trips)"
}

func (d directRunner) close() {}

func (d directRunner) run(ctx context.Context, task domain.TaskType, opts domain.TaskOptions, jobID string) (oursResult, error) {
	start := time.Now()
	drv := postgres.New()
	defer drv.Close()
	runStart := time.Now()
	// The progress callback only notes when the measurement pass ended;
	// the driver serialises its calls.
	var measured time.Duration
	progress := func(p driver.Progress) {
		if strings.HasPrefix(p.Note, "measured ") {
			measured = time.Since(runStart)
		}
	}
	res, err := drv.Run(ctx, driver.Request{
		Target: target(d.dsn), Task: task, Options: opts,
		Progress: progress, History: historytest.New(), JobID: jobID,
	})
	end := time.Now()
	if err != nil {
		return oursResult{}, fmt.Errorf("%s: %w", task, err)
	}
	return oursResult{wall: end.Sub(start), driver: end.Sub(runStart), summary: res.Summary, details: res.Details, attempt: 1, measured: measured}, nil
}

// timedDriver wraps the postgres driver to time its Run calls (Temporal
// mode: the share of the wall time that is not the driver's).
type timedDriver struct {
	*postgres.Driver
	mu   sync.Mutex
	last time.Duration
}

func (t *timedDriver) Run(ctx context.Context, req driver.Request) (driver.Result, error) {
	start := time.Now()
	res, err := t.Driver.Run(ctx, req)
	t.mu.Lock()
	t.last += time.Since(start)
	t.mu.Unlock()
	return res, err
}

// take returns the driver time accumulated since the last take.
func (t *timedDriver) take() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.last
	t.last = 0
	return d
}
