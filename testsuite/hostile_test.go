package testsuite

import (
	"testing"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
)

// The real service refuses the hostile requests the fake refuses in
// package apitest (TestHostileFake), with the daemon's default denial
// budget (most 401/403 turn 429), and changes nothing.
func TestHostileRealService(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the Temporal dev server")
	}
	e := NewEnv(t, EnvOptions{})
	n := apitest.RunHostile(t, apitest.Hostile{
		BaseURL: e.API.URL,
		Tokens: map[string]string{
			api.ScopeRead: e.Token(api.ScopeRead), api.ScopeWrite: e.Token(api.ScopeWrite), api.ScopeAdmin: e.Token(api.ScopeAdmin),
		},
	})
	if n < 100 {
		t.Fatalf("only %d hostile cases", n)
	}
}
