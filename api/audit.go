package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/themis-maintenance/themis/internal/audit"
)

// This file connects the gateway to the audit log (docs/ARCHITECTURE.md: every write and
// every denial is written with the principal).
//
// What is audited: every attempt of a write operation (create, update
// (PUT), patch, enable/disable, delete, run, cancel, drill start, approve,
// reject, abort) whatever its outcome, GET /audit, and every request of any
// operation refused with 401 or 403. A PATCH whose body sets "enabled" is
// recorded as schedule.enable or schedule.disable (the other fields it
// changes are listed in the detail); any other PATCH is schedule.patch.
//
// When an event cannot be written (disk full, permissions, a removed
// mount), the policy is:
//   - the request it describes keeps its answer: the change has already
//     taken effect, and failing the request would invite a retry that
//     repeats it;
//   - the event is logged at ERROR level with all its fields (message
//     "audit log write failed"), so the process log holds it;
//   - the gateway then fails closed: later write requests are refused with
//     503 (code unavailable, Retry-After) before they reach the service,
//     until the audit log accepts an event again. Each such write first
//     tries to append an "audit.resume" event that records the gap; when
//     that works, the write proceeds. Reads are never refused.

// AuditLog is where the gateway writes and reads audit events; *audit.Log
// implements it.
type AuditLog interface {
	// Record appends one event durably; an error means it is not in the log.
	Record(ctx context.Context, e audit.Event) error
	// Read returns the newest limit events at or after since, oldest first.
	Read(ctx context.Context, since time.Time, limit int) (audit.Page, error)
}

var _ AuditLog = (*audit.Log)(nil)

// Limits of GET /audit.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 10000
)

// AuditList is the body of GET /audit.
type AuditList struct {
	Events []audit.Event `json:"events"`
	Count  int           `json:"count"`
	// Truncated is true when more events matched than limit allowed; the
	// oldest were left out.
	Truncated bool `json:"truncated"`
}

const (
	keyOperation   = "themis.operation"
	keyAuditAction = "themis.audit.action"
	keyAuditRes    = "themis.audit.resource"
	keyAuditDetail = "themis.audit.detail"
	keyProblem     = "themis.problem"
	keyDenials     = "themis.denials"
	keyDenialAudit = "themis.denial.audit"
)

// auditState tracks failed audit writes (the fail-closed mode).
type auditState struct {
	mu     sync.Mutex
	failed int       // events lost since the log last accepted one
	since  time.Time // first loss
}

// begin marks the operation for the authenticator and the audit log, runs
// the rest of the chain and then writes the audit event, if any.
func (h *handler) begin(o operation) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Set(keyScope, o.scope)
		c.Set(keyOperation, o)
		c.Set(keyDenials, h.denials)
		c.Next()
		h.recordAudit(c, o)
	}
}

// noteAudit gives the audit event of this request its resource (when not
// empty) and a detail.
func noteAudit(c *gin.Context, resource, detail string) {
	if resource != "" {
		c.Set(keyAuditRes, resource)
	}
	if detail != "" {
		c.Set(keyAuditDetail, detail)
	}
}

// auditAction replaces the operation's action name for this request (PATCH
// of enabled → schedule.enable / schedule.disable).
func auditAction(c *gin.Context, action string) { c.Set(keyAuditAction, action) }

func (h *handler) recordAudit(c *gin.Context, o operation) {
	status := c.Writer.Status()
	// A denial counted in its client's interval (denials.go) is written
	// later, in the interval's summary.
	writeNow, counted := c.Get(keyDenialAudit)
	denied := counted
	if h.opts.Audit == nil || (!o.audited && !denied) || (denied && !writeNow.(bool)) {
		return
	}
	e := audit.Event{
		Time:      time.Now().UTC(),
		RequestID: RequestID(c),
		Principal: Principal(c),
		Action:    o.action,
		Resource:  o.collection,
		Status:    status,
	}
	if id := c.Param("id"); id != "" && o.kind != "" {
		e.Resource = o.kind + "/" + clip(id, 140)
	}
	if v := c.GetString(keyAuditAction); v != "" {
		e.Action = v
	}
	if v := c.GetString(keyAuditRes); v != "" {
		e.Resource = v
	}
	switch {
	case denied:
		e.Outcome = audit.OutcomeDenied
	case status < 400:
		e.Outcome = audit.OutcomeSuccess
	default:
		e.Outcome = audit.OutcomeFailure
	}
	detail := c.GetString(keyAuditDetail)
	if v, ok := c.Get(keyProblem); ok {
		if p, ok := v.(Problem); ok {
			msg := p.Code + ": " + p.Detail
			if p.Field != "" {
				msg = p.Code + " (" + p.Field + "): " + p.Detail
			}
			if detail != "" {
				detail += "; "
			}
			detail += msg
		}
	}
	e.Detail = audit.Sanitize(detail)
	h.writeAudit(c.Request.Context(), e)
}

// writeAudit records e; on failure it logs the event loudly and enters the
// fail-closed mode. It reports whether the event was written.
func (h *handler) writeAudit(ctx context.Context, e audit.Event) bool {
	err := h.opts.Audit.Record(context.WithoutCancel(ctx), e)
	if err == nil {
		return true
	}
	h.audit.mu.Lock()
	if h.audit.failed == 0 {
		h.audit.since = e.Time
	}
	h.audit.failed++
	lost := h.audit.failed
	h.audit.mu.Unlock()
	h.log.LogAttrs(ctx, slog.LevelError, "audit log write failed: event not recorded; writes are refused until the audit log works again",
		slog.String("error", audit.Sanitize(err.Error())),
		slog.Int("events_lost", lost),
		slog.Group("audit_event",
			slog.Time("time", e.Time), slog.String("request_id", e.RequestID), slog.String("principal", e.Principal),
			slog.String("action", e.Action), slog.String("resource", e.Resource), slog.String("outcome", e.Outcome),
			slog.Int("status", e.Status), slog.String("detail", e.Detail)))
	return false
}

// auditGate refuses a write operation while the audit log is failing,
// unless an audit.resume event can be written now.
func (h *handler) auditGate(o operation) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !o.write || h.opts.Audit == nil {
			c.Next()
			return
		}
		h.audit.mu.Lock()
		lost, since := h.audit.failed, h.audit.since
		h.audit.mu.Unlock()
		if lost == 0 {
			c.Next()
			return
		}
		resume := audit.Event{
			Time: time.Now().UTC(), RequestID: RequestID(c), Principal: Principal(c),
			Action: "audit.resume", Resource: "audit", Outcome: audit.OutcomeSuccess, Status: 0,
			Detail: fmt.Sprintf("the audit log is writable again; %d event(s) since %s could not be written and are in the server log (\"audit log write failed\")",
				lost, since.Format(time.RFC3339)),
		}
		if err := h.opts.Audit.Record(context.WithoutCancel(c.Request.Context()), resume); err != nil {
			h.log.LogAttrs(c.Request.Context(), slog.LevelError, "audit log still failing: write refused",
				slog.String("request_id", RequestID(c)), slog.String("principal", Principal(c)),
				slog.String("action", o.action), slog.String("error", audit.Sanitize(err.Error())))
			abortWithError(c, &requestError{status: http.StatusServiceUnavailable, code: CodeUnavailable,
				detail: "the audit log cannot be written; changes are refused until it can (see the server log)"})
			return
		}
		h.audit.mu.Lock()
		h.audit.failed = max(0, h.audit.failed-lost)
		h.audit.mu.Unlock()
		h.log.LogAttrs(c.Request.Context(), slog.LevelWarn, "audit log writable again",
			slog.Int("events_lost", lost), slog.Time("since", since))
		c.Next()
	}
}

// readAudit is GET /audit?since=&limit=.
func (h *handler) readAudit(c *gin.Context) {
	since, limit, err := parseAuditQuery(c)
	if err != nil {
		abortWithError(c, err)
		return
	}
	detail := "limit=" + strconv.Itoa(limit)
	if !since.IsZero() {
		detail = "since=" + since.UTC().Format(time.RFC3339Nano) + " " + detail
	}
	noteAudit(c, "", detail)
	if h.opts.Audit == nil {
		abortWithError(c, errNotConfigured("the audit log is not configured on this server"))
		return
	}
	page, err := h.opts.Audit.Read(c.Request.Context(), since, limit)
	if err != nil {
		abortWithError(c, err)
		return
	}
	if page.Events == nil {
		page.Events = []audit.Event{}
	}
	c.JSON(http.StatusOK, AuditList{Events: page.Events, Count: len(page.Events), Truncated: page.Truncated})
}

// parseAuditQuery reads since (RFC 3339 or Unix milliseconds) and limit.
func parseAuditQuery(c *gin.Context) (time.Time, int, error) {
	params, err := queryParams(c)
	if err != nil {
		return time.Time{}, 0, err
	}
	limit := DefaultAuditLimit
	var since time.Time
	for _, qp := range params {
		k, v := qp.key, qp.value
		switch k {
		case "since":
			t, err := parseSince(v)
			if err != nil {
				return since, 0, badRequest(CodeInvalidParameter, k, "since must be an RFC 3339 time or Unix milliseconds, got %q", clip(v, 100))
			}
			since = t
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxAuditLimit {
				return since, 0, badRequest(CodeInvalidParameter, k, "limit must be an integer 1–%d, got %q", MaxAuditLimit, clip(v, 100))
			}
			limit = n
		default:
			return since, 0, badRequest(CodeInvalidParameter, clip(k, 100), "unknown query parameter %q (accepted: since, limit)", clip(k, 100))
		}
	}
	return since, limit, nil
}

// parseSince accepts RFC 3339 (with or without fractional seconds) or a
// non-negative count of Unix milliseconds. A space in place of the "+" of
// an offset (an unescaped "+" in a query string) is forgiven.
func parseSince(v string) (time.Time, error) {
	v = strings.Replace(v, " ", "+", 1)
	if v != "" && strings.Trim(v, "0123456789") == "" && len(v) <= 15 {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, err
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	return time.Parse(time.RFC3339Nano, v)
}
