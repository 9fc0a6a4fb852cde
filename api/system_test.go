package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"html"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
)

func TestHealthz(t *testing.T) {
	e := newEnvWith(t, api.Options{Version: "1.2.3"})
	e.fake.FailWith(apitest.MethodReady, errors.New("down")) // liveness does not care
	var h api.Health
	e.req(http.MethodGet, "/healthz", "").ok(http.StatusOK).decode(&h)
	if h.Status != "ok" || h.Version != "1.2.3" {
		t.Fatalf("healthz %+v", h)
	}
}

func TestReadyz(t *testing.T) {
	e := newEnv(t)
	var h api.Health
	e.req(http.MethodGet, "/readyz", "").ok(http.StatusOK).decode(&h)
	if h.Status != "ready" {
		t.Fatalf("readyz %+v", h)
	}
	e.fake.FailWith(apitest.MethodReady, errors.New("connection refused to secret-host"))
	r := e.req(http.MethodGet, "/readyz", "")
	r.problem(http.StatusServiceUnavailable, api.CodeUnavailable)
	if r.Header.Get("Retry-After") == "" || strings.Contains(string(r.Body), "secret-host") {
		t.Fatalf("503 %v %s", r.Header, r.Body)
	}
}

func TestStatus(t *testing.T) {
	e := newEnvWith(t, api.Options{Version: "9.9.9"})
	e.fake.SeedDefaults()
	var st api.Status
	e.req(http.MethodGet, base+"/status", "").ok(http.StatusOK).decode(&st)
	if st.Version != "9.9.9" || st.Schedules != 4 || st.EnabledSchedules != 0 || st.DefaultTarget != "orders" {
		t.Fatalf("status %+v", st)
	}
	e.fake.FailWith(apitest.MethodStatus, errors.New("boom with dsn=postgres://u:pw@h/db"))
	r := e.req(http.MethodGet, base+"/status", "")
	r.problem(http.StatusInternalServerError, api.CodeInternal)
	if strings.Contains(string(r.Body), "pw@") {
		t.Fatalf("500 leaks: %s", r.Body)
	}
}

func TestInternalErrorsAreLogged(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &buf, mu: &mu}, nil))
	e := newEnvWith(t, api.Options{Logger: logger})
	e.fake.FailWith(apitest.MethodListSchedules, errors.New("kaboom"))
	r := e.req(http.MethodGet, base+"/schedules", "", api.RequestIDHeader, "trace-me-42")
	r.problem(http.StatusInternalServerError, api.CodeInternal)
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(buf.String(), "kaboom") || !strings.Contains(buf.String(), "trace-me-42") {
		t.Fatalf("log lacks the cause or the request id: %s", buf.String())
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestRequestID(t *testing.T) {
	e := newEnv(t)
	r := e.req(http.MethodGet, "/healthz", "", api.RequestIDHeader, "abc-123")
	if got := r.Header.Get(api.RequestIDHeader); got != "abc-123" {
		t.Fatalf("echo %q", got)
	}
	for _, bad := range []string{strings.Repeat("x", 129), "has space", "tab\there", "ünï"} {
		r := e.req(http.MethodGet, "/healthz", "", api.RequestIDHeader, bad)
		got := r.Header.Get(api.RequestIDHeader)
		if got == bad || len(got) != 32 {
			t.Errorf("insane id %q answered with %q", bad, got)
		}
	}
	a := e.req(http.MethodGet, "/healthz", "").Header.Get(api.RequestIDHeader)
	b := e.req(http.MethodGet, "/healthz", "").Header.Get(api.RequestIDHeader)
	if a == "" || a == b {
		t.Fatalf("generated ids %q %q", a, b)
	}
	p := e.req(http.MethodGet, base+"/schedules/nope", "", api.RequestIDHeader, "rid-7").problem(http.StatusNotFound, api.CodeNotFound)
	if p.RequestID != "rid-7" {
		t.Fatalf("problem request_id %q", p.RequestID)
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	e := newEnv(t)
	e.req(http.MethodGet, base+"/nope", "").problem(http.StatusNotFound, api.CodeNotFound)
	e.req(http.MethodGet, base+"/schedules/", "").problem(http.StatusNotFound, api.CodeNotFound)
	r := e.req(http.MethodDelete, base+"/jobs", "")
	r.problem(http.StatusMethodNotAllowed, api.CodeMethodNotAllowed)
	if r.Header.Get("Allow") != "GET" {
		t.Errorf("Allow %q", r.Header.Get("Allow"))
	}
	e.req(http.MethodPut, base+"/schedules", `{}`).problem(http.StatusMethodNotAllowed, api.CodeMethodNotAllowed)
}

func TestPanicAnswersProblem(t *testing.T) {
	fake := apitest.NewFake()
	h := apitest.NewValidator(t).Handler(t, api.New(panicService{fake}, api.Options{Logger: slog.New(slog.DiscardHandler)}))
	e := &env{t: t, fake: fake, h: h}
	e.req(http.MethodGet, base+"/schedules", "").problem(http.StatusInternalServerError, api.CodeInternal)
	// The server goes on serving.
	e.req(http.MethodGet, "/healthz", "").ok(http.StatusOK)
}

// panicService panics in ListSchedules.
type panicService struct{ *apitest.Fake }

func (panicService) ListSchedules(context.Context) (api.ScheduleList, error) { panic("boom") }

func TestAuthenticatorSlot(t *testing.T) {
	var mu sync.Mutex
	scopes := map[string]string{}
	auth := func(c *gin.Context) {
		mu.Lock()
		scopes[c.Request.Method+" "+c.FullPath()] = api.RequiredScope(c)
		mu.Unlock()
		switch c.GetHeader("Authorization") {
		case "Bearer good":
			api.SetPrincipal(c, "ops-oncall")
			c.Next()
		case "Bearer weak":
			api.AbortForbidden(c, "token lacks "+api.RequiredScope(c))
		default:
			api.AbortUnauthorized(c, "missing or bad bearer token")
		}
	}
	e := newEnvWith(t, api.Options{Authenticator: auth})
	r := e.req(http.MethodGet, base+"/schedules", "")
	r.problem(http.StatusUnauthorized, api.CodeUnauthorized)
	if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
	}
	p := e.req(http.MethodPost, base+"/schedules", `{"name":"A","tasks":["quota_check"]}`, "Authorization", "Bearer weak").problem(http.StatusForbidden, api.CodeForbidden)
	if !strings.Contains(p.Detail, api.ScopeWrite) {
		t.Errorf("detail %q", p.Detail)
	}
	s := e.req(http.MethodPost, base+"/schedules", `{"name":"A","tasks":["quota_check"]}`, "Authorization", "Bearer good").ok(http.StatusCreated).schedule()
	if s.CreatedBy != "ops-oncall" || e.fake.LastPrincipal() != "ops-oncall" {
		t.Fatalf("principal %q / %q", s.CreatedBy, e.fake.LastPrincipal())
	}
	// Probes and documents bypass the authenticator.
	e.req(http.MethodGet, "/healthz", "").ok(http.StatusOK)
	e.req(http.MethodGet, "/readyz", "").ok(http.StatusOK)
	e.req(http.MethodGet, api.OpenAPIJSONPath, "").ok(http.StatusOK)
	mu.Lock()
	defer mu.Unlock()
	if scopes["GET "+base+"/schedules"] != api.ScopeRead || scopes["POST "+base+"/schedules"] != api.ScopeWrite {
		t.Fatalf("scopes %v", scopes)
	}
}

func TestOpenAPIDocuments(t *testing.T) {
	e := newEnv(t)
	y := e.req(http.MethodGet, api.OpenAPIYAMLPath, "").ok(http.StatusOK)
	if !bytes.Equal(y.Body, api.OpenAPIYAML()) || !strings.HasPrefix(y.Header.Get("Content-Type"), "application/yaml") {
		t.Fatal("yaml document differs from the embedded one")
	}
	j := e.req(http.MethodGet, api.OpenAPIJSONPath, "").ok(http.StatusOK)
	var doc map[string]any
	if err := json.Unmarshal(j.Body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.0.3" {
		t.Fatalf("openapi %v", doc["openapi"])
	}
	paths, _ := doc["paths"].(map[string]any)
	if _, ok := paths[base+"/schedules/{id}/run"]; !ok {
		t.Fatalf("paths %v", paths)
	}
}

func TestDocsPage(t *testing.T) {
	e := newEnv(t)
	r := e.req(http.MethodGet, api.DocsPath, "").ok(http.StatusOK)
	page := html.UnescapeString(string(r.Body))
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("content type %q", r.Header.Get("Content-Type"))
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Error("docs page loads something from outside")
	}
	v := apitest.NewValidator(t)
	for path, item := range v.Doc().Paths.Map() {
		for method, op := range item.Operations() {
			if !strings.Contains(page, `id="op-`+op.OperationID+`"`) || !strings.Contains(page, path) {
				t.Errorf("docs page lacks %s %s", method, path)
			}
		}
	}
	for name := range v.Doc().Components.Schemas {
		if !strings.Contains(page, `id="schema-`+name+`"`) {
			t.Errorf("docs page lacks schema %s", name)
		}
	}
	for _, want := range []string{"mvcc_cleanup", "parallelism", "window_start_hour", "application/problem+json", "next_page_token"} {
		if !strings.Contains(page, want) {
			t.Errorf("docs page lacks %q", want)
		}
	}
}

func TestWriteDoesNotLeakToOtherSchedules(t *testing.T) {
	// Guard against handlers sharing decoded maps between requests.
	e := newEnv(t)
	a := e.req(http.MethodPost, base+"/schedules", `{"name":"A","tasks":["mvcc_cleanup"],"task_options":{"mvcc_cleanup":{"parallelism":2}}}`).ok(http.StatusCreated).schedule()
	b := e.req(http.MethodPost, base+"/schedules", `{"name":"B","tasks":["mvcc_cleanup"]}`).ok(http.StatusCreated).schedule()
	if len(b.TaskOptions) != 0 || len(a.TaskOptions) != 1 {
		t.Fatalf("options leaked: a=%v b=%v", a.TaskOptions, b.TaskOptions)
	}
	if _, ok := e.fake.Schedule(b.ID); !ok {
		t.Fatal("b not stored")
	}
}

func TestAuthenticatorWithoutPrincipalIsRefused(t *testing.T) {
	e := newEnvWith(t, api.Options{Authenticator: func(c *gin.Context) { c.Next() }})
	e.req(http.MethodPost, base+"/schedules", `{"name":"A","tasks":["quota_check"]}`).problem(http.StatusInternalServerError, api.CodeInternal)
	if e.fake.Counts().Creates != 0 {
		t.Fatal("an unattributed write reached the service")
	}
}
