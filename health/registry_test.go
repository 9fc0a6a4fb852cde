package health_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/health"
)

func TestRegisterProbe(t *testing.T) {
	reg := health.NewRegistry()
	ok := func(context.Context) health.Signal { return health.Signal{Status: health.OK} }
	must(t, reg.RegisterProbe("temporal", ok))
	must(t, reg.RegisterProbe("target:orders", ok))
	err := reg.RegisterProbe("temporal", ok)
	if !errors.Is(err, health.ErrDuplicateProbe) || !strings.Contains(err.Error(), `"temporal"`) {
		t.Errorf("duplicate: %v", err)
	}
	for _, bad := range []string{"", " x", "x ", "a\nb", strings.Repeat("n", 101)} {
		if err := reg.RegisterProbe(bad, ok); err == nil || errors.Is(err, health.ErrDuplicateProbe) {
			t.Errorf("name %q: %v", bad, err)
		}
	}
	if err := reg.RegisterProbe("nil", nil); err == nil {
		t.Error("nil probe accepted")
	}
	if got := reg.Names(); !slices.Equal(got, []string{"temporal", "target:orders"}) {
		t.Errorf("names %v", got)
	}
	if !reg.Unregister("temporal") || reg.Unregister("temporal") {
		t.Error("unregister")
	}
	must(t, reg.RegisterProbe("temporal", ok))
}

func TestDefaultRegistry(t *testing.T) {
	ok := func(context.Context) health.Signal { return health.Signal{Status: health.OK} }
	must(t, health.RegisterProbe("test-default", ok))
	t.Cleanup(func() { health.Default.Unregister("test-default") })
	if err := health.RegisterProbe("test-default", ok); !errors.Is(err, health.ErrDuplicateProbe) {
		t.Errorf("duplicate in Default: %v", err)
	}
	if !slices.Contains(health.Default.Names(), "test-default") {
		t.Error("not in Default")
	}
}
