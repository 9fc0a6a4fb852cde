package driver

import (
	"fmt"
	"slices"
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

// Capabilities returns, for each registered task type, the names of the
// registry's drivers that can run it (see Supports: an engine's own task
// table, implementations added with Implement, and Driller for the drill).
func (r *Registry) Capabilities() map[domain.TaskType][]string {
	drivers := make([]Driver, 0, len(r.drivers))
	for _, d := range r.drivers {
		drivers = append(drivers, d)
	}
	return Capabilities(drivers)
}

// Capabilities returns, for each registered task type, the sorted names of
// the drivers that can run it (an empty list when none can).
func Capabilities(drivers []Driver) map[domain.TaskType][]string {
	sorted := slices.Clone(drivers)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name() < sorted[j].Name() })
	out := map[domain.TaskType][]string{}
	for _, t := range domain.AllTaskTypes() {
		out[t] = []string{}
		for _, d := range sorted {
			if Supports(d, t) {
				out[t] = append(out[t], d.Name())
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
