package api_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/audit"
)

const base = api.BasePath

// env is a gateway over a fake service with every exchange validated
// against the OpenAPI document.
type env struct {
	t    *testing.T
	fake *apitest.Fake
	h    *apitest.RecordingHandler
}

func newEnv(t *testing.T) *env { return newEnvWith(t, api.Options{}) }

// newEnvWith builds the gateway with opts; Drills and Info default to the
// fake, Audit to the fake's in-memory log.
func newEnvWith(t *testing.T, opts api.Options) *env {
	t.Helper()
	fake := apitest.NewFake()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Drills == nil {
		opts.Drills = fake
	}
	if opts.Info == nil {
		opts.Info = fake
	}
	if opts.Audit == nil {
		opts.Audit = fake.AuditLog()
	}
	if opts.Denials == (api.DenialLimit{}) {
		// Tests send many refused requests from one address and check each
		// one's audit event; denials.go's own tests use the defaults.
		opts.Denials = api.DenialLimit{PerMinute: 1e9, Burst: 1e9, AuditEach: 1e9}
	}
	return &env{t: t, fake: fake, h: apitest.NewValidator(t).Handler(t, api.New(fake, opts))}
}

// events returns the audit events recorded so far.
func (e *env) events() []audit.Event { return e.fake.AuditLog().Events() }

// lastEvent returns the newest audit event.
func (e *env) lastEvent() audit.Event {
	e.t.Helper()
	ev := e.events()
	if len(ev) == 0 {
		e.t.Fatal("no audit event")
	}
	return ev[len(ev)-1]
}

func (r *response) drill() domain.Drill {
	r.t.Helper()
	var d domain.Drill
	r.decode(&d)
	return d
}

type response struct {
	t      *testing.T
	Status int
	Header http.Header
	Body   []byte
	Ex     apitest.Exchange
}

// req is one request: a raw body ("" = none), Content-Type defaulting to
// application/json when there is a body, and extra headers as name, value.
func (e *env) req(method, path, body string, headers ...string) *response {
	e.t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, path, nil)
	} else {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			r.Header.Del(headers[i])
			continue
		}
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return &response{t: e.t, Status: w.Code, Header: w.Header(), Body: w.Body.Bytes(), Ex: e.h.Last()}
}

// ok asserts the status and that the request conformed to the document.
func (r *response) ok(status int) *response {
	r.t.Helper()
	if r.Status != status {
		r.t.Fatalf("%s %s: status %d, want %d; body %s", r.Ex.Method, r.Ex.Path, r.Status, status, r.Body)
	}
	if r.Ex.RequestErr != nil {
		r.t.Fatalf("%s %s: the request does not conform to the document: %v", r.Ex.Method, r.Ex.Path, r.Ex.RequestErr)
	}
	return r
}

// problem asserts an error answer and returns its body.
func (r *response) problem(status int, code string) api.Problem {
	r.t.Helper()
	if r.Status != status {
		r.t.Fatalf("%s %s: status %d, want %d; body %s", r.Ex.Method, r.Ex.Path, r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != api.ProblemContentType {
		r.t.Fatalf("Content-Type %q, want %q", ct, api.ProblemContentType)
	}
	var p api.Problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		r.t.Fatalf("problem body: %v: %s", err, r.Body)
	}
	if p.Code != code {
		r.t.Fatalf("%s %s: code %q, want %q (detail %q)", r.Ex.Method, r.Ex.Path, p.Code, code, p.Detail)
	}
	return p
}

func (r *response) decode(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		r.t.Fatalf("decode %s: %v", r.Body, err)
	}
}

func (r *response) schedule() domain.Schedule {
	r.t.Helper()
	var s domain.Schedule
	r.decode(&s)
	return s
}

func (r *response) job() domain.Job {
	r.t.Helper()
	var j domain.Job
	r.decode(&j)
	return j
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// seedDaily stores a valid enabled schedule "Nightly" with id "nightly".
func (e *env) seedNightly() domain.Schedule {
	spec := domain.NewScheduleSpec("orders")
	spec.Name = "Nightly"
	spec.Tasks = []domain.TaskType{domain.TaskMetricsCollection, domain.TaskQuotaCheck}
	if err := spec.Normalize(nil); err != nil {
		e.t.Fatal(err)
	}
	return e.fake.Seed("nightly", spec)
}
