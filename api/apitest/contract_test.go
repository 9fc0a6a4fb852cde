package apitest

import (
	"testing"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/internal/auth"
	"github.com/themis-maintenance/themis/internal/config"
)

// The fake passes the contract suite the real service passes in the
// testsuite (TestContractRealService), behind the same bearer-token
// authenticator, with a token per scope.
func TestContractFake(t *testing.T) {
	tokens, tokenCfgs := ScopeTokens(t)
	cfg := config.AuthConfig{Tokens: tokenCfgs}
	authn, err := auth.New(cfg, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(t, nil, api.Options{Authenticator: authn.Middleware()})
	RunContract(t, Contract{BaseURL: srv.URL, Tokens: tokens, Drills: true})
}
