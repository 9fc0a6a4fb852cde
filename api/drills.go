package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/themis-maintenance/themis/domain"
)

// Limits of the drill endpoints.
const (
	DefaultDrillLimit = 50
	MaxDrillLimit     = 200
	// MaxCommentLen bounds approval comments and abort reasons (runes).
	MaxCommentLen = 2000
)

// DrillList is the body of GET /drills.
type DrillList struct {
	Drills []domain.Drill `json:"drills"`
	Count  int            `json:"count"`
	// AsOfMs is when the listed data was read from Temporal (Unix ms).
	AsOfMs int64 `json:"as_of_ms"`
}

// DrillStartRequest is the optional body of POST /drills.
type DrillStartRequest struct {
	// Target is the target to drill; empty means the default target.
	Target string `json:"target"`
}

// DrillDecision is the body of POST /drills/{id}/approve and /reject.
type DrillDecision struct {
	// Step is the awaited approval: "start" or "complete".
	Step    string `json:"step"`
	Comment string `json:"comment"`
}

// DrillAbortRequest is the optional body of POST /drills/{id}/abort.
type DrillAbortRequest struct {
	Reason string `json:"reason"`
}

func (h *handler) drillService(c *gin.Context) (DrillService, bool) {
	if h.drills == nil {
		abortWithError(c, errNotConfigured("DR drills are not available on this server (no drill service configured)"))
		return nil, false
	}
	return h.drills, true
}

// drillID returns the validated {id} of a drill (a workflow id).
func drillID(c *gin.Context) (string, bool) { return jobID(c) }

// optionalObject decodes an optional body into dst, allowing only the keys
// in allowed.
func (h *handler) optionalObject(c *gin.Context, allowed map[string]bool, dst any) bool {
	body, err := h.readBody(c)
	if err == nil && body != nil {
		var m map[string]json.RawMessage
		if m, err = parseObject(body); err == nil {
			if err = checkFields(m, allowed); err == nil {
				err = decodeInto(m, dst)
			}
		}
	}
	if err != nil {
		abortWithError(c, err)
		return false
	}
	return true
}

// checkText validates free text (comments, reasons): at most MaxCommentLen
// runes, no control characters other than newline and tab.
func checkText(field, s string) error {
	if n := utf8.RuneCountInString(s); n > MaxCommentLen {
		return badRequest(CodeValidationFailed, field, "%s is %d characters long; the limit is %d", field, n, MaxCommentLen)
	}
	for _, r := range s {
		if r != '\n' && r != '\t' && unicode.IsControl(r) {
			return badRequest(CodeValidationFailed, field, "%s contains the control character %U", field, r)
		}
	}
	return nil
}

func (h *handler) startDrill(c *gin.Context) {
	var req DrillStartRequest
	if !h.optionalObject(c, map[string]bool{"target": true}, &req) {
		return
	}
	req.Target = strings.TrimSpace(req.Target)
	noteAudit(c, "", "target="+strconv.Quote(clip(req.Target, 100)))
	if req.Target != "" && !h.svc.TargetKnown(req.Target) {
		abortWithError(c, badRequest(CodeValidationFailed, "target", "unknown target %q", clip(req.Target, 100)))
		return
	}
	ds, ok := h.drillService(c)
	if !ok {
		return
	}
	d, err := ds.StartDrill(c.Request.Context(), req.Target, Principal(c))
	if err != nil {
		abortWithError(c, err)
		return
	}
	noteAudit(c, "drill/"+d.ID, "target="+d.Target)
	c.Header("Location", BasePath+"/drills/"+url.PathEscape(d.ID))
	c.JSON(http.StatusAccepted, wireDrill(d))
}

// parseDrillLimit reads the query of GET /drills (limit only).
func parseDrillLimit(c *gin.Context) (int, error) {
	q := c.Request.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	limit := DefaultDrillLimit
	for _, k := range keys {
		vs := q[k]
		if len(vs) > 1 {
			return 0, badRequest(CodeInvalidParameter, clip(k, 100), "query parameter %s is given more than once", clip(k, 100))
		}
		if k != "limit" {
			return 0, badRequest(CodeInvalidParameter, clip(k, 100), "unknown query parameter %q (accepted: limit)", clip(k, 100))
		}
		n, err := strconv.Atoi(vs[0])
		if err != nil || n < 1 || n > MaxDrillLimit {
			return 0, badRequest(CodeInvalidParameter, k, "limit must be an integer 1–%d, got %q", MaxDrillLimit, clip(vs[0], 100))
		}
		limit = n
	}
	return limit, nil
}

func (h *handler) listDrills(c *gin.Context) {
	limit, err := parseDrillLimit(c)
	if err != nil {
		abortWithError(c, err)
		return
	}
	ds, ok := h.drillService(c)
	if !ok {
		return
	}
	list, err := ds.ListDrills(c.Request.Context(), limit)
	if err != nil {
		abortWithError(c, err)
		return
	}
	drills := list.Drills
	if len(drills) > limit {
		drills = drills[:limit]
	}
	out := make([]domain.Drill, len(drills))
	for i, d := range drills {
		out[i] = wireDrill(d)
	}
	c.JSON(http.StatusOK, DrillList{Drills: out, Count: len(out), AsOfMs: list.AsOfMs})
}

func (h *handler) getDrill(c *gin.Context) {
	id, ok := drillID(c)
	if !ok {
		return
	}
	ds, ok := h.drillService(c)
	if !ok {
		return
	}
	d, err := ds.GetDrill(c.Request.Context(), id)
	if err != nil {
		abortWithError(c, err)
		return
	}
	c.JSON(http.StatusOK, wireDrill(d))
}

func (h *handler) approveDrill(c *gin.Context) { h.decideDrill(c, true) }
func (h *handler) rejectDrill(c *gin.Context)  { h.decideDrill(c, false) }

// decideDrill answers an awaited approval; 409 when the drill does not
// await that step.
func (h *handler) decideDrill(c *gin.Context, approve bool) {
	id, ok := drillID(c)
	if !ok {
		return
	}
	body, err := h.readBody(c)
	if err != nil {
		abortWithError(c, err)
		return
	}
	var req DrillDecision
	m, err := requireObject(body)
	if err == nil {
		err = checkFields(m, map[string]bool{"step": true, "comment": true})
	}
	if err == nil {
		err = decodeInto(m, &req)
	}
	if err == nil {
		if _, given := m["step"]; !given {
			err = badRequest(CodeValidationFailed, "step", "step is required (%q or %q)", domain.ApprovalStart, domain.ApprovalComplete)
		} else if req.Step != domain.ApprovalStart && req.Step != domain.ApprovalComplete {
			err = badRequest(CodeValidationFailed, "step", "step must be %q or %q, got %q", domain.ApprovalStart, domain.ApprovalComplete, clip(req.Step, 100))
		}
	}
	if err == nil {
		err = checkText("comment", req.Comment)
	}
	noteAudit(c, "", "step="+strconv.Quote(clip(req.Step, 100))+" comment="+strconv.Quote(clip(req.Comment, 500)))
	if err != nil {
		abortWithError(c, err)
		return
	}
	ds, ok := h.drillService(c)
	if !ok {
		return
	}
	d, err := ds.DecideDrill(c.Request.Context(), id, approve, req.Step, req.Comment, Principal(c))
	if err != nil {
		abortWithError(c, err)
		return
	}
	c.JSON(http.StatusOK, wireDrill(d))
}

// abortDrill stops a drill (its clean-up still runs); 409 when it has
// already finished. The body is optional.
func (h *handler) abortDrill(c *gin.Context) {
	id, ok := drillID(c)
	if !ok {
		return
	}
	var req DrillAbortRequest
	if !h.optionalObject(c, map[string]bool{"reason": true}, &req) {
		return
	}
	noteAudit(c, "", "reason="+strconv.Quote(clip(req.Reason, 500)))
	if err := checkText("reason", req.Reason); err != nil {
		abortWithError(c, err)
		return
	}
	ds, ok := h.drillService(c)
	if !ok {
		return
	}
	d, err := ds.AbortDrill(c.Request.Context(), id, req.Reason, Principal(c))
	if err != nil {
		abortWithError(c, err)
		return
	}
	c.JSON(http.StatusOK, wireDrill(d))
}

// wireDrill makes nil collections render as [] (the documented types).
func wireDrill(d domain.Drill) domain.Drill {
	d.Steps = slices.Clone(d.Steps)
	if d.Steps == nil {
		d.Steps = []domain.DrillStep{}
	}
	d.Approvals = slices.Clone(d.Approvals)
	if d.Approvals == nil {
		d.Approvals = []domain.Approval{}
	}
	return d
}
