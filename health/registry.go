package health

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode"
)

// ProbeFunc checks one module and reports its health. It should honour
// ctx (whose deadline is the Runner's timeout); one that does not is
// reported Unknown when the timeout is up and left to finish on its own.
type ProbeFunc func(ctx context.Context) Signal

// ErrDuplicateProbe is wrapped by RegisterProbe when the name is taken.
var ErrDuplicateProbe = errors.New("health probe already registered")

// maxName bounds a probe name (in bytes).
const maxName = 100

type probe struct {
	name string
	fn   ProbeFunc
}

// Registry holds named probes in registration order. It is safe for
// concurrent use; a Runner sees probes registered after it started from its
// next round on.
type Registry struct {
	mu     sync.RWMutex
	probes []probe
	// watchers are woken (without blocking) when a probe is registered:
	// running Runners call new probes at once rather than a round later.
	watchers []chan<- struct{}
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// Default is the registry of RegisterProbe: a Themis API process runs its
// probes beside the built-in ones.
var Default = NewRegistry()

// RegisterProbe adds fn under name to Default. See Registry.RegisterProbe.
func RegisterProbe(name string, fn ProbeFunc) error { return Default.RegisterProbe(name, fn) }

// RegisterProbe adds fn under name. The name is what /health lists (e.g.
// "replica-consistency", "target:orders"): 1 to 100 printable characters,
// no spaces at either end. A name already registered is an error wrapping
// ErrDuplicateProbe, as are a bad name and a nil fn (not wrapping it).
func (r *Registry) RegisterProbe(name string, fn ProbeFunc) error {
	if err := checkName(name); err != nil {
		return err
	}
	if fn == nil {
		return fmt.Errorf("health probe %q: nil probe function", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.probes {
		if p.name == name {
			return fmt.Errorf("%w: %q", ErrDuplicateProbe, name)
		}
	}
	r.probes = append(r.probes, probe{name: name, fn: fn})
	for _, w := range r.watchers {
		select {
		case w <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
	return nil
}

func (r *Registry) watch(w chan<- struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.watchers = append(r.watchers, w)
}

func (r *Registry) unwatch(w chan<- struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, x := range r.watchers {
		if x == w {
			r.watchers = append(r.watchers[:i:i], r.watchers[i+1:]...)
			return
		}
	}
}

// Unregister removes the probe called name and reports whether there was
// one (tests that register in Default clean up with it).
func (r *Registry) Unregister(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, p := range r.probes {
		if p.name == name {
			r.probes = append(r.probes[:i:i], r.probes[i+1:]...)
			return true
		}
	}
	return false
}

// Names lists the registered probes in registration order.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, len(r.probes))
	for i, p := range r.probes {
		out[i] = p.name
	}
	return out
}

func (r *Registry) snapshot() []probe {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]probe(nil), r.probes...)
}

func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("health probe: empty name")
	case len(name) > maxName:
		return fmt.Errorf("health probe %.20q…: name longer than %d bytes", name, maxName)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("health probe %q: name starts or ends with a space", name)
	}
	for _, c := range name {
		if !unicode.IsPrint(c) {
			return fmt.Errorf("health probe %q: name holds an unprintable character", name)
		}
	}
	return nil
}
