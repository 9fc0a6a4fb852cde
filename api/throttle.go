package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/themis-maintenance/themis/domain"
)

// Manual pauses of a target (docs/MAINTENANCE_SCHEDULE.md, "Throttling and
// pacing"): POST /targets/{name}/throttle sets one, DELETE clears it, GET
// reads it. While a pause is in force the heavy tasks on the target wait
// between units of work, on every worker.

// MaxThrottle is the longest a manual pause may last.
const MaxThrottle = 31 * 24 * time.Hour

// maxThrottleReason bounds a pause's reason, in bytes.
const maxThrottleReason = 500

// TargetThrottle is a target's manual pause.
type TargetThrottle struct {
	Target    string    `json:"target"`
	Until     time.Time `json:"until"`
	Reason    string    `json:"reason,omitempty"`
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// ThrottleService stores manual pauses in the shared history store. The
// Service passed to New implements it when the server has a history store;
// otherwise the throttle endpoints answer 503.
type ThrottleService interface {
	// TargetThrottle returns target's pause in force now; ok is false when
	// there is none.
	TargetThrottle(ctx context.Context, target string) (th TargetThrottle, ok bool, err error)
	// SetTargetThrottle stores (replaces) a target's pause.
	SetTargetThrottle(ctx context.Context, th TargetThrottle) error
	// ClearTargetThrottle removes target's pause; cleared reports whether
	// one was in force.
	ClearTargetThrottle(ctx context.Context, target string) (cleared bool, err error)
}

// ThrottleState is the answer of the throttle endpoints.
type ThrottleState struct {
	Target string `json:"target"`
	// Paused is true while a manual pause is in force.
	Paused    bool       `json:"paused"`
	Until     *time.Time `json:"until,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	CreatedBy string     `json:"created_by,omitempty"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	// Cleared, on DELETE, says whether a pause was in force.
	Cleared *bool `json:"cleared,omitempty"`
}

func throttleState(target string, th TargetThrottle, ok bool) ThrottleState {
	st := ThrottleState{Target: target}
	if ok {
		until, created := th.Until.UTC(), th.CreatedAt.UTC()
		st.Paused, st.Until, st.Reason, st.CreatedBy, st.CreatedAt = true, &until, th.Reason, th.CreatedBy, &created
	}
	return st
}

// throttleTarget checks the service and the {name} of a throttle request.
func (h *handler) throttleTarget(c *gin.Context) (ThrottleService, string, bool) {
	name := c.Param("name")
	if !h.svc.TargetKnown(name) {
		abortWithError(c, fmt.Errorf("%w: target %q is not configured", domain.ErrNotFound, clip(name, 100)))
		return nil, "", false
	}
	ts, ok := h.svc.(ThrottleService)
	if !ok {
		abortWithError(c, errNotConfigured("manual pauses are not available on this server (no history store)"))
		return nil, "", false
	}
	noteAudit(c, "target/"+clip(name, 140), "")
	return ts, name, true
}

// getThrottle serves GET /targets/{name}/throttle.
func (h *handler) getThrottle(c *gin.Context) {
	ts, name, ok := h.throttleTarget(c)
	if !ok {
		return
	}
	th, paused, err := ts.TargetThrottle(c.Request.Context(), name)
	if err != nil {
		abortWithError(c, err)
		return
	}
	c.JSON(http.StatusOK, throttleState(name, th, paused))
}

// throttleRequest is the body of POST /targets/{name}/throttle: exactly
// one of until (RFC 3339) and for (a Go duration such as 30m or 2h).
type throttleRequest struct {
	Until  *string `json:"until"`
	For    *string `json:"for"`
	Reason string  `json:"reason"`
}

// parseThrottle reads and checks a throttle request body at now.
func parseThrottle(body []byte, now time.Time) (until time.Time, reason string, err error) {
	if body == nil {
		return time.Time{}, "", badRequest(CodeValidationFailed, "", `a body with "until" (RFC 3339) or "for" (a duration such as 30m) is required`)
	}
	m, err := parseObject(body)
	if err == nil {
		err = checkFields(m, map[string]bool{"until": true, "for": true, "reason": true})
	}
	var req throttleRequest
	if err == nil {
		err = decodeInto(m, &req)
	}
	if err != nil {
		return time.Time{}, "", err
	}
	switch {
	case req.Until != nil && req.For != nil:
		return time.Time{}, "", badRequest(CodeValidationFailed, "for", `give either "until" or "for", not both`)
	case req.Until == nil && req.For == nil:
		return time.Time{}, "", badRequest(CodeValidationFailed, "until", `"until" (RFC 3339) or "for" (a duration such as 30m) is required`)
	case req.For != nil:
		d, perr := time.ParseDuration(strings.TrimSpace(*req.For))
		if perr != nil || d <= 0 {
			return time.Time{}, "", badRequest(CodeValidationFailed, "for", "for must be a positive duration such as 30m or 2h, got %q", clip(*req.For, 100))
		}
		if d > MaxThrottle {
			return time.Time{}, "", badRequest(CodeValidationFailed, "for", "for must be at most %s, got %q", MaxThrottle, clip(*req.For, 100))
		}
		until = now.Add(d)
	default:
		t, perr := time.Parse(time.RFC3339, strings.TrimSpace(*req.Until))
		if perr != nil {
			return time.Time{}, "", badRequest(CodeValidationFailed, "until", "until must be an RFC 3339 time such as 2026-12-01T18:00:00Z, got %q", clip(*req.Until, 100))
		}
		if !t.After(now) {
			return time.Time{}, "", badRequest(CodeValidationFailed, "until", "until %s is not in the future", t.UTC().Format(time.RFC3339))
		}
		if t.Sub(now) > MaxThrottle {
			return time.Time{}, "", badRequest(CodeValidationFailed, "until", "until must be at most %s from now", MaxThrottle)
		}
		until = t
	}
	if len(req.Reason) > maxThrottleReason || !utf8.ValidString(req.Reason) || strings.ContainsFunc(req.Reason, isControl) {
		return time.Time{}, "", badRequest(CodeValidationFailed, "reason", "reason must be printable text of at most %d bytes", maxThrottleReason)
	}
	return until.UTC().Truncate(time.Millisecond), strings.TrimSpace(req.Reason), nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// setThrottle serves POST /targets/{name}/throttle.
func (h *handler) setThrottle(c *gin.Context) {
	ts, name, ok := h.throttleTarget(c)
	if !ok {
		return
	}
	body, err := h.readBody(c)
	if err != nil {
		abortWithError(c, err)
		return
	}
	now := time.Now()
	until, reason, err := parseThrottle(body, now)
	if err != nil {
		abortWithError(c, err)
		return
	}
	th := TargetThrottle{Target: name, Until: until, Reason: reason, CreatedBy: Principal(c), CreatedAt: now.UTC().Truncate(time.Millisecond)}
	if err := ts.SetTargetThrottle(c.Request.Context(), th); err != nil {
		abortWithError(c, err)
		return
	}
	detail := "until=" + until.Format(time.RFC3339)
	if reason != "" {
		b, _ := json.Marshal(reason)
		detail += " reason=" + string(b)
	}
	noteAudit(c, "", detail)
	c.JSON(http.StatusOK, throttleState(name, th, true))
}

// clearThrottle serves DELETE /targets/{name}/throttle.
func (h *handler) clearThrottle(c *gin.Context) {
	ts, name, ok := h.throttleTarget(c)
	if !ok {
		return
	}
	cleared, err := ts.ClearTargetThrottle(c.Request.Context(), name)
	if err != nil {
		abortWithError(c, err)
		return
	}
	noteAudit(c, "", fmt.Sprintf("cleared=%t", cleared))
	st := throttleState(name, TargetThrottle{}, false)
	st.Cleared = &cleared
	c.JSON(http.StatusOK, st)
}
