package testsuite

import (
	"testing"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
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
	// The Env's service is built as the daemon builds it (the worker's
	// driver capabilities, the built-in health probes); a first round of
	// probes is done, as the daemon starts them.
	e.Service.ProbeHealth(t.Context())
	// The suite's drills restore the latest verified backup.
	e.verifiedBackup("demo")

	apitest.RunContract(t, apitest.Contract{
		BaseURL: e.API.URL,
		Tokens: map[string]string{
			api.ScopeRead: e.Token(api.ScopeRead), api.ScopeWrite: e.Token(api.ScopeWrite), api.ScopeAdmin: e.Token(api.ScopeAdmin),
		},
		Timeout: time.Minute,
		Drills:  true,
	})
}
