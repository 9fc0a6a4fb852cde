package apitest

import (
	"testing"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/internal/auth"
	"github.com/themis-maintenance/themis/internal/config"
)

// The fake behind the real authenticator refuses every hostile request
// with a 4xx problem and changes nothing; the validator the server is
// wrapped in checks every answer against the OpenAPI document. The
// testsuite runs the same suite against the real service.
func TestHostileFake(t *testing.T) {
	tokens, tokenCfgs := ScopeTokens(t)
	authn, err := auth.New(config.AuthConfig{Tokens: tokenCfgs}, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A denial budget large enough that every 401/403 is answered as
	// such (the real server's defaults answer most of them 429 here).
	srv := NewServer(t, nil, api.Options{Authenticator: authn.Middleware(),
		Denials: api.DenialLimit{PerMinute: 1e6, Burst: 1e6}})
	before := srv.Fake.Counts()
	n := RunHostile(t, Hostile{BaseURL: srv.URL, Tokens: tokens})
	if n < 100 {
		t.Fatalf("only %d hostile cases", n)
	}
	// The suite's own target schedule is its only write.
	if c := srv.Fake.Counts(); c.Creates != before.Creates+1 || c.Updates != before.Updates || c.Runs != before.Runs || c.Deletes != before.Deletes {
		t.Fatalf("hostile requests reached the service: %+v → %+v", before, c)
	}
}
