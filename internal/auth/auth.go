// Package auth authenticates API callers with bearer tokens (scopes: docs/ARCHITECTURE.md).
//
// Tokens are random strings made by NewToken ("thm_" + 43 characters of
// base64url, 256 bits). The configuration stores only their SHA-256 hex
// digests with a name and scopes:
//
//	auth:
//	  tokens:
//	    - name: ops-oncall
//	      sha256: "<64 hex digits>"   # themisctl token create prints this
//	      scopes: [maintenance:admin]
//
// A request carries "Authorization: Bearer <token>". The authenticator
// hashes the presented token and compares the digest with every configured
// digest in constant time (crypto/subtle), without stopping at a match, so
// neither the position of a token in the list nor a partial match shows in
// the timing. The caller's principal is the token's name; its scopes grant
// by the hierarchy maintenance:read ⊂ maintenance:write ⊂ maintenance:admin.
//
// Answers: 401 (problem code "unauthorized", WWW-Authenticate: Bearer) for a
// missing, malformed or unknown token; 403 ("forbidden") for a known token
// without the scope the operation needs (api.RequiredScope). The token
// itself never appears in an answer or a log line.
//
// With no token configured, every request is refused with 401 unless
// Options.AllowAnonymous is set (the dev server and tests set it): then
// every caller is "anonymous" with every scope. AllowAnonymous has no effect
// once a token is configured.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/internal/config"
)

// TokenPrefix starts every token NewToken makes (it lets secret scanners
// recognise leaked Themis tokens).
const TokenPrefix = "thm_"

// MaxTokenLen bounds the token a request may present; longer is malformed.
const MaxTokenLen = 512

// Scopes in increasing order of power.
var Scopes = []string{api.ScopeRead, api.ScopeWrite, api.ScopeAdmin}

// NewToken returns a new random token: TokenPrefix followed by 32 random
// bytes in unpadded base64url.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: read random bytes: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Digest returns the SHA-256 hex digest of token, as stored in the config.
func Digest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ParseScopes validates a list of scopes (comma-separated items are split;
// blanks ignored) and returns it without duplicates, in hierarchy order.
func ParseScopes(items []string) ([]string, error) {
	var out []string
	for _, item := range items {
		for _, s := range strings.Split(item, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if !api.ValidScope(s) {
				return nil, fmt.Errorf("unknown scope %q (want %s)", s, strings.Join(Scopes, ", "))
			}
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no scope given (want one or more of %s)", strings.Join(Scopes, ", "))
	}
	slices.SortFunc(out, func(a, b string) int { return slices.Index(Scopes, a) - slices.Index(Scopes, b) })
	return out, nil
}

// ValidName reports whether name can name a token: 1–64 characters out of
// letters, digits and . _ @ -. The name is the principal written into
// created_by, triggered_by and the audit log.
func ValidName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '@', r == '-':
		default:
			return false
		}
	}
	return true
}

// Options configure an Authenticator.
type Options struct {
	// AllowAnonymous lets every request through as "anonymous" with every
	// scope when no token is configured. Only the dev server and tests set
	// it; it is ignored when tokens are configured.
	AllowAnonymous bool
	// Logger receives a warning when authentication is disabled or refuses
	// everything. Optional: defaulted to slog.Default().
	Logger *slog.Logger
}

type entry struct {
	name   string
	digest [sha256.Size]byte
	scopes []string
}

// Authenticator checks bearer tokens against the configured digests.
type Authenticator struct {
	tokens    []entry
	anonymous bool
}

// New validates the configured tokens (name, 64-hex-digit digest, known
// scopes; names and digests unique) and returns their authenticator.
func New(cfg config.AuthConfig, opts Options) (*Authenticator, error) {
	a := &Authenticator{}
	names := map[string]bool{}
	digests := map[[sha256.Size]byte]bool{}
	for i, t := range cfg.Tokens {
		where := fmt.Sprintf("auth.tokens[%d]", i)
		if !ValidName(t.Name) {
			return nil, fmt.Errorf("%s: name %q must be 1–64 letters, digits or . _ @ -", where, clipName(t.Name))
		}
		where += " (" + t.Name + ")"
		if names[t.Name] {
			return nil, fmt.Errorf("%s: the name is used twice", where)
		}
		names[t.Name] = true
		raw, err := hex.DecodeString(strings.TrimSpace(t.SHA256))
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("%s: sha256 must be 64 hex digits (the SHA-256 of the token, not the token)", where)
		}
		var d [sha256.Size]byte
		copy(d[:], raw)
		if digests[d] {
			return nil, fmt.Errorf("%s: the same token digest is configured twice", where)
		}
		digests[d] = true
		scopes, err := ParseScopes(t.Scopes)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		a.tokens = append(a.tokens, entry{name: t.Name, digest: d, scopes: scopes})
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if len(a.tokens) == 0 {
		if opts.AllowAnonymous {
			a.anonymous = true
			log.Warn("API authentication is disabled: no tokens configured and anonymous access allowed (dev mode); every caller has every scope")
		} else {
			log.Warn("no API tokens are configured: every API request will be refused with 401; add auth.tokens to the config (themisctl token create)")
		}
	}
	return a, nil
}

// Anonymous reports whether the authenticator lets every request through.
func (a *Authenticator) Anonymous() bool { return a.anonymous }

// Errors of Authenticate; their texts are safe to show to the caller.
var (
	ErrNoToken        = errors.New("missing bearer token: send Authorization: Bearer <token>")
	ErrMalformed      = errors.New("malformed Authorization header: want Bearer <token>")
	ErrUnknownToken   = errors.New("invalid or unknown bearer token")
	ErrNoneConfigured = errors.New("no API tokens are configured on this server; every request is refused")
)

// Identity is an authenticated caller.
type Identity struct {
	// Name is the token's name: the principal.
	Name   string
	Scopes []string
}

// Authenticate checks an Authorization header value.
func (a *Authenticator) Authenticate(header string) (Identity, error) {
	if a.anonymous {
		return Identity{Name: api.AnonymousPrincipal, Scopes: []string{api.ScopeAdmin}}, nil
	}
	if strings.TrimSpace(header) == "" {
		if len(a.tokens) == 0 {
			return Identity{}, ErrNoneConfigured
		}
		return Identity{}, ErrNoToken
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > MaxTokenLen || !tokenChars(token) {
		return Identity{}, ErrMalformed
	}
	if len(a.tokens) == 0 {
		return Identity{}, ErrNoneConfigured
	}
	d := sha256.Sum256([]byte(token))
	match := -1
	for i := range a.tokens {
		// Every digest is compared; the index is chosen without a branch on
		// the secret comparison result.
		eq := subtle.ConstantTimeCompare(d[:], a.tokens[i].digest[:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return Identity{}, ErrUnknownToken
	}
	t := a.tokens[match]
	return Identity{Name: t.name, Scopes: slices.Clone(t.scopes)}, nil
}

// tokenChars accepts the token68 characters of RFC 7235 (and the rest of
// visible ASCII that some generators use), nothing else.
func tokenChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Middleware returns the gin handler for api.Options.Authenticator: it
// records the principal and scopes (api.SetPrincipal, api.SetScopes) and
// enforces the operation's scope (api.RequiredScope).
func (a *Authenticator) Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := a.Authenticate(c.GetHeader("Authorization"))
		if err != nil {
			api.AbortUnauthorized(c, err.Error())
			return
		}
		api.SetPrincipal(c, id.Name)
		api.SetScopes(c, id.Scopes)
		if want := api.RequiredScope(c); !api.ScopeSatisfies(id.Scopes, want) {
			api.AbortForbidden(c, fmt.Sprintf("token %q lacks the %s scope (it has %s)", id.Name, want, strings.Join(id.Scopes, ", ")))
			return
		}
		c.Next()
	}
}

func clipName(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
