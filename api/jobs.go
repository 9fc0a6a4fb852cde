package api

import (
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/audit"
)

// Limits of GET /jobs.
const (
	DefaultJobLimit = 50
	// MaxJobLimit caps a page (each is copied out of the read model per
	// request, and pages past its window are read from the history store);
	// larger limits are 400.
	MaxJobLimit      = 200
	maxPageTokenLen  = 4096
	maxJobIDLen      = 255
	jobsQueryAllowed = "active_only, schedule_id, state, limit, next_page_token"
)

// jobIDPattern accepts workflow ids as the starter makes them: manual runs
// embed the schedule id, scheduled runs carry Temporal's RFC 3339 suffix
// (e.g. "daily-maintenance-2025-01-01T02:00:00Z").
var jobIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@+-]*$`)

// ValidJobID reports whether id has the shape of a job (workflow) id.
func ValidJobID(id string) bool {
	return len(id) <= maxJobIDLen && jobIDPattern.MatchString(id) && !strings.Contains(id, "..")
}

func jobID(c *gin.Context) (string, bool) {
	id := c.Param("id")
	if !ValidJobID(id) {
		abortWithError(c, errInvalidID("id", id))
		return "", false
	}
	return id, true
}

// parseJobFilter reads the query of GET /jobs. Unknown parameters and
// repeated ones are refused so that a typo never silently widens a listing.
func parseJobFilter(c *gin.Context) (JobFilter, error) {
	params, err := queryParams(c)
	if err != nil {
		return JobFilter{}, err
	}
	f := JobFilter{Limit: DefaultJobLimit}
	for _, qp := range params {
		k, v := qp.key, qp.value
		switch k {
		case "active_only":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return f, badRequest(CodeInvalidParameter, k, "active_only must be true or false, got %q", clip(v, 100))
			}
			f.ActiveOnly = b
		case "schedule_id":
			if !domain.ValidID(v) {
				return f, badRequest(CodeInvalidParameter, k, "malformed schedule id %q", clip(v, 140))
			}
			f.ScheduleID = v
		case "state":
			s := domain.JobState(v)
			if !s.Valid() {
				return f, badRequest(CodeInvalidParameter, k, "state must be one of pending, running, succeeded, failed, cancelled, skipped; got %q", clip(v, 100))
			}
			f.State = s
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxJobLimit {
				return f, badRequest(CodeInvalidParameter, k, "limit must be an integer 1–%d, got %q", MaxJobLimit, clip(v, 100))
			}
			f.Limit = n
		case "next_page_token":
			if len(v) > maxPageTokenLen || !saneToken(v) {
				return f, badRequest(CodeInvalidParameter, k, "malformed next_page_token")
			}
			f.NextPageToken = v
		default:
			return f, badRequest(CodeInvalidParameter, clip(k, 100), "unknown query parameter %q (accepted: %s)", clip(k, 100), jobsQueryAllowed)
		}
	}
	if f.ActiveOnly && f.State.Terminal() {
		return f, badRequest(CodeInvalidParameter, "state", "active_only cannot be combined with the terminal state %q", f.State)
	}
	return f, nil
}

func saneToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func (h *handler) listJobs(c *gin.Context) {
	f, err := parseJobFilter(c)
	if err != nil {
		abortWithError(c, err)
		return
	}
	page, err := h.svc.ListJobs(c.Request.Context(), f)
	if err != nil {
		if f.NextPageToken != "" && problemFor(err).Status == http.StatusInternalServerError {
			// The service maps the visibility store's refusal of a token
			// (Temporal's InvalidArgument) to a validation error; whatever
			// else a store says about a page token it did not take is the
			// token's fault as far as the client can tell: 400, never 500.
			loggerOf(c).LogAttrs(c.Request.Context(), slog.LevelWarn, "job listing with a page token failed",
				slog.String("request_id", RequestID(c)), slog.String("error", audit.Sanitize(err.Error())))
			err = badRequest(CodeInvalidParameter, "next_page_token",
				"next_page_token was not accepted: pass the next_page_token of the previous page, with the same filters")
		}
		abortWithError(c, err)
		return
	}
	jobs := make([]domain.Job, len(page.Jobs))
	for i, j := range page.Jobs {
		jobs[i] = wireJob(j)
	}
	page.Jobs = jobs
	page.Count = len(page.Jobs)
	h.lists.respond(c, page.Revision, page)
}

func (h *handler) getJob(c *gin.Context) {
	id, ok := jobID(c)
	if !ok {
		return
	}
	vs := c.Request.URL.Query()["wait"]
	if len(vs) > 1 {
		abortWithError(c, badRequest(CodeInvalidParameter, "wait", "query parameter wait is given more than once"))
		return
	}
	var job domain.Job
	var err error
	if len(vs) == 1 {
		var wait time.Duration
		if wait, err = parseWait(vs[0]); err == nil {
			holdConnection(c, wait)
			// The request's context ends when the client goes away.
			job, err = h.svc.WaitJob(c.Request.Context(), id, wait)
		}
	} else {
		job, err = h.svc.GetJob(c.Request.Context(), id)
	}
	if err != nil {
		abortWithError(c, err)
		return
	}
	c.JSON(http.StatusOK, wireJob(job))
}

// MaxJobWait bounds how long GET /jobs/{id}?wait= and a run's "wait" hold
// a request for the job to end.
const MaxJobWait = 60 * time.Second

// LongPollMargin is added to a wait when a long poll extends its
// connection's deadlines (holdConnection): the answer is written after the
// wait has passed.
const LongPollMargin = 15 * time.Second

// holdConnection extends the connection's read and write deadlines, which
// the server's ReadTimeout and WriteTimeout set for ordinary requests, to
// cover a long poll of wait (plus LongPollMargin): only requests that ask to
// wait hold a connection that long. Where the writer cannot extend them (a
// test recorder), nothing changes.
func holdConnection(c *gin.Context, wait time.Duration) {
	if wait <= 0 {
		return
	}
	deadline := time.Now().Add(wait + LongPollMargin)
	rc := http.NewResponseController(c.Writer)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
}

// parseWait reads a wait duration ("30s", "1m", "500ms"): 0 to MaxJobWait.
func parseWait(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > MaxJobWait {
		return 0, badRequest(CodeInvalidParameter, "wait", "wait must be a duration from 0s to %s (e.g. 30s), got %q", MaxJobWait, clip(v, 100))
	}
	return d, nil
}

// cancelJob requests cancellation. The body is optional and, when given,
// must be an empty JSON object.
func (h *handler) cancelJob(c *gin.Context) {
	id, ok := jobID(c)
	if !ok {
		return
	}
	body, err := h.readBody(c)
	if err != nil {
		abortWithError(c, err)
		return
	}
	if body != nil {
		m, err := parseObject(body)
		if err == nil {
			err = checkFields(m, nil)
		}
		if err != nil {
			abortWithError(c, err)
			return
		}
	}
	job, err := h.svc.CancelJob(c.Request.Context(), id, Principal(c))
	if err != nil {
		abortWithError(c, err)
		return
	}
	noteAudit(c, "", "schedule="+job.ScheduleID+" state="+string(job.State))
	c.JSON(http.StatusOK, wireJob(job))
}

// wireJob makes nil collections render as [] and {} (the documented types).
func wireJob(j domain.Job) domain.Job {
	tasks := make([]domain.TaskRun, len(j.Tasks))
	copy(tasks, j.Tasks)
	for i := range tasks {
		if tasks[i].Details == nil {
			tasks[i].Details = map[string]any{}
		}
	}
	j.Tasks = tasks
	if j.ID != "" {
		j.CommandsURL = BasePath + "/commands?job_id=" + url.QueryEscape(j.ID)
	}
	return j
}
