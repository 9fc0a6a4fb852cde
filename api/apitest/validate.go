package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/starter"
)

func init() {
	// The docs page is HTML; its response declares no schema, but kin-openapi
	// still wants a decoder for the media type.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
}

// Validator checks requests and responses against the gateway's OpenAPI
// document. Its rules:
//   - every response carries X-Request-Id;
//   - a request the document rejects (unknown route or method, bad
//     parameter, body off-schema) must be answered 4xx with a valid problem;
//   - every response of a documented operation must match the document,
//     status code included (undocumented statuses are errors);
//   - a problem's status and request_id equal the HTTP status and header.
type Validator struct {
	doc     *openapi3.T
	router  routers.Router
	problem *openapi3.Schema
}

// Exchange is one request and its response as the validator saw them.
type Exchange struct {
	Method, Path string
	Status       int
	// RequestErr is nil when the request conforms to the document.
	RequestErr error
	// ResponseErr is nil when the response obeys the rules above.
	ResponseErr error
}

// NewValidator loads and validates the embedded document.
func NewValidator(tb testing.TB) *Validator {
	tb.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPIYAML())
	if err != nil {
		tb.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		tb.Fatalf("openapi.yaml is not a valid OpenAPI 3 document: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		tb.Fatalf("openapi router: %v", err)
	}
	p := doc.Components.Schemas["Problem"]
	if p == nil || p.Value == nil {
		tb.Fatal("openapi.yaml has no Problem schema")
	}
	return &Validator{doc: doc, router: router, problem: p.Value}
}

// Doc returns the loaded document.
func (v *Validator) Doc() *openapi3.T { return v.doc }

// Check validates one exchange. req must carry the request as sent and
// reqBody its body (req.Body is replaced).
func (v *Validator) Check(req *http.Request, reqBody []byte, status int, header http.Header, respBody []byte) Exchange {
	ex := Exchange{Method: req.Method, Path: req.URL.RequestURI(), Status: status}
	ctx := context.Background()
	var errs []error
	if header.Get(api.RequestIDHeader) == "" {
		errs = append(errs, errors.New("response has no X-Request-Id"))
	}
	if ct := header.Get("Content-Type"); ct == api.ProblemContentType {
		errs = append(errs, v.checkProblem(status, header, respBody))
	}

	vreq := req.Clone(ctx)
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := v.router.FindRoute(vreq)
	if err == nil && !samePathShape(route.Path, vreq.URL.Path) {
		// kin-openapi's router forgives trailing slashes and empty segments;
		// the gateway does not, and neither does the document.
		err = fmt.Errorf("path %q does not have the shape of %q", vreq.URL.Path, route.Path)
	}
	if err != nil {
		ex.RequestErr = err
		if status < 400 || status > 499 {
			errs = append(errs, fmt.Errorf("request outside the document (%v) answered %d, want 4xx", err, status))
		}
		if header.Get("Content-Type") != api.ProblemContentType {
			errs = append(errs, fmt.Errorf("error answer has Content-Type %q", header.Get("Content-Type")))
		}
		ex.ResponseErr = errors.Join(errs...)
		return ex
	}
	in := &openapi3filter.RequestValidationInput{
		Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	ex.RequestErr = openapi3filter.ValidateRequest(ctx, in)
	if ex.RequestErr != nil && (status < 400 || status > 499) {
		errs = append(errs, fmt.Errorf("request rejected by the document (%v) answered %d, want 4xx", ex.RequestErr, status))
	}
	if ex.RequestErr != nil && route.Operation.Responses.Status(status) == nil {
		// A refused request may be refused before the operation is known
		// (e.g. 405, 404 for a bad route); the problem body was checked.
		ex.ResponseErr = errors.Join(errs...)
		return ex
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	out.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		errs = append(errs, fmt.Errorf("response does not match the document: %w", err))
	}
	ex.ResponseErr = errors.Join(errs...)
	return ex
}

// samePathShape reports whether path has as many segments as the template
// and the same literal segments, with every {param} segment non-empty.
func samePathShape(template, path string) bool {
	ts, ps := strings.Split(template, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i, t := range ts {
		if strings.HasPrefix(t, "{") {
			if ps[i] == "" {
				return false
			}
		} else if t != ps[i] {
			return false
		}
	}
	return true
}

func (v *Validator) checkProblem(status int, header http.Header, body []byte) error {
	var val any
	if err := json.Unmarshal(body, &val); err != nil {
		return fmt.Errorf("problem body is not JSON: %v", err)
	}
	if err := v.problem.VisitJSON(val, openapi3.VisitAsResponse()); err != nil {
		return fmt.Errorf("problem body does not match the Problem schema: %v", err)
	}
	var p api.Problem
	_ = json.Unmarshal(body, &p)
	if p.Status != status {
		return fmt.Errorf("problem status %d, HTTP status %d", p.Status, status)
	}
	if p.RequestID != header.Get(api.RequestIDHeader) {
		return fmt.Errorf("problem request_id %q, header %q", p.RequestID, header.Get(api.RequestIDHeader))
	}
	if status == http.StatusServiceUnavailable {
		if n, err := strconv.Atoi(header.Get("Retry-After")); err != nil || n < 1 {
			return errors.New("503 without a valid Retry-After")
		}
	}
	return nil
}

// Handler wraps next so that every exchange is validated; a violation is
// reported with tb.Errorf. Exchanges are recorded for Exchanges.
func (v *Validator) Handler(tb testing.TB, next http.Handler) *RecordingHandler {
	return &RecordingHandler{v: v, tb: tb, next: next}
}

// RecordingHandler is the validating wrapper made by Validator.Handler.
type RecordingHandler struct {
	v    *Validator
	tb   testing.TB
	next http.Handler
	mu   sync.Mutex
	seen []Exchange
}

// ServeHTTP serves the request through the wrapped handler and validates it.
func (h *RecordingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	h.next.ServeHTTP(rec, r)
	ex := h.v.Check(r, body, rec.Code, rec.Header(), rec.Body.Bytes())
	h.mu.Lock()
	h.seen = append(h.seen, ex)
	h.mu.Unlock()
	if ex.ResponseErr != nil {
		h.tb.Errorf("openapi: %s %s → %d: %v\nresponse body: %s", ex.Method, ex.Path, ex.Status, ex.ResponseErr, clip(rec.Body.Bytes()))
	}
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// Exchanges returns the exchanges validated so far.
func (h *RecordingHandler) Exchanges() []Exchange {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Exchange(nil), h.seen...)
}

// Last returns the most recent exchange.
func (h *RecordingHandler) Last() Exchange {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.seen) == 0 {
		return Exchange{}
	}
	return h.seen[len(h.seen)-1]
}

func clip(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

// Server is an httptest server running the real gateway over a Fake, with
// every exchange validated against the OpenAPI document.
type Server struct {
	*httptest.Server
	Fake    *Fake
	Handler *RecordingHandler
}

// NewServer starts the gateway over fake (a new Fake when nil) and closes
// it when the test ends. opts.Logger defaults to a discarding logger,
// opts.Version to starter.Version (as the daemon wires it); opts.Drills and
// opts.Info default to fake, opts.Audit to fake.AuditLog().
func NewServer(tb testing.TB, fake *Fake, opts api.Options) *Server {
	tb.Helper()
	if fake == nil {
		fake = NewFake()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Version == "" {
		opts.Version = starter.Version
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
	h := NewValidator(tb).Handler(tb, api.New(fake, opts))
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return &Server{Server: srv, Fake: fake, Handler: h}
}
