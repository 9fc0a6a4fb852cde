package api

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// Scopes (docs/ARCHITECTURE.md, Security). Every operation under BasePath requires one of them;
// an authenticator reads it with RequiredScope. They are ordered:
// maintenance:read ⊂ maintenance:write ⊂ maintenance:admin, i.e. a token
// holding write may also read, one holding admin may do everything.
const (
	ScopeRead  = "maintenance:read"
	ScopeWrite = "maintenance:write"
	ScopeAdmin = "maintenance:admin"
)

// scopeRank orders the scopes; 0 is not a scope.
func scopeRank(s string) int {
	switch s {
	case ScopeRead:
		return 1
	case ScopeWrite:
		return 2
	case ScopeAdmin:
		return 3
	}
	return 0
}

// ValidScope reports whether s is one of the three scopes.
func ValidScope(s string) bool { return scopeRank(s) > 0 }

// ScopeSatisfies reports whether holding the scopes held grants want
// (read ⊂ write ⊂ admin). Unknown scopes grant nothing.
func ScopeSatisfies(held []string, want string) bool {
	w := scopeRank(want)
	if w == 0 {
		return false
	}
	for _, h := range held {
		if scopeRank(h) >= w {
			return true
		}
	}
	return false
}

// RequestIDHeader carries the request id on every request and response.
const RequestIDHeader = "X-Request-Id"

// AnonymousPrincipal is the principal of the default authenticator.
const AnonymousPrincipal = "anonymous"

const (
	keyRequestID = "themis.request_id"
	keyPrincipal = "themis.principal"
	keyScope     = "themis.scope"
	keyScopes    = "themis.scopes"
	keyLogger    = "themis.logger"
)

// SetPrincipal records the authenticated caller; handlers pass it to the
// service as created_by/updated_by/triggered_by.
func SetPrincipal(c *gin.Context, principal string) { c.Set(keyPrincipal, principal) }

// Principal returns the caller recorded by the authenticator, or "".
func Principal(c *gin.Context) string { return c.GetString(keyPrincipal) }

// SetScopes records the scopes the authenticated caller holds. Handlers
// consult them (HasScope) where one operation needs more than its route's
// scope, such as a forced run (admin). An authenticator that records none
// leaves the caller with no scope for such checks (they answer 403).
func SetScopes(c *gin.Context, scopes []string) { c.Set(keyScopes, slices.Clone(scopes)) }

// Scopes returns the scopes recorded by SetScopes.
func Scopes(c *gin.Context) []string {
	v, _ := c.Get(keyScopes)
	s, _ := v.([]string)
	return s
}

// HasScope reports whether the caller's scopes grant scope.
func HasScope(c *gin.Context, scope string) bool { return ScopeSatisfies(Scopes(c), scope) }

// RequiredScope returns the scope the matched operation requires
// (ScopeRead, ScopeWrite or ScopeAdmin), or "" outside BasePath.
func RequiredScope(c *gin.Context) string { return c.GetString(keyScope) }

// RequestID returns the id of the request (the client's X-Request-Id when
// sane, a generated one otherwise).
func RequestID(c *gin.Context) string { return c.GetString(keyRequestID) }

// AnonymousAuthenticator accepts every request as AnonymousPrincipal with
// every scope. It is the default of Options.Authenticator, meant for tests
// and embedding; production gateways use package auth, which refuses
// anonymous callers unless explicitly allowed.
func AnonymousAuthenticator() gin.HandlerFunc {
	return func(c *gin.Context) {
		SetPrincipal(c, AnonymousPrincipal)
		SetScopes(c, []string{ScopeAdmin})
		c.Next()
	}
}

// AbortUnauthorized refuses a request without valid credentials (401,
// code "unauthorized", WWW-Authenticate: Bearer).
func AbortUnauthorized(c *gin.Context, detail string) {
	c.Header("WWW-Authenticate", `Bearer realm="themis"`)
	writeProblem(c, Problem{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Detail: clip(detail, maxDetailLen)})
}

// AbortForbidden refuses a request whose principal lacks the scope (403,
// code "forbidden").
func AbortForbidden(c *gin.Context, detail string) {
	writeProblem(c, Problem{Status: http.StatusForbidden, Code: CodeForbidden, Detail: clip(detail, maxDetailLen)})
}

func withScope(scope string) gin.HandlerFunc {
	return func(c *gin.Context) { c.Set(keyScope, scope) }
}

// requestIDMiddleware adopts a sane client X-Request-Id or generates one, and
// sets it on the response before anything else can write.
func requestIDMiddleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(RequestIDHeader)
		if !saneRequestID(id) {
			id = newRequestID()
		}
		c.Set(keyRequestID, id)
		c.Header(RequestIDHeader, id)
		c.Next()
	}
}

// saneRequestID accepts 1–128 visible ASCII characters.
func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// accessLog writes one line per request; probes log at debug level.
func accessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Set(keyLogger, log)
		start := time.Now()
		c.Next()
		route := c.FullPath()
		lvl := slog.LevelInfo
		if route == HealthzPath || route == ReadyzPath {
			lvl = slog.LevelDebug
		}
		if route == "" {
			route = "-"
		}
		log.LogAttrs(c.Request.Context(), lvl, "http request",
			slog.String("request_id", RequestID(c)),
			slog.String("method", c.Request.Method),
			slog.String("route", route),
			slog.Int("status", c.Writer.Status()),
			slog.Int("bytes", c.Writer.Size()),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("principal", Principal(c)),
		)
	}
}

func loggerOf(c *gin.Context) *slog.Logger {
	if v, ok := c.Get(keyLogger); ok {
		if l, ok := v.(*slog.Logger); ok {
			return l
		}
	}
	return slog.Default()
}

// isJSONMediaType accepts application/json and any application/*+json type.
func isJSONMediaType(ct string) bool {
	mt := strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}
