package api

import (
	"errors"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"
)

// BasePath is the prefix of every maintenance endpoint.
const BasePath = "/api/v1/maintenance"

// Paths of the documents served beside the API.
const (
	OpenAPIYAMLPath = "/api/v1/openapi.yaml"
	OpenAPIJSONPath = "/api/v1/openapi.json"
	DocsPath        = "/docs"
	HealthzPath     = "/healthz"
	ReadyzPath      = "/readyz"
)

// DefaultMaxBodyBytes is the request body limit when Options leaves it unset.
const DefaultMaxBodyBytes int64 = 1 << 20

// Options configure the gateway. The zero value is usable.
type Options struct {
	// MaxBodyBytes bounds request bodies; larger ones are answered 413.
	// Optional: defaulted to DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64
	// Authenticator runs before the handler of every operation under
	// BasePath (not before /healthz, /readyz or the documents). It must call
	// SetPrincipal and c.Next(), or refuse the request with AbortUnauthorized
	// or AbortForbidden. RequiredScope tells which scope the operation needs.
	// Optional: defaulted to AnonymousAuthenticator (principal "anonymous").
	Authenticator gin.HandlerFunc
	// Logger receives one line per request and the causes of 5xx answers.
	// Optional: defaulted to slog.Default().
	Logger *slog.Logger
	// Version is the build version, reported by /healthz and filled into
	// /status when the service leaves it empty. Optional.
	Version string
	// ReadyTimeout bounds Service.Ready in /readyz.
	// Optional: defaulted to 2 seconds.
	ReadyTimeout time.Duration
}

type handler struct {
	svc  Service
	opts Options
	log  *slog.Logger
}

// New returns the gateway in front of svc. Unless GIN_MODE is set, it
// switches gin from debug to release mode (no route dump on stdout).
func New(svc Service, opts Options) http.Handler {
	if os.Getenv(gin.EnvGinMode) == "" && gin.Mode() == gin.DebugMode {
		gin.SetMode(gin.ReleaseMode)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Authenticator == nil {
		opts.Authenticator = AnonymousAuthenticator()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 2 * time.Second
	}
	h := &handler{svc: svc, opts: opts, log: opts.Logger}

	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	// Route on the escaped path so that an id such as "..%2Fetc" reaches the
	// id check (400) instead of falling through to "no such endpoint".
	e.UseRawPath = true
	e.UnescapePathValues = true
	e.ContextWithFallback = true

	e.Use(requestIDMiddleware(), accessLog(h.log), gin.CustomRecoveryWithWriter(nil, h.recovered))
	e.NoRoute(func(c *gin.Context) { abortWithError(c, errRouteNotFound(c.Request.URL.Path)) })
	e.NoMethod(func(c *gin.Context) { abortWithError(c, errMethodNotAllowed(c.Request.Method)) })

	e.GET(HealthzPath, h.healthz)
	e.GET(ReadyzPath, h.readyz)
	e.GET(OpenAPIYAMLPath, serveOpenAPIYAML)
	e.GET(OpenAPIJSONPath, serveOpenAPIJSON)
	e.GET(DocsPath, serveDocs)

	g := e.Group(BasePath)
	op := func(method, path, scope string, fn gin.HandlerFunc) {
		g.Handle(method, path, withScope(scope), opts.Authenticator, h.requirePrincipal, fn)
	}
	op(http.MethodGet, "/status", ScopeRead, h.status)

	op(http.MethodPost, "/schedules", ScopeWrite, h.createSchedule)
	op(http.MethodGet, "/schedules", ScopeRead, h.listSchedules)
	op(http.MethodGet, "/schedules/:id", ScopeRead, h.getSchedule)
	op(http.MethodPut, "/schedules/:id", ScopeWrite, h.replaceSchedule)
	op(http.MethodPatch, "/schedules/:id", ScopeWrite, h.patchSchedule)
	op(http.MethodDelete, "/schedules/:id", ScopeWrite, h.deleteSchedule)
	op(http.MethodPost, "/schedules/:id/run", ScopeWrite, h.runSchedule)

	op(http.MethodGet, "/jobs", ScopeRead, h.listJobs)
	op(http.MethodGet, "/jobs/:id", ScopeRead, h.getJob)
	op(http.MethodPost, "/jobs/:id/cancel", ScopeWrite, h.cancelJob)
	return e
}

// requirePrincipal refuses to run an operation for which the
// authenticator recorded no principal: writes must be attributable.
func (h *handler) requirePrincipal(c *gin.Context) {
	if Principal(c) == "" {
		abortWithError(c, errors.New("authenticator passed the request on without calling SetPrincipal"))
		return
	}
	c.Next()
}

// recovered answers a panic with a 500 problem; gin's recovery has already
// stopped the panic from killing the process.
func (h *handler) recovered(c *gin.Context, rec any) {
	h.log.LogAttrs(c.Request.Context(), slog.LevelError, "panic in handler",
		slog.String("request_id", RequestID(c)), slog.String("route", c.FullPath()), slog.Any("panic", rec))
	if c.Writer.Written() {
		c.Abort()
		return
	}
	writeProblem(c, Problem{Status: http.StatusInternalServerError, Code: CodeInternal,
		Detail: "internal error; see the server log for this request id"})
}
