package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/audit"
)

// This file is the one place where errors become HTTP statuses and
// problem+json bodies (RFC 9457).

// ProblemContentType is the media type of every error response.
const ProblemContentType = "application/problem+json"

// Stable problem codes. Clients branch on these, never on titles or details.
const (
	CodeInvalidJSON          = "invalid_json"
	CodeValidationFailed     = "validation_failed"
	CodeUnknownField         = "unknown_field"
	CodeInvalidParameter     = "invalid_parameter"
	CodeInvalidID            = "invalid_id"
	CodeNotFound             = "not_found"
	CodeConflict             = "conflict"
	CodeUnauthorized         = "unauthorized"
	CodeForbidden            = "forbidden"
	CodeUnavailable          = "unavailable"
	CodeBodyTooLarge         = "body_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeInternal             = "internal"
	// CodeWriteUnconfirmed (503): the write was sent to Temporal but not
	// seen stored within the bound; it may still apply. Read the resource
	// to see what is stored.
	CodeWriteUnconfirmed = "write_unconfirmed"
)

// RetryAfterSeconds is the Retry-After value sent with 503 answers.
const RetryAfterSeconds = 5

// maxDetailLen bounds the detail text taken from an error.
const maxDetailLen = 1000

// Problem is the body of an error response.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Code      string `json:"code"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id"`
	// ActiveJobID names the active job that made a run request conflict.
	ActiveJobID string `json:"active_job_id,omitempty"`
}

// requestError is an error the gateway itself found in a request (bad JSON,
// unknown field, bad parameter, body limits); it carries its own status.
type requestError struct {
	status int
	code   string
	field  string
	detail string
}

func (e *requestError) Error() string { return e.detail }

func badRequest(code, field, format string, args ...any) error {
	return &requestError{status: http.StatusBadRequest, code: code, field: field, detail: sprintf(format, args...)}
}

func errBodyTooLarge(limit int64) error {
	return &requestError{status: http.StatusRequestEntityTooLarge, code: CodeBodyTooLarge,
		detail: "request body exceeds " + strconv.FormatInt(limit, 10) + " bytes"}
}

func errUnsupportedMediaType(got string) error {
	if got == "" {
		got = "none"
	}
	return &requestError{status: http.StatusUnsupportedMediaType, code: CodeUnsupportedMediaType,
		detail: "Content-Type must be application/json, got " + clip(got, 100)}
}

func errInvalidID(field, id string) error {
	return &requestError{status: http.StatusBadRequest, code: CodeInvalidID, field: field,
		detail: "malformed id " + strconv.Quote(clip(id, 140))}
}

func errRouteNotFound(path string) error {
	return &requestError{status: http.StatusNotFound, code: CodeNotFound,
		detail: "no such endpoint: " + clip(path, 200)}
}

func errMethodNotAllowed(method string) error {
	return &requestError{status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed,
		detail: "method " + clip(method, 20) + " is not allowed on this endpoint"}
}

// errNotConfigured is the 503 of an endpoint whose service the gateway was
// built without (Options.Drills, Options.Info, Options.Audit).
func errNotConfigured(detail string) error {
	return &requestError{status: http.StatusServiceUnavailable, code: CodeUnavailable, detail: detail}
}

var titles = map[int]string{
	http.StatusBadRequest:            "Bad Request",
	http.StatusUnauthorized:          "Unauthorized",
	http.StatusForbidden:             "Forbidden",
	http.StatusNotFound:              "Not Found",
	http.StatusMethodNotAllowed:      "Method Not Allowed",
	http.StatusConflict:              "Conflict",
	http.StatusRequestEntityTooLarge: "Content Too Large",
	http.StatusUnsupportedMediaType:  "Unsupported Media Type",
	http.StatusTooManyRequests:       "Too Many Requests",
	http.StatusInternalServerError:   "Internal Server Error",
	http.StatusServiceUnavailable:    "Service Unavailable",
}

// problemFor maps err onto a problem. Errors of unknown kind become a 500
// whose detail reveals nothing of the error text (it is logged instead).
func problemFor(err error) Problem {
	var (
		re     *requestError
		ve     *domain.ValidationError
		active *domain.ActiveJobError
	)
	switch {
	case errors.As(err, &re):
		return Problem{Status: re.status, Code: re.code, Field: re.field, Detail: re.detail}
	case errors.As(err, &ve):
		return Problem{Status: http.StatusBadRequest, Code: CodeValidationFailed, Field: ve.Field, Detail: clip(ve.Error(), maxDetailLen)}
	case errors.As(err, &active):
		return Problem{Status: http.StatusConflict, Code: CodeConflict, Detail: clip(active.Error(), maxDetailLen), ActiveJobID: active.JobID}
	case errors.Is(err, domain.ErrUnconfirmed):
		return Problem{Status: http.StatusServiceUnavailable, Code: CodeWriteUnconfirmed, Detail: clip(err.Error(), maxDetailLen)}
	case errors.Is(err, domain.ErrNotFound):
		return Problem{Status: http.StatusNotFound, Code: CodeNotFound, Detail: clip(err.Error(), maxDetailLen)}
	case errors.Is(err, domain.ErrConflict):
		return Problem{Status: http.StatusConflict, Code: CodeConflict, Detail: clip(err.Error(), maxDetailLen)}
	case errors.Is(err, domain.ErrForbidden):
		return Problem{Status: http.StatusForbidden, Code: CodeForbidden, Detail: clip(err.Error(), maxDetailLen)}
	case errors.Is(err, domain.ErrUnavailable):
		// The wrapped text may name addresses or carry transport details.
		return Problem{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Detail: "the orchestrator backend (Temporal) is unavailable; retry later"}
	}
	return Problem{Status: http.StatusInternalServerError, Code: CodeInternal,
		Detail: "internal error; see the server log for this request id"}
}

// abortWithError renders err as problem+json and stops the handler chain.
func abortWithError(c *gin.Context, err error) {
	p := problemFor(err)
	if p.Status >= 500 {
		lvl := slog.LevelError
		if p.Status == http.StatusServiceUnavailable {
			lvl = slog.LevelWarn
		}
		loggerOf(c).LogAttrs(c.Request.Context(), lvl, "request failed",
			slog.String("request_id", RequestID(c)), slog.String("method", c.Request.Method),
			slog.String("route", c.FullPath()), slog.Int("status", p.Status), slog.String("error", audit.Sanitize(err.Error())))
	}
	writeProblem(c, p)
}

// writeProblem writes p, filling type, title and request id.
func writeProblem(c *gin.Context, p Problem) {
	if p.Status == http.StatusUnauthorized || p.Status == http.StatusForbidden {
		p = overDenialBudget(c, p)
	}
	p.Type = "urn:themis:problem:" + p.Code
	if p.Title == "" {
		p.Title = titles[p.Status]
		if p.Title == "" {
			p.Title = http.StatusText(p.Status)
		}
	}
	p.RequestID = RequestID(c)
	c.Set(keyProblem, p)
	if p.Status == http.StatusServiceUnavailable {
		c.Header("Retry-After", strconv.Itoa(RetryAfterSeconds))
	}
	c.Header("Cache-Control", "no-store")
	c.Render(p.Status, problemRender{p})
	c.Abort()
}

func sprintf(format string, args ...any) string {
	if len(args) == 0 {
		return format
	}
	return clip(fmt.Sprintf(format, args...), maxDetailLen)
}

// clip shortens s to at most n runes, keeping it valid UTF-8.
func clip(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// problemRender renders a Problem with the problem+json media type.
type problemRender struct{ p Problem }

func (r problemRender) Render(w http.ResponseWriter) error {
	r.WriteContentType(w)
	b, err := json.Marshal(r.p)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (r problemRender) WriteContentType(w http.ResponseWriter) {
	w.Header().Set("Content-Type", ProblemContentType)
}
