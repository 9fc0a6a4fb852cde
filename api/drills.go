package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
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
	// Revision identifies the data the answer was built from: two answers
	// of equal non-zero revision to equal requests are equal, so the
	// gateway may reuse the encoded body. Zero: unknown. Not sent.
	Revision uint64 `json:"-"`
}

// DrillStartRequest is the optional body of POST /drills.
type DrillStartRequest struct {
	// Target is the target to drill; empty means the default target.
	Target string `json:"target"`
	// Strategy is how the drill restores (domain.DrillStrategies:
	// backup_restore, replica_clone); empty means the target's
	// drill.strategy, else the driver's default.
	Strategy string `json:"strategy,omitempty"`
}

// DrillDecision is the body of POST /drills/{id}/approve and /reject.
type DrillDecision struct {
	// Step is the awaited approval: "start" or "complete".
	Step    string `json:"step"`
	Comment string `json:"comment"`
}

// DrillWait is what GET /drills/{id}?wait= holds the request for: until
// the drill is in one of Until, or its state or step differs from
// SinceState / SinceStep (what the caller last saw), or it has ended,
// whichever comes first, for at most Wait.
type DrillWait struct {
	Wait       time.Duration
	Until      []domain.DrillState
	SinceState domain.DrillState
	SinceStep  string
}

// Done reports whether d ends the wait. An ended drill always does.
func (w DrillWait) Done(d domain.Drill) bool {
	if d.State.Terminal() || slices.Contains(w.Until, d.State) {
		return true
	}
	return (w.SinceState != "" && d.State != w.SinceState) || (w.SinceStep != "" && d.Step != w.SinceStep)
}

// untilEnded is the until value that stands for every final state.
const untilEnded = "ended"

// drillStates are the states GET /drills/{id}?until= and since_state take.
var drillStates = []domain.DrillState{
	domain.DrillRunning, domain.DrillAwaiting, domain.DrillCleaningUp,
	domain.DrillPassed, domain.DrillFailed, domain.DrillRejected, domain.DrillAborted, domain.DrillCancelled,
}

// parseDrillWait reads the query of GET /drills/{id}: wait, until,
// since_state and since_step; ok is false when none of them is given.
func parseDrillWait(q url.Values) (w DrillWait, ok bool, err error) {
	for k, vs := range q {
		switch k {
		case "wait", "until", "since_state", "since_step":
		default:
			return w, false, badRequest(CodeInvalidParameter, clip(k, 100), "unknown query parameter %q (accepted: wait, until, since_state, since_step)", clip(k, 100))
		}
		if len(vs) > 1 {
			return w, false, badRequest(CodeInvalidParameter, k, "query parameter %s is given more than once", k)
		}
	}
	if len(q) == 0 {
		return w, false, nil
	}
	vs, given := q["wait"]
	if !given {
		for _, k := range []string{"until", "since_state", "since_step"} {
			if _, ok := q[k]; ok {
				return w, false, badRequest(CodeInvalidParameter, k, "%s needs wait (e.g. wait=30s)", k)
			}
		}
	}
	if w.Wait, err = parseWait(vs[0]); err != nil {
		return w, false, err
	}
	if v := q.Get("until"); v != "" {
		for _, u := range strings.Split(v, ",") {
			u = strings.TrimSpace(u)
			switch st := domain.DrillState(u); {
			case u == untilEnded:
				// Every final state ends the wait in any case.
			case slices.Contains(drillStates, st):
				w.Until = append(w.Until, st)
			default:
				return w, false, badRequest(CodeInvalidParameter, "until", "until takes %q or drill states (%s), got %q", untilEnded, joinStates(), clip(u, 100))
			}
		}
	}
	if v, ok := q["since_state"]; ok {
		if !slices.Contains(drillStates, domain.DrillState(v[0])) {
			return w, false, badRequest(CodeInvalidParameter, "since_state", "since_state must be a drill state (%s), got %q", joinStates(), clip(v[0], 100))
		}
		w.SinceState = domain.DrillState(v[0])
	}
	if v, ok := q["since_step"]; ok {
		if v[0] == "" || len(v[0]) > 64 || strings.ContainsFunc(v[0], func(r rune) bool { return !(r == '_' || r >= 'a' && r <= 'z') }) {
			return w, false, badRequest(CodeInvalidParameter, "since_step", "since_step must be a drill step name (the step field, e.g. await_start), got %q", clip(v[0], 100))
		}
		w.SinceStep = v[0]
	}
	return w, true, nil
}

func joinStates() string {
	out := make([]string, len(drillStates))
	for i, s := range drillStates {
		out[i] = string(s)
	}
	return strings.Join(out, ", ")
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
	if !h.optionalObject(c, map[string]bool{"target": true, "strategy": true}, &req) {
		return
	}
	req.Target = strings.TrimSpace(req.Target)
	req.Strategy = strings.TrimSpace(req.Strategy)
	audit := "target=" + strconv.Quote(clip(req.Target, 100))
	if req.Strategy != "" {
		audit += " strategy=" + strconv.Quote(clip(req.Strategy, 100))
	}
	noteAudit(c, "", audit)
	if req.Target != "" && !h.svc.TargetKnown(req.Target) {
		abortWithError(c, badRequest(CodeValidationFailed, "target", "unknown target %q", clip(req.Target, 100)))
		return
	}
	if err := domain.ValidateDrillStrategy(req.Strategy); err != nil {
		abortWithError(c, badRequest(CodeValidationFailed, "strategy", "unknown drill strategy %q: want %s, or none for the target's",
			clip(req.Strategy, 100), strings.Join(domain.DrillStrategies(), " or ")))
		return
	}
	ds, ok := h.drillService(c)
	if !ok {
		return
	}
	var d domain.Drill
	var err error
	if rs, ok := ds.(DrillRequestStarter); ok {
		d, err = rs.StartDrillRequest(c.Request.Context(), req, Principal(c))
	} else if req.Strategy != "" {
		err = errNotConfigured("this server's drill service cannot choose a drill strategy: start the drill without one (the target's drill.strategy applies)")
	} else {
		d, err = ds.StartDrill(c.Request.Context(), req.Target, Principal(c))
	}
	if err != nil {
		abortWithError(c, err)
		return
	}
	audit = "target=" + d.Target
	if req.Strategy != "" {
		audit += " strategy=" + req.Strategy
	}
	noteAudit(c, "drill/"+d.ID, audit)
	c.Header("Location", BasePath+"/drills/"+url.PathEscape(d.ID))
	c.JSON(http.StatusAccepted, wireDrill(d))
}

// parseDrillLimit reads the query of GET /drills (limit only).
func parseDrillLimit(c *gin.Context) (int, error) {
	params, err := queryParams(c)
	if err != nil {
		return 0, err
	}
	limit := DefaultDrillLimit
	for _, qp := range params {
		k, v := qp.key, qp.value
		if k != "limit" {
			return 0, badRequest(CodeInvalidParameter, clip(k, 100), "unknown query parameter %q (accepted: limit)", clip(k, 100))
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxDrillLimit {
			return 0, badRequest(CodeInvalidParameter, k, "limit must be an integer 1–%d, got %q", MaxDrillLimit, clip(v, 100))
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
	h.lists.respond(c, list.Revision, DrillList{Drills: out, Count: len(out), AsOfMs: list.AsOfMs})
}

func (h *handler) getDrill(c *gin.Context) {
	id, ok := drillID(c)
	if !ok {
		return
	}
	w, wait, err := parseDrillWait(c.Request.URL.Query())
	if err != nil {
		abortWithError(c, err)
		return
	}
	ds, ok := h.drillService(c)
	if !ok {
		return
	}
	var d domain.Drill
	if wait {
		// The request's context ends when the client goes away.
		d, err = ds.WaitDrill(c.Request.Context(), id, w)
	} else {
		d, err = ds.GetDrill(c.Request.Context(), id)
	}
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
	detail := "step=" + strconv.Quote(clip(req.Step, 100)) + " comment=" + strconv.Quote(clip(req.Comment, 500)) + " channel=" + domain.ChannelAPI
	noteAudit(c, "", detail)
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
		// The drill's refusal (409) is in the audit entry with its reason.
		noteAudit(c, "", detail+" refused="+strconv.Quote(clip(err.Error(), 300)))
		abortWithError(c, err)
		return
	}
	// What the drill recorded: the decision applied, and the state after it.
	noteAudit(c, "", detail+" applied="+strconv.Quote(appliedDecision(d, req.Step))+" state="+string(d.State)+" step_now="+d.Step)
	c.JSON(http.StatusOK, wireDrill(d))
}

// appliedDecision names the decision d recorded on step ("approved by
// alice (api)"), empty when it has none.
func appliedDecision(d domain.Drill, step string) string {
	for _, a := range d.Approvals {
		if a.Step == step {
			return a.Decision + " by " + clip(a.Approver, 100) + " (" + a.Channel + ")"
		}
	}
	return ""
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
	d.Refused = slices.Clone(d.Refused)
	if d.Refused == nil {
		d.Refused = []domain.Approval{}
	}
	return d
}
