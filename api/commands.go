package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver/commandlog"
)

// Limits of GET /commands.
const (
	DefaultCommandLimit = 100
	MaxCommandLimit     = 1000
	maxObjectLen        = 300
)

// CommandService serves the command log (GET /commands) from the history
// store. Optional: without it the endpoint answers 503.
type CommandService interface {
	ListCommands(ctx context.Context, f CommandFilter) (CommandPage, error)
}

// CommandFilter selects command-log rows. Empty fields match everything.
type CommandFilter struct {
	Target  string
	Object  string
	JobID   string
	SinceMs int64
	Limit   int
	// BeforeID continues a listing after the last row of the previous page.
	BeforeID int64
}

// CommandPage is one page of the command log, newest first.
type CommandPage struct {
	Commands      []commandlog.Command `json:"commands"`
	Count         int                  `json:"count"`
	NextPageToken string               `json:"next_page_token"`
}

// CommandPageToken is the page token that continues a listing after the
// command with id.
func CommandPageToken(id int64) string { return "c" + strconv.FormatInt(id, 10) }

func parseCommandPageToken(s string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimPrefix(s, "c"), 10, 64)
	return n, err == nil && strings.HasPrefix(s, "c") && n > 0
}

// parseCommandFilter reads the query of GET /commands; unknown and repeated
// parameters are refused, as for GET /jobs.
func (h *handler) parseCommandFilter(c *gin.Context) (CommandFilter, error) {
	params, err := queryParams(c)
	if err != nil {
		return CommandFilter{}, err
	}
	f := CommandFilter{Limit: DefaultCommandLimit}
	for _, qp := range params {
		k, v := qp.key, qp.value
		switch k {
		case "target":
			if !h.svc.TargetKnown(v) {
				return f, fmt.Errorf("%w: target %q is not configured", domain.ErrNotFound, clip(v, 100))
			}
			f.Target = v
		case "object":
			if v == "" || len(v) > maxObjectLen || !utf8.ValidString(v) {
				return f, badRequest(CodeInvalidParameter, k, "object must be a name of 1–%d bytes (schema.table or an index), got %q", maxObjectLen, clip(v, 100))
			}
			f.Object = v
		case "job_id":
			if !ValidJobID(v) {
				return f, errInvalidID(k, v)
			}
			f.JobID = v
		case "since":
			t, err := parseSince(v)
			if err != nil || t.Before(time.Unix(0, 0)) {
				return f, badRequest(CodeInvalidParameter, k, "since must be an RFC 3339 time (2026-12-01T00:00:00Z) or Unix milliseconds, got %q", clip(v, 100))
			}
			f.SinceMs = t.UnixMilli()
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxCommandLimit {
				return f, badRequest(CodeInvalidParameter, k, "limit must be an integer 1–%d, got %q", MaxCommandLimit, clip(v, 100))
			}
			f.Limit = n
		case "page_token":
			id, ok := parseCommandPageToken(v)
			if !ok {
				return f, badRequest(CodeInvalidParameter, k, "page_token %q is not one this server issued", clip(v, 100))
			}
			f.BeforeID = id
		default:
			return f, badRequest(CodeInvalidParameter, clip(k, 100),
				"unknown query parameter %q (accepted: target, object, job_id, since, limit, page_token)", clip(k, 100))
		}
	}
	return f, nil
}

// listCommands serves GET /commands: the command log, newest first.
func (h *handler) listCommands(c *gin.Context) {
	f, err := h.parseCommandFilter(c)
	if err != nil {
		abortWithError(c, err)
		return
	}
	if h.commands == nil {
		abortWithError(c, errNotConfigured("the command log is not available on this server (no history store)"))
		return
	}
	page, err := h.commands.ListCommands(c.Request.Context(), f)
	if err != nil {
		abortWithError(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}
