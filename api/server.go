package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/themis-maintenance/themis/internal/audit"
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

// Options configure the gateway. The zero value is usable (for tests): no
// drills, no catalogue, no audit log, every caller anonymous.
//
// The daemon wires the real services like this (package starter implements
// Service, DrillService and InfoService; packages auth and audit provide
// the authenticator and the log):
//
//	authn, err := auth.New(cfg.Auth, auth.Options{AllowAnonymous: devMode, Logger: logger})
//	alog, err := audit.Open(cfg.API.AuditLog)
//	h := api.New(svc, api.Options{
//		Drills: svc, Info: svc, Audit: alog,
//		Authenticator: authn.Middleware(),
//		MaxBodyBytes: cfg.API.MaxBodyBytes, Logger: logger, Version: starter.Version,
//	})
type Options struct {
	// Drills serves /drills. Optional: when nil, the drill endpoints
	// answer 503 (code unavailable).
	Drills DrillService
	// Commands serves GET /commands (the command log). Optional: when nil,
	// it answers 503 (code unavailable).
	Commands CommandService
	// Info serves /health, /task-types and /targets. Optional: when nil,
	// those endpoints answer 503 (code unavailable).
	Info InfoService
	// Audit receives one event per write (create, update, patch,
	// enable/disable, delete, run, cancel, drill start/approve/reject/abort,
	// audit read) and per denied request (401/403), and serves GET /audit.
	// *audit.Log implements it. Optional: when nil nothing is audited and
	// GET /audit answers 503. See audit.go in this package for what happens
	// when a write cannot be audited.
	Audit AuditLog
	// MaxBodyBytes bounds request bodies; larger ones are answered 413.
	// Optional: defaulted to DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64
	// Authenticator runs before the handler of every operation under
	// BasePath (not before /healthz, /readyz or the documents). It must call
	// SetPrincipal (and SetScopes, for requests whose scope depends on the
	// body, such as forced runs) and c.Next(), or refuse the request with
	// AbortUnauthorized or AbortForbidden. RequiredScope tells which scope
	// the operation needs. Optional: defaulted to AnonymousAuthenticator
	// (principal "anonymous", every scope) — production gateways must set
	// it (package auth).
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
	// Denials rate-limits refused requests (401/403) per client address
	// and aggregates them in the audit log (see denials.go). Optional:
	// every field has a default.
	Denials DenialLimit
}

type handler struct {
	svc      Service
	drills   DrillService
	commands CommandService
	info     InfoService
	opts     Options
	log      *slog.Logger
	audit    auditState
	// denials counts refused requests per client address.
	denials *denials
	// lists caches encoded list answers per read-model revision.
	lists listCache
}

// operation describes one endpoint under BasePath for the authenticator
// (scope) and the audit log (action, resource kind).
type operation struct {
	scope string
	// action names the operation in the audit log, e.g. schedule.create.
	action string
	// kind names the resource of an {id} route ("schedule" → schedule/<id>);
	// collection names the resource of the others.
	kind, collection string
	// audited operations are written to the audit log whatever their
	// outcome; every operation is audited when it is denied (401/403).
	audited bool
	// write operations change state: they are refused (503) while the
	// audit log cannot be written.
	write bool
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
	h := &handler{svc: svc, drills: opts.Drills, commands: opts.Commands, info: opts.Info, opts: opts, log: opts.Logger}
	h.denials = newDenials(opts.Denials, h.writeDenialSummary)

	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	// Route on the escaped path so that an id such as "..%2Fetc" reaches the
	// id check (400) instead of falling through to "no such endpoint".
	e.UseRawPath = true
	e.UnescapePathValues = true
	e.ContextWithFallback = true
	// The client address (denial budgets, logs) is the connection's: no
	// forwarding header is trusted.
	if err := e.SetTrustedProxies(nil); err != nil {
		panic(err)
	}

	e.Use(requestIDMiddleware(), accessLog(h.log), gin.CustomRecoveryWithWriter(nil, h.recovered))
	e.NoRoute(func(c *gin.Context) { abortWithError(c, errRouteNotFound(c.Request.URL.Path)) })
	e.NoMethod(func(c *gin.Context) { abortWithError(c, errMethodNotAllowed(c.Request.Method)) })

	e.GET(HealthzPath, h.healthz)
	e.GET(ReadyzPath, h.readyz)
	e.GET(OpenAPIYAMLPath, serveOpenAPIYAML)
	e.GET(OpenAPIJSONPath, serveOpenAPIJSON)
	e.GET(DocsPath, serveDocs)

	g := e.Group(BasePath)
	handle := func(method, path string, o operation, fn gin.HandlerFunc) {
		g.Handle(method, path, h.begin(o), opts.Authenticator, h.requirePrincipal, h.auditGate(o), fn)
	}
	read := func(path, action, kind, collection string, fn gin.HandlerFunc) {
		handle(http.MethodGet, path, operation{scope: ScopeRead, action: action, kind: kind, collection: collection}, fn)
	}
	write := func(method, path, scope, action, kind, collection string, fn gin.HandlerFunc) {
		handle(method, path, operation{scope: scope, action: action, kind: kind, collection: collection, audited: true, write: true}, fn)
	}

	read("/status", "status.get", "", "status", h.status)
	read("/health", "health.get", "", "health", h.health)
	read("/task-types", "task_types.list", "", "task-types", h.taskTypes)
	read("/targets", "targets.list", "", "targets", h.targets)
	read("/targets/:name/drills", "target.drill_trend", "", "drills", h.drillTrend)
	read("/targets/:name/throttle", "target.throttle_get", "", "throttle", h.getThrottle)
	write(http.MethodPost, "/targets/:name/throttle", ScopeWrite, "target.throttle_set", "", "throttle", h.setThrottle)
	write(http.MethodDelete, "/targets/:name/throttle", ScopeWrite, "target.throttle_clear", "", "throttle", h.clearThrottle)

	write(http.MethodPost, "/schedules", ScopeWrite, "schedule.create", "", "schedules", h.createSchedule)
	read("/schedules", "schedule.list", "", "schedules", h.listSchedules)
	read("/schedules/:id", "schedule.get", "schedule", "", h.getSchedule)
	write(http.MethodPut, "/schedules/:id", ScopeWrite, "schedule.update", "schedule", "", h.replaceSchedule)
	write(http.MethodPatch, "/schedules/:id", ScopeWrite, "schedule.patch", "schedule", "", h.patchSchedule)
	write(http.MethodDelete, "/schedules/:id", ScopeWrite, "schedule.delete", "schedule", "", h.deleteSchedule)
	write(http.MethodPost, "/schedules/:id/run", ScopeWrite, "schedule.run", "schedule", "", h.runSchedule)

	read("/jobs", "job.list", "", "jobs", h.listJobs)
	read("/jobs/:id", "job.get", "job", "", h.getJob)
	read("/commands", "command.list", "", "commands", h.listCommands)
	write(http.MethodPost, "/jobs/:id/cancel", ScopeWrite, "job.cancel", "job", "", h.cancelJob)

	write(http.MethodPost, "/drills", ScopeAdmin, "drill.start", "", "drills", h.startDrill)
	read("/drills", "drill.list", "", "drills", h.listDrills)
	read("/drills/:id", "drill.get", "drill", "", h.getDrill)
	write(http.MethodPost, "/drills/:id/approve", ScopeAdmin, "drill.approve", "drill", "", h.approveDrill)
	write(http.MethodPost, "/drills/:id/reject", ScopeAdmin, "drill.reject", "drill", "", h.rejectDrill)
	write(http.MethodPost, "/drills/:id/abort", ScopeAdmin, "drill.abort", "drill", "", h.abortDrill)

	// Reading the audit log is itself audited (but not refused while the
	// log cannot be written: it changes nothing).
	handle(http.MethodGet, "/audit", operation{scope: ScopeAdmin, action: "audit.read", collection: "audit", audited: true}, h.readAudit)
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
		slog.String("request_id", RequestID(c)), slog.String("route", c.FullPath()), slog.String("panic", audit.Sanitize(fmt.Sprint(rec))))
	if c.Writer.Written() {
		c.Abort()
		return
	}
	writeProblem(c, Problem{Status: http.StatusInternalServerError, Code: CodeInternal,
		Detail: "internal error; see the server log for this request id"})
}
