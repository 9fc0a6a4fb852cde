package replicaconsistency

import (
	"fmt"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/health"
)

// Options configure Register.
type Options struct {
	// Targets is where the probe finds the configured targets; required
	// (ConfigTargets reads the Themis config file).
	Targets TargetSource
	// Probe sets the probe's thresholds (defaults 1000 ms and 5000 ms).
	Probe ProbeOptions
}

// Register adds the module to the process: the task type to the task
// registry, its PostgreSQL implementation to package driver, and the probe
// to health.Default. Call it once, before the worker and the API start (in
// main, or in a test before testsuite.NewEnv). unregister undoes all three
// (for tests).
func Register(opts Options) (unregister func(), err error) {
	probe, err := NewProbe(opts.Targets, opts.Probe)
	if err != nil {
		return nil, err
	}
	var undo []func()
	unregister = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	unregisterTask, err := domain.RegisterTask(TaskDef)
	if err != nil {
		return nil, fmt.Errorf("replica consistency: %w", err)
	}
	undo = append(undo, unregisterTask)
	unimplement, err := driver.Implement("postgres", TaskType, runCheck)
	if err != nil {
		unregister()
		return nil, fmt.Errorf("replica consistency: %w", err)
	}
	undo = append(undo, unimplement)
	if err := health.RegisterProbe(ProbeName, probe.Check); err != nil {
		unregister()
		return nil, fmt.Errorf("replica consistency: %w", err)
	}
	undo = append(undo, func() { health.Default.Unregister(ProbeName) })
	return unregister, nil
}

// MustRegister is Register for a main function: an error panics.
func MustRegister(opts Options) {
	if _, err := Register(opts); err != nil {
		panic(err)
	}
}
