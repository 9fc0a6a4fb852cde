package testsuite

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/internal/daemon"
	"github.com/themis-maintenance/themis/starter"
)

// The real service passes the contract suite the fake passes in package
// apitest (TestContractFake): the same requests, answered by the gateway
// over starter.Service on the dev server, with the SQLite "demo" target.
func TestContractRealService(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the Temporal dev server")
	}
	// Slow steps keep a job running while the suite runs it again and
	// cancels it (visibility waits included, under -race too); a drill's
	// restore is 4 s slower, well within the demo target's RTO objective.
	e := NewEnv(t, EnvOptions{StepDelay: 4 * time.Second})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The service as the daemon builds it: with the worker's driver
	// capabilities, and a first health probe done.
	svc := starter.New(e.Client, starter.Options{
		Namespace: "default", TaskQueue: e.TaskQueue, Address: e.Config.Temporal.Address,
		Targets: e.Config.TargetInfos(), DefaultTarget: e.Config.DefaultTarget,
		Capabilities:        e.Deps.Registry.Capabilities(),
		DrillCanaryInterval: 100 * time.Millisecond, DrillCanaryDuration: 2 * time.Second,
		Logger: logger,
	})
	svc.ProbeHealth(t.Context())
	h, err := daemon.Handler(svc, e.Config, nil, logger, daemon.HandlerOptions{})
	if err != nil {
		t.Fatalf("api handler: %v", err)
	}
	srv := httptest.NewServer(apitest.NewValidator(t).Handler(t, h))
	t.Cleanup(srv.Close)

	apitest.RunContract(t, apitest.Contract{
		BaseURL: srv.URL,
		Tokens: map[string]string{
			api.ScopeRead: e.Token(api.ScopeRead), api.ScopeWrite: e.Token(api.ScopeWrite), api.ScopeAdmin: e.Token(api.ScopeAdmin),
		},
		Timeout: time.Minute,
		Drills:  true,
	})
}
