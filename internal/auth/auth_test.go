package auth_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/internal/auth"
	"github.com/themis-maintenance/themis/internal/config"
)

var quiet = auth.Options{Logger: slog.New(slog.DiscardHandler)}

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		tok, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(tok, auth.TokenPrefix) || len(tok) != len(auth.TokenPrefix)+43 {
			t.Fatalf("token %q", tok)
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, auth.TokenPrefix))
		if err != nil || len(raw) != 32 {
			t.Fatalf("token %q: %v", tok, err)
		}
		if seen[tok] {
			t.Fatal("repeated token")
		}
		seen[tok] = true
	}
}

func TestDigest(t *testing.T) {
	sum := sha256.Sum256([]byte("secret"))
	if got := auth.Digest("secret"); got != hex.EncodeToString(sum[:]) || len(got) != 64 {
		t.Fatalf("digest %q", got)
	}
}

func TestParseScopes(t *testing.T) {
	got, err := auth.ParseScopes([]string{"maintenance:admin, maintenance:read", "maintenance:read"})
	if err != nil || strings.Join(got, " ") != "maintenance:read maintenance:admin" {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range [][]string{nil, {""}, {"maintenance:root"}, {"read"}, {"MAINTENANCE:READ"}} {
		if _, err := auth.ParseScopes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	d := auth.Digest("x")
	for name, toks := range map[string][]config.TokenConfig{
		"no name":        {{SHA256: d, Scopes: []string{api.ScopeRead}}},
		"bad name":       {{Name: "ops oncall", SHA256: d, Scopes: []string{api.ScopeRead}}},
		"short digest":   {{Name: "a", SHA256: d[:63], Scopes: []string{api.ScopeRead}}},
		"token as hash":  {{Name: "a", SHA256: "thm_" + d[:60], Scopes: []string{api.ScopeRead}}},
		"no scopes":      {{Name: "a", SHA256: d}},
		"unknown scope":  {{Name: "a", SHA256: d, Scopes: []string{"maintenance:everything"}}},
		"duplicate name": {{Name: "a", SHA256: d, Scopes: []string{api.ScopeRead}}, {Name: "a", SHA256: auth.Digest("y"), Scopes: []string{api.ScopeRead}}},
		"same digest":    {{Name: "a", SHA256: d, Scopes: []string{api.ScopeRead}}, {Name: "b", SHA256: strings.ToUpper(d), Scopes: []string{api.ScopeRead}}},
	} {
		if _, err := auth.New(config.AuthConfig{Tokens: toks}, quiet); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), d) {
			t.Errorf("%s: error repeats the digest: %v", name, err)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	cfg := config.AuthConfig{Tokens: []config.TokenConfig{
		{Name: "ops", SHA256: auth.Digest("tok-admin"), Scopes: []string{api.ScopeAdmin}},
		{Name: "ci", SHA256: strings.ToUpper(auth.Digest("tok-write")), Scopes: []string{"maintenance:read,maintenance:write"}},
	}}
	a, err := auth.New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for header, want := range map[string]string{
		"Bearer tok-admin":    "ops",
		"bearer tok-write":    "ci",
		"BEARER   tok-write ": "ci",
	} {
		id, err := a.Authenticate(header)
		if err != nil || id.Name != want {
			t.Errorf("%q: %+v %v", header, id, err)
		}
	}
	for header, want := range map[string]error{
		"":                                   auth.ErrNoToken,
		"tok-admin":                          auth.ErrMalformed,
		"Basic dG9rLWFkbWlu":                 auth.ErrMalformed,
		"Bearer ":                            auth.ErrMalformed,
		"Bearer tok admin":                   auth.ErrMalformed,
		"Bearer tök":                         auth.ErrMalformed,
		"Bearer tok-admin2":                  auth.ErrUnknownToken,
		"Bearer " + auth.Digest("tok-admin"): auth.ErrUnknownToken,
		"Bearer " + strings.Repeat("a", auth.MaxTokenLen+1): auth.ErrMalformed,
	} {
		if _, err := a.Authenticate(header); !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", header, err, want)
		}
	}
	if a.Anonymous() {
		t.Fatal("anonymous with tokens")
	}
	none, _ := auth.New(config.AuthConfig{}, quiet)
	if _, err := none.Authenticate("Bearer tok-admin"); !errors.Is(err, auth.ErrNoneConfigured) {
		t.Fatalf("no tokens: %v", err)
	}
	if _, err := none.Authenticate(""); !errors.Is(err, auth.ErrNoneConfigured) {
		t.Fatalf("no tokens, no header: %v", err)
	}
	dev, _ := auth.New(config.AuthConfig{}, auth.Options{AllowAnonymous: true, Logger: quiet.Logger})
	if id, err := dev.Authenticate(""); err != nil || id.Name != api.AnonymousPrincipal || !api.ScopeSatisfies(id.Scopes, api.ScopeAdmin) {
		t.Fatalf("dev: %+v %v", id, err)
	}
}

func TestMiddleware(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	a, err := auth.New(config.AuthConfig{Tokens: []config.TokenConfig{
		{Name: "ci", SHA256: auth.Digest("tok-write"), Scopes: []string{api.ScopeWrite}},
	}}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	run := func(scope, header string) (int, string, []string, http.Header) {
		var principal string
		var scopes []string
		e := gin.New()
		e.GET("/x", func(c *gin.Context) { c.Set("themis.scope", scope) }, a.Middleware(), func(c *gin.Context) {
			principal, scopes = api.Principal(c), api.Scopes(c)
			c.Status(http.StatusNoContent)
		})
		r := httptest.NewRequest(http.MethodGet, "/x", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		return w.Code, principal, scopes, w.Header()
	}
	if code, p, s, _ := run(api.ScopeRead, "Bearer tok-write"); code != 204 || p != "ci" || len(s) != 1 || s[0] != api.ScopeWrite {
		t.Fatalf("read with write: %d %q %v", code, p, s)
	}
	if code, _, _, _ := run(api.ScopeWrite, "Bearer tok-write"); code != 204 {
		t.Fatalf("write with write: %d", code)
	}
	if code, p, _, _ := run(api.ScopeAdmin, "Bearer tok-write"); code != 403 || p != "" {
		t.Fatalf("admin with write: %d %q", code, p)
	}
	if code, _, _, h := run(api.ScopeRead, "Bearer nope"); code != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("unknown: %d %v", code, h)
	}
	// An operation without a declared scope is refused (fail closed).
	if code, _, _, _ := run("", "Bearer tok-write"); code != 403 {
		t.Fatalf("no scope: %d", code)
	}
}

// The comparison visits every configured digest whatever the token.
func BenchmarkAuthenticate(b *testing.B) {
	var toks []config.TokenConfig
	for i := 0; i < 50; i++ {
		toks = append(toks, config.TokenConfig{Name: "t" + string(rune('a'+i%26)) + strings.Repeat("x", i), SHA256: auth.Digest(strings.Repeat("k", i+1)), Scopes: []string{api.ScopeRead}})
	}
	a, err := auth.New(config.AuthConfig{Tokens: toks}, quiet)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		_, _ = a.Authenticate("Bearer kkkk")
	}
}
