package api_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/internal/auth"
	"github.com/themis-maintenance/themis/internal/config"
)

// Tokens of the authenticated environment.
const (
	adminToken  = "thm_admin-token-0123456789abcdefghijklmnopqrstuv"
	writeToken  = "thm_write-token-0123456789abcdefghijklmnopqrstuv"
	readToken   = "thm_read-token-0123456789abcdefghijklmnopqrstuvw"
	unknownTokn = "thm_unknown-token-0123456789abcdefghijklmnopqrs"
)

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// authEnv is an environment whose gateway uses package auth with an admin,
// a write and a read token, and logs to logBuf.
type authEnv struct {
	*env
	mu     sync.Mutex
	logBuf bytes.Buffer
}

func (a *authEnv) logs() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.logBuf.String()
}

func authConfig() config.AuthConfig {
	return config.AuthConfig{Tokens: []config.TokenConfig{
		{Name: "ops-admin", SHA256: auth.Digest(adminToken), Scopes: []string{api.ScopeAdmin}},
		{Name: "ci-writer", SHA256: auth.Digest(writeToken), Scopes: []string{api.ScopeWrite}},
		{Name: "dash-reader", SHA256: auth.Digest(readToken), Scopes: []string{api.ScopeRead}},
	}}
}

func newAuthEnv(t *testing.T, cfg config.AuthConfig, opts auth.Options) *authEnv {
	t.Helper()
	a := &authEnv{}
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &a.logBuf, mu: &a.mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Logger = logger
	authn, err := auth.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	a.env = newEnvWith(t, api.Options{Authenticator: authn.Middleware(), Logger: logger})
	return a
}

func TestBearerAuthentication(t *testing.T) {
	a := newAuthEnv(t, authConfig(), auth.Options{})
	a.seedNightly()
	sched := base + "/schedules"
	create := `{"name":"Auth test","tasks":["quota_check"]}`

	for name, hdr := range map[string][]string{
		"no header":       nil,
		"empty bearer":    {"Authorization", "Bearer "},
		"basic":           {"Authorization", "Basic dXNlcjpwYXNz"},
		"no scheme":       {"Authorization", readToken},
		"space in token":  {"Authorization", "Bearer abc def"},
		"unknown":         bearer(unknownTokn),
		"digest as token": bearer(auth.Digest(adminToken)),
		"too long":        bearer(strings.Repeat("x", 600)),
	} {
		r := a.req(http.MethodGet, sched, "", hdr...)
		p := r.problem(http.StatusUnauthorized, api.CodeUnauthorized)
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", name, r.Header.Get("WWW-Authenticate"))
		}
		if ev := a.lastEvent(); ev.Outcome != "denied" || ev.Status != 401 || ev.Action != "schedule.list" || ev.Principal != "" {
			t.Errorf("%s: audit %+v", name, ev)
		}
		_ = p
	}
	// Scheme is case-insensitive.
	a.req(http.MethodGet, sched, "", "Authorization", "bearer "+readToken).ok(http.StatusOK)

	// Read token: reads yes, writes no.
	a.req(http.MethodGet, sched, "", bearer(readToken)...).ok(http.StatusOK)
	p := a.req(http.MethodPost, sched, create, bearer(readToken)...).problem(http.StatusForbidden, api.CodeForbidden)
	if !strings.Contains(p.Detail, api.ScopeWrite) || !strings.Contains(p.Detail, "dash-reader") {
		t.Errorf("detail %q", p.Detail)
	}
	if ev := a.lastEvent(); ev.Outcome != "denied" || ev.Status != 403 || ev.Principal != "dash-reader" || ev.Action != "schedule.create" {
		t.Errorf("audit %+v", ev)
	}

	// Write token: writes and plain runs yes; forced runs, drills and the audit log no.
	s := a.req(http.MethodPost, sched, create, bearer(writeToken)...).ok(http.StatusCreated).schedule()
	if s.CreatedBy != "ci-writer" {
		t.Fatalf("created_by %q", s.CreatedBy)
	}
	a.req(http.MethodPost, sched+"/nightly/run", `{"force":true}`, bearer(writeToken)...).problem(http.StatusForbidden, api.CodeForbidden)
	if ev := a.lastEvent(); ev.Action != "schedule.run" || ev.Outcome != "denied" || ev.Principal != "ci-writer" || !strings.Contains(ev.Detail, "force=true") {
		t.Errorf("audit %+v", ev)
	}
	if a.fake.Counts().Runs != 0 {
		t.Fatal("a forced run by a write token reached the service")
	}
	j := a.req(http.MethodPost, sched+"/nightly/run", `{"force":false}`, bearer(writeToken)...).ok(http.StatusAccepted).job()
	if j.TriggeredBy != "ci-writer" || j.Forced {
		t.Fatalf("job %+v", j)
	}
	a.req(http.MethodPost, base+"/jobs/"+j.ID+"/cancel", "", bearer(writeToken)...).ok(http.StatusOK)
	a.req(http.MethodPost, base+"/drills", "", bearer(writeToken)...).problem(http.StatusForbidden, api.CodeForbidden)
	a.req(http.MethodGet, base+"/audit", "", bearer(writeToken)...).problem(http.StatusForbidden, api.CodeForbidden)

	// Admin token: everything.
	j = a.req(http.MethodPost, sched+"/nightly/run", `{"force":true}`, bearer(adminToken)...).ok(http.StatusAccepted).job()
	if !j.Forced || j.TriggeredBy != "ops-admin" {
		t.Fatalf("job %+v", j)
	}
	a.req(http.MethodPost, base+"/drills", "", bearer(adminToken)...).ok(http.StatusAccepted)
	a.req(http.MethodGet, base+"/audit", "", bearer(adminToken)...).ok(http.StatusOK)

	// Probes and documents need no token.
	a.req(http.MethodGet, "/healthz", "").ok(http.StatusOK)
	a.req(http.MethodGet, api.OpenAPIYAMLPath, "").ok(http.StatusOK)

	// No token (nor its digest) in any log line, answer or audit event.
	logs := a.logs()
	if !strings.Contains(logs, `"principal":"ci-writer"`) {
		t.Fatalf("access log lacks principals:\n%s", logs)
	}
	for _, tok := range []string{adminToken, writeToken, readToken, unknownTokn, auth.Digest(adminToken), "dXNlcjpwYXNz"} {
		if strings.Contains(logs, tok) {
			t.Errorf("log contains a token: %s", tok)
		}
		for _, ev := range a.events() {
			if strings.Contains(ev.Detail+ev.Principal+ev.Resource, tok) {
				t.Errorf("audit event contains a token: %+v", ev)
			}
		}
	}
}

func TestNoTokensConfigured(t *testing.T) {
	a := newAuthEnv(t, config.AuthConfig{}, auth.Options{})
	for _, rq := range [][2]string{{"GET", base + "/status"}, {"GET", base + "/schedules"}, {"GET", base + "/health"}} {
		p := a.req(rq[0], rq[1], "", bearer(adminToken)...).problem(http.StatusUnauthorized, api.CodeUnauthorized)
		if !strings.Contains(p.Detail, "no API tokens") {
			t.Errorf("detail %q", p.Detail)
		}
		a.req(rq[0], rq[1], "").problem(http.StatusUnauthorized, api.CodeUnauthorized)
	}
	if !strings.Contains(a.logs(), "every API request will be refused") {
		t.Errorf("no start-up warning:\n%s", a.logs())
	}

	dev := newAuthEnv(t, config.AuthConfig{}, auth.Options{AllowAnonymous: true})
	dev.seedNightly()
	j := dev.req(http.MethodPost, base+"/schedules/nightly/run", `{"force":true}`).ok(http.StatusAccepted).job()
	if j.TriggeredBy != api.AnonymousPrincipal || !j.Forced {
		t.Fatalf("%+v", j)
	}
	if !strings.Contains(dev.logs(), "authentication is disabled") {
		t.Errorf("no warning:\n%s", dev.logs())
	}
	// AllowAnonymous does nothing once tokens are configured.
	strict := newAuthEnv(t, authConfig(), auth.Options{AllowAnonymous: true})
	strict.req(http.MethodGet, base+"/schedules", "").problem(http.StatusUnauthorized, api.CodeUnauthorized)
}

// Every route checks the scope the document declares (x-required-scope).
func TestEveryRouteEnforcesItsScope(t *testing.T) {
	a := newAuthEnv(t, authConfig(), auth.Options{})
	for path, item := range apitest.NewValidator(t).Doc().Paths.Map() {
		for method, op := range item.Operations() {
			want, _ := op.Extensions["x-required-scope"].(string)
			if want == "" {
				continue
			}
			p := strings.ReplaceAll(path, "{id}", "x1")
			tokens := map[string]string{api.ScopeRead: readToken, api.ScopeWrite: writeToken, api.ScopeAdmin: adminToken}
			for _, s := range []string{api.ScopeRead, api.ScopeWrite, api.ScopeAdmin} {
				r := a.req(method, p, "", bearer(tokens[s])...)
				allowed := api.ScopeSatisfies([]string{s}, want)
				if got := r.Status == http.StatusForbidden; got == allowed {
					t.Errorf("%s %s with %s: status %d (required %s)", method, path, s, r.Status, want)
				}
			}
			a.req(method, p, "").problem(http.StatusUnauthorized, api.CodeUnauthorized)
		}
	}
	// Only POST /drills (admin, body optional) may have done something.
	if c := a.fake.Counts(); c.Writes()+c.Runs+c.Cancels+c.DrillDecisions+c.DrillAborts != 0 {
		t.Fatalf("bodiless probes changed something: %+v", c)
	}
}

// An admin-only task option (storage_compaction.full) set off its default
// needs the admin scope on every schedule write; at its default it does not.
func TestAdminOnlyTaskOptions(t *testing.T) {
	a := newAuthEnv(t, authConfig(), auth.Options{})
	sched := base + "/schedules"
	body := func(name, full string) string {
		return `{"name":"` + name + `","target":"orders","frequency":"daily","tasks":["storage_compaction"],"task_options":{"storage_compaction":{"full":` + full + `}}}`
	}
	p := a.req(http.MethodPost, sched, body("w-full", "true"), bearer(writeToken)...).problem(http.StatusForbidden, api.CodeForbidden)
	if !strings.Contains(p.Detail, "storage_compaction.full") || !strings.Contains(p.Detail, api.ScopeAdmin) {
		t.Errorf("detail %q", p.Detail)
	}
	a.req(http.MethodPost, sched, body("w-default", "false"), bearer(writeToken)...).ok(http.StatusCreated)
	a.req(http.MethodPost, sched, body("a-full", "true"), bearer(adminToken)...).ok(http.StatusCreated)
	a.req(http.MethodPut, sched+"/w-default", body("w-default", "true"), bearer(writeToken)...).problem(http.StatusForbidden, api.CodeForbidden)
	a.req(http.MethodPatch, sched+"/w-default", `{"task_options":{"storage_compaction":{"full":true}}}`, bearer(writeToken)...).problem(http.StatusForbidden, api.CodeForbidden)
	a.req(http.MethodPatch, sched+"/w-default", `{"task_options":{"storage_compaction":{"full":true}}}`, bearer(adminToken)...).ok(http.StatusOK)
}
