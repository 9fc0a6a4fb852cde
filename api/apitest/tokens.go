package apitest

import (
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/internal/auth"
	"github.com/themis-maintenance/themis/internal/config"
)

// ScopeTokens returns a new bearer token per scope (read, write, admin)
// and the auth configuration that accepts them, each under the name
// test-<scope>: what both runners of the contract give the authenticator.
func ScopeTokens(t testing.TB) (map[string]string, []config.TokenConfig) {
	t.Helper()
	tokens := map[string]string{}
	var cfgs []config.TokenConfig
	for _, scope := range []string{api.ScopeRead, api.ScopeWrite, api.ScopeAdmin} {
		tok, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		tokens[scope] = tok
		cfgs = append(cfgs, config.TokenConfig{
			Name: "test-" + strings.TrimPrefix(scope, "maintenance:"), SHA256: auth.Digest(tok), Scopes: []string{scope}})
	}
	return tokens, cfgs
}
