package api

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/themis-maintenance/themis/domain"
)

// ScheduleList is the body of GET /schedules.
type ScheduleList struct {
	Schedules []domain.Schedule `json:"schedules"`
	Count     int               `json:"count"`
	// AsOfMs is when the listed data was read from Temporal (Unix ms).
	AsOfMs int64 `json:"as_of_ms"`
	// Revision identifies the data the answer was built from: two answers
	// of equal non-zero revision to equal requests are equal, so the
	// gateway may reuse the encoded body. Zero: unknown. Not sent.
	Revision uint64 `json:"-"`
}

// Deleted is the body of DELETE /schedules/{id}.
type Deleted struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

// RunRequest is the optional body of POST /schedules/{id}/run.
type RunRequest struct {
	// Force runs outside the maintenance window.
	Force bool `json:"force"`
	// DryRun decides what each task would do and executes nothing.
	DryRun bool `json:"dry_run"`
	// Wait, a duration up to a minute ("30s"), holds the answer until the
	// started job ends or the wait has passed.
	Wait string `json:"wait"`
}

// scheduleID returns the validated {id} path parameter.
func scheduleID(c *gin.Context) (string, bool) {
	id := c.Param("id")
	if !domain.ValidID(id) {
		abortWithError(c, errInvalidID("id", id))
		return "", false
	}
	return id, true
}

func (h *handler) createSchedule(c *gin.Context) {
	body, err := h.readBody(c)
	if err != nil {
		abortWithError(c, err)
		return
	}
	spec, _, err := h.decodeScheduleBody(body)
	if err != nil {
		abortWithError(c, err)
		return
	}
	noteAudit(c, "", "name="+strconv.Quote(clip(spec.Name, 200)))
	if err := requireAdminFor(c, slices.Sorted(maps.Keys(domain.AdminOnlySettings(spec)))); err != nil {
		abortWithError(c, err)
		return
	}
	s, err := h.svc.CreateSchedule(c.Request.Context(), spec, Principal(c))
	if err != nil {
		abortWithError(c, err)
		return
	}
	noteAudit(c, "schedule/"+s.ID, scheduleSummary(s))
	c.Header("Location", BasePath+"/schedules/"+url.PathEscape(s.ID))
	c.JSON(http.StatusCreated, wireSchedule(s))
}

func (h *handler) listSchedules(c *gin.Context) {
	list, err := h.svc.ListSchedules(c.Request.Context())
	if err != nil {
		abortWithError(c, err)
		return
	}
	out := make([]domain.Schedule, len(list.Schedules))
	for i, s := range list.Schedules {
		out[i] = wireSchedule(s)
	}
	h.lists.respond(c, list.Revision, ScheduleList{Schedules: out, Count: len(out), AsOfMs: list.AsOfMs})
}

func (h *handler) getSchedule(c *gin.Context) {
	id, ok := scheduleID(c)
	if !ok {
		return
	}
	s, err := h.svc.GetSchedule(c.Request.Context(), id)
	if err != nil {
		abortWithError(c, err)
		return
	}
	c.JSON(http.StatusOK, wireSchedule(s))
}

// replaceSchedule is PUT: every writable field is replaced; an absent field
// takes its creation default (domain.NewScheduleSpec), except "enabled",
// which keeps the schedule's current state so that a PUT never pauses or
// resumes a schedule by omission.
func (h *handler) replaceSchedule(c *gin.Context) {
	id, ok := scheduleID(c)
	if !ok {
		return
	}
	body, err := h.readBody(c)
	if err != nil {
		abortWithError(c, err)
		return
	}
	spec, given, err := h.decodeScheduleBody(body)
	if err != nil {
		abortWithError(c, err)
		return
	}
	_, enabledGiven := given["enabled"]
	noteAudit(c, "", "replaced; name="+strconv.Quote(clip(spec.Name, 200)))
	s, err := h.svc.UpdateSchedule(c.Request.Context(), id, Principal(c), func(cur *domain.ScheduleSpec) error {
		next := spec
		if !enabledGiven {
			next.Enabled = cur.Enabled
		}
		if err := requireAdminFor(c, domain.AdminOnlyChanges(*cur, next)); err != nil {
			return err
		}
		*cur = next
		return nil
	})
	if err != nil {
		abortWithError(c, err)
		return
	}
	noteAudit(c, "", "replaced; "+scheduleSummary(s))
	c.JSON(http.StatusOK, wireSchedule(s))
}

// patchSchedule is PATCH: only the given fields change (see applyPatch).
// An empty patch changes nothing and answers the current schedule.
func (h *handler) patchSchedule(c *gin.Context) {
	id, ok := scheduleID(c)
	if !ok {
		return
	}
	body, err := h.readBody(c)
	if err != nil {
		abortWithError(c, err)
		return
	}
	patch, err := requireObject(body)
	if err != nil {
		abortWithError(c, err)
		return
	}
	if err := cleanScheduleObject(patch); err != nil {
		abortWithError(c, err)
		return
	}
	notePatch(c, patch)
	// Refuse wrong types before touching the service.
	scratch := domain.NewScheduleSpec("")
	if err := decodeInto(patch, &scratch); err != nil {
		abortWithError(c, err)
		return
	}
	var s domain.Schedule
	if len(patch) == 0 {
		s, err = h.svc.GetSchedule(c.Request.Context(), id)
	} else {
		s, err = h.svc.UpdateSchedule(c.Request.Context(), id, Principal(c), func(cur *domain.ScheduleSpec) error {
			next, err := h.applyPatch(*cur, patch)
			if err != nil {
				return err
			}
			if err := requireAdminFor(c, domain.AdminOnlyChanges(*cur, next)); err != nil {
				return err
			}
			*cur = next
			return nil
		})
	}
	if err != nil {
		abortWithError(c, err)
		return
	}
	c.JSON(http.StatusOK, wireSchedule(s))
}

func (h *handler) deleteSchedule(c *gin.Context) {
	id, ok := scheduleID(c)
	if !ok {
		return
	}
	if err := h.svc.DeleteSchedule(c.Request.Context(), id, Principal(c)); err != nil {
		abortWithError(c, err)
		return
	}
	c.JSON(http.StatusOK, Deleted{ID: id, Deleted: true})
}

func (h *handler) runSchedule(c *gin.Context) {
	id, ok := scheduleID(c)
	if !ok {
		return
	}
	body, err := h.readBody(c)
	if err != nil {
		abortWithError(c, err)
		return
	}
	var req RunRequest
	if body != nil {
		m, err := parseObject(body)
		if err == nil {
			err = checkFields(m, map[string]bool{"force": true, "dry_run": true, "wait": true})
		}
		if err == nil {
			err = decodeInto(m, &req)
		}
		if err != nil {
			abortWithError(c, err)
			return
		}
	}
	var wait time.Duration
	if req.Wait != "" {
		if wait, err = parseWait(req.Wait); err != nil {
			abortWithError(c, badRequest(CodeValidationFailed, "wait", "%s", err.Error()))
			return
		}
	}
	if req.Force && req.DryRun {
		abortWithError(c, badRequest(CodeValidationFailed, "dry_run", "a dry run ignores the window and blackouts already: do not set force with it"))
		return
	}
	noteAudit(c, "", runAuditDetail(req, ""))
	// A forced run ignores the maintenance window: admin only (docs/MAINTENANCE_SCHEDULE.md, forcing).
	if req.Force && !HasScope(c, ScopeAdmin) {
		AbortForbidden(c, "a forced run (force: true) needs the "+ScopeAdmin+" scope")
		return
	}
	// Running a schedule with admin-only settings on demand is doing what
	// they do: admin only as well (scheduled runs are not affected).
	if !HasScope(c, ScopeAdmin) {
		cur, err := h.svc.GetSchedule(c.Request.Context(), id)
		if err != nil {
			abortWithError(c, err)
			return
		}
		if err := requireAdminFor(c, slices.Sorted(maps.Keys(domain.AdminOnlySettings(cur.ScheduleSpec)))); err != nil {
			abortWithError(c, err)
			return
		}
	}
	job, err := h.svc.RunScheduleWith(c.Request.Context(), id, domain.RunOptions{Force: req.Force, DryRun: req.DryRun}, Principal(c))
	if err != nil {
		abortWithError(c, err)
		return
	}
	noteAudit(c, "", runAuditDetail(req, job.ID))
	if wait > 0 {
		holdConnection(c, wait)
		// The run has started whatever the wait brings: when waiting fails
		// (the client went away, Temporal did not answer), the job is
		// answered as started.
		if waited, werr := h.svc.WaitJob(c.Request.Context(), job.ID, wait); werr == nil {
			job = waited
		}
	}
	c.Header("Location", BasePath+"/jobs/"+url.PathEscape(job.ID))
	c.JSON(http.StatusAccepted, wireJob(job))
}

// runAuditDetail is the audit detail of a run request (job: the started
// job, "" before it started).
func runAuditDetail(req RunRequest, job string) string {
	d := "force=" + strconv.FormatBool(req.Force)
	if req.DryRun {
		d += " dry_run=true"
	}
	if job != "" {
		d += " job=" + job
	}
	return d
}

// notePatch names the audit action of a PATCH: schedule.enable or
// schedule.disable when the body sets "enabled" (to a boolean), else
// schedule.patch; the detail lists the given fields.
func notePatch(c *gin.Context, patch map[string]json.RawMessage) {
	fields := slices.Sorted(maps.Keys(patch))
	switch strings.TrimSpace(string(patch["enabled"])) {
	case "true":
		auditAction(c, "schedule.enable")
	case "false":
		auditAction(c, "schedule.disable")
	}
	noteAudit(c, "", "fields: "+clip(strings.Join(fields, ", "), 500))
}

// scheduleSummary is the audit detail of a written schedule.
func scheduleSummary(s domain.Schedule) string {
	tasks := make([]string, len(s.Tasks))
	for i, t := range s.Tasks {
		tasks[i] = string(t)
	}
	return "name=" + strconv.Quote(clip(s.Name, 200)) + " target=" + s.Target + " enabled=" + strconv.FormatBool(s.Enabled) +
		" cron=" + strconv.Quote(s.CronExpression) + " tasks=" + strings.Join(tasks, ",")
}

// wireSchedule makes nil collections render as [] and {} (the documented types).
func wireSchedule(s domain.Schedule) domain.Schedule {
	if s.Tasks == nil {
		s.Tasks = []domain.TaskType{}
	}
	if s.TaskOptions == nil {
		s.TaskOptions = map[domain.TaskType]domain.TaskOptions{}
	}
	deps := make([]domain.TaskDependency, len(s.TaskDependencies))
	for i, d := range s.TaskDependencies {
		if d.DependsOn == nil {
			d.DependsOn = []domain.TaskType{}
		}
		deps[i] = d
	}
	s.TaskDependencies = deps
	return s
}

// requireAdminFor returns a 403 error naming settings (admin-only schedule
// settings, see domain.AdminOnlySettings) when there are any and the caller
// lacks the admin scope; nil otherwise.
func requireAdminFor(c *gin.Context, settings []string) error {
	if len(settings) == 0 || HasScope(c, ScopeAdmin) {
		return nil
	}
	return &requestError{status: http.StatusForbidden, code: CodeForbidden,
		detail: clip("admin-only schedule settings need the "+ScopeAdmin+" scope: "+strings.Join(settings, ", ")+
			" (GET /task-types and the OpenAPI document list them)", maxDetailLen)}
}
