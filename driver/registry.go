package driver

import (
	"fmt"
	"sort"

	"github.com/themis-maintenance/themis/domain"
)

// Registry resolves target names to their configuration and driver.
type Registry struct {
	drivers map[string]Driver
	targets map[string]Target
}

// NewRegistry builds a registry; every target must name a registered driver.
func NewRegistry(drivers []Driver, targets []Target) (*Registry, error) {
	r := &Registry{drivers: map[string]Driver{}, targets: map[string]Target{}}
	for _, d := range drivers {
		r.drivers[d.Name()] = d
	}
	for _, t := range targets {
		if _, ok := r.drivers[t.Driver]; !ok {
			return nil, fmt.Errorf("target %s: unknown driver %q", t.Name, t.Driver)
		}
		if _, dup := r.targets[t.Name]; dup {
			return nil, fmt.Errorf("target %s: defined twice", t.Name)
		}
		r.targets[t.Name] = t
	}
	return r, nil
}

// Lookup returns a target and its driver. An unknown name is a permanent
// Misconfigured error: retrying will not make it appear.
func (r *Registry) Lookup(name string) (Target, Driver, error) {
	t, ok := r.targets[name]
	if !ok {
		return Target{}, nil, Permanentf(KindMisconfigured, "target %q is not configured on this worker", name)
	}
	return t, r.drivers[t.Driver], nil
}

// Capabilities returns, for each task type, the names of the registered
// drivers that support it. A driver runs disaster_recovery_drill through
// the drill workflow when it is a Driller, whatever Supports says.
func (r *Registry) Capabilities() map[domain.TaskType][]string {
	out := map[domain.TaskType][]string{}
	names := make([]string, 0, len(r.drivers))
	for n := range r.drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, t := range domain.AllTaskTypes() {
		out[t] = []string{}
		for _, n := range names {
			_, driller := r.drivers[n].(Driller)
			if r.drivers[n].Supports(t) || (t == domain.TaskDisasterRecoveryDrill && driller) {
				out[t] = append(out[t], n)
			}
		}
	}
	return out
}

// Close releases what the drivers hold (connection pools).
func (r *Registry) Close() {
	for _, d := range r.drivers {
		if c, ok := d.(interface{ Close() }); ok {
			c.Close()
		}
	}
}
