package health_test

import (
	"context"
	"fmt"

	"github.com/themis-maintenance/themis/health"
)

// A module registers a probe judging replica lag: degraded over 1000 ms,
// critical over 5000 ms.
func ExampleRegistry_RegisterProbe() {
	reg := health.NewRegistry() // health.RegisterProbe uses health.Default
	lagMs := int64(1500)
	err := reg.RegisterProbe("replica-consistency", func(ctx context.Context) health.Signal {
		status := health.OK
		switch {
		case lagMs > 5000:
			status = health.Critical
		case lagMs > 1000:
			status = health.Degraded
		}
		return health.Signal{Status: status, Message: fmt.Sprintf("replica lag %d ms", lagMs),
			Details: map[string]any{"lag_ms": lagMs}}
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	rep := health.NewRunner(health.RunnerOptions{}, reg).Check(context.Background())
	for _, m := range rep.Modules {
		fmt.Println(m.Name, m.Status, m.Message)
	}
	fmt.Println("overall", rep.Overall)
	// Output:
	// replica-consistency degraded replica lag 1500 ms
	// overall degraded
}
