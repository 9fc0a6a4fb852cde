package apitest

import (
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/internal/auth"
	"github.com/themis-maintenance/themis/internal/config"
)

// The fake passes the contract suite the real service passes in the
// testsuite (TestContractRealService), behind the same bearer-token
// authenticator, with a token per scope.
func TestContractFake(t *testing.T) {
	var cfg config.AuthConfig
	tokens := map[string]string{}
	for _, scope := range []string{api.ScopeRead, api.ScopeWrite, api.ScopeAdmin} {
		tok, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		tokens[scope] = tok
		cfg.Tokens = append(cfg.Tokens, config.TokenConfig{
			Name: "test-" + strings.TrimPrefix(scope, "maintenance:"), SHA256: auth.Digest(tok), Scopes: []string{scope}})
	}
	authn, err := auth.New(cfg, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(t, nil, api.Options{Authenticator: authn.Middleware()})
	RunContract(t, Contract{BaseURL: srv.URL, Tokens: tokens, Drills: true})
}
