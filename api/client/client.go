// Package client is the typed Go client of the Themis Maintenance HTTP API
// (package api), shared by themisctl and the testsuite. Every call takes a
// context first; errors the server answers with problem+json come back as
// *APIError with the stable code.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
)

// DefaultBaseURL is where the API listens by default (docs/ARCHITECTURE.md, Configuration).
const DefaultBaseURL = "http://127.0.0.1:8080"

// maxResponseBytes bounds the bodies the client reads.
const maxResponseBytes = 64 << 20

// Client calls one Themis Maintenance API server. It is safe for
// concurrent use.
type Client struct {
	base      *url.URL
	token     string
	http      *http.Client
	userAgent string
}

// New returns a client for the server at baseURL (scheme and host, with an
// optional path prefix of a reverse proxy; "/api/v1/maintenance" is added
// unless already present). token, when not empty, is sent as a bearer
// token. httpClient may be nil: a client with a 30-second timeout is used.
// New does not contact the server.
func New(baseURL, token string, httpClient *http.Client) (*Client, error) {
	if strings.TrimSpace(baseURL) == "" {
		baseURL = DefaultBaseURL
	}
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil {
		return nil, fmt.Errorf("invalid API URL %q: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid API URL %q: want http(s)://host[:port]", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.Path = strings.TrimSuffix(u.Path, api.BasePath)
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: u, token: token, http: httpClient, userAgent: "themis-client"}, nil
}

// SetUserAgent sets the User-Agent header of later requests.
func (c *Client) SetUserAgent(ua string) { c.userAgent = ua }

// BaseURL returns the server URL the client talks to (without the API path).
func (c *Client) BaseURL() string { return c.base.String() }

// APIError is an error answer of the server.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Code is the stable problem code (api.Code*); for answers that are not
	// problem+json (e.g. from a proxy) it is "http_<status>".
	Code      string
	Title     string
	Detail    string
	Field     string
	RequestID string
	// ActiveJobID is the active job named by a 409 of RunSchedule.
	ActiveJobID string
}

// IsWriteUnconfirmed reports whether err is the 503 of a write that was
// sent but not seen stored in time (it may still apply).
func IsWriteUnconfirmed(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == api.CodeWriteUnconfirmed
}

func (e *APIError) Error() string {
	var b strings.Builder
	if e.Detail != "" {
		b.WriteString(e.Detail)
	} else if e.Title != "" {
		b.WriteString(e.Title)
	} else {
		b.WriteString(http.StatusText(e.Status))
	}
	fmt.Fprintf(&b, " (HTTP %d, %s", e.Status, e.Code)
	if e.RequestID != "" {
		fmt.Fprintf(&b, ", request %s", e.RequestID)
	}
	b.WriteString(")")
	return b.String()
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool { return hasStatus(err, http.StatusNotFound) }

// IsForbidden reports whether err is a 403 answer.
func IsForbidden(err error) bool { return hasStatus(err, http.StatusForbidden) }

// IsUnauthorized reports whether err is a 401 answer.
func IsUnauthorized(err error) bool { return hasStatus(err, http.StatusUnauthorized) }

// IsConflict reports whether err is a 409 answer.
func IsConflict(err error) bool { return hasStatus(err, http.StatusConflict) }

func hasStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

// ScheduleInput is the body of CreateSchedule: unset (nil or empty) fields
// are not sent, so the server applies its defaults (daily, UTC, enabled,
// window 2–6, the default target...).
type ScheduleInput struct {
	Name              string                                 `json:"name"`
	Description       *string                                `json:"description,omitempty"`
	Target            string                                 `json:"target,omitempty"`
	Frequency         domain.Frequency                       `json:"frequency,omitempty"`
	CronExpression    string                                 `json:"cron_expression,omitempty"`
	Timezone          string                                 `json:"timezone,omitempty"`
	Tasks             []domain.TaskType                      `json:"tasks"`
	TaskOptions       map[domain.TaskType]domain.TaskOptions `json:"task_options,omitempty"`
	Enabled           *bool                                  `json:"enabled,omitempty"`
	EnforceWindow     *bool                                  `json:"enforce_window,omitempty"`
	WindowStartHour   *int                                   `json:"window_start_hour,omitempty"`
	WindowEndHour     *int                                   `json:"window_end_hour,omitempty"`
	HaltOnTaskFailure *bool                                  `json:"halt_on_task_failure,omitempty"`
	TimeLimitMinutes  *int                                   `json:"time_limit_minutes,omitempty"`
	TaskDependencies  []domain.TaskDependency                `json:"task_dependencies,omitempty"`
}

// Status returns GET /status.
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var out api.Status
	err := c.do(ctx, http.MethodGet, "/status", nil, nil, &out)
	return out, err
}

// Ready returns nil when GET /readyz answers 200.
func (c *Client) Ready(ctx context.Context) error {
	return c.doURL(ctx, http.MethodGet, c.base.JoinPath(api.ReadyzPath).String(), nil, nil)
}

// ListSchedules returns every schedule.
func (c *Client) ListSchedules(ctx context.Context) ([]domain.Schedule, error) {
	var out api.ScheduleList
	if err := c.do(ctx, http.MethodGet, "/schedules", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Schedules, nil
}

// GetSchedule returns the schedule with id.
func (c *Client) GetSchedule(ctx context.Context, id string) (domain.Schedule, error) {
	var out domain.Schedule
	err := c.do(ctx, http.MethodGet, "/schedules/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

// CreateSchedule creates a schedule; unset fields of in take the server's
// defaults.
func (c *Client) CreateSchedule(ctx context.Context, in ScheduleInput) (domain.Schedule, error) {
	var out domain.Schedule
	err := c.do(ctx, http.MethodPost, "/schedules", nil, in, &out)
	return out, err
}

// CreateScheduleJSON creates a schedule from a raw JSON object (e.g. a
// file written by hand or by `schedule get -o json`; read-only fields are
// ignored by the server).
func (c *Client) CreateScheduleJSON(ctx context.Context, body json.RawMessage) (domain.Schedule, error) {
	var out domain.Schedule
	err := c.do(ctx, http.MethodPost, "/schedules", nil, body, &out)
	return out, err
}

// UpdateSchedule replaces the writable fields of a schedule (PUT). Fields
// of spec are all sent; use PatchSchedule to change some of them.
func (c *Client) UpdateSchedule(ctx context.Context, id string, spec domain.ScheduleSpec) (domain.Schedule, error) {
	var out domain.Schedule
	err := c.do(ctx, http.MethodPut, "/schedules/"+url.PathEscape(id), nil, spec, &out)
	return out, err
}

// PatchSchedule changes the given fields of a schedule (PATCH), e.g.
// map[string]any{"enabled": false}.
func (c *Client) PatchSchedule(ctx context.Context, id string, patch map[string]any) (domain.Schedule, error) {
	if patch == nil {
		patch = map[string]any{}
	}
	var out domain.Schedule
	err := c.do(ctx, http.MethodPatch, "/schedules/"+url.PathEscape(id), nil, patch, &out)
	return out, err
}

// DeleteSchedule deletes a schedule.
func (c *Client) DeleteSchedule(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/schedules/"+url.PathEscape(id), nil, nil, nil)
}

// RunSchedule starts a job of the schedule now; force runs it outside the
// maintenance window.
func (c *Client) RunSchedule(ctx context.Context, id string, force bool) (domain.Job, error) {
	var out domain.Job
	err := c.do(ctx, http.MethodPost, "/schedules/"+url.PathEscape(id)+"/run", nil, api.RunRequest{Force: force}, &out)
	return out, err
}

// RunScheduleWith starts a job with every run option (a dry run), holding
// the answer up to wait (0: not at all) as RunScheduleWait does.
func (c *Client) RunScheduleWith(ctx context.Context, id string, opts domain.RunOptions, wait time.Duration) (domain.Job, error) {
	req := api.RunRequest{Force: opts.Force, DryRun: opts.DryRun}
	if wait > 0 {
		req.Wait = wait.String()
	}
	var out domain.Job
	err := c.do(ctx, http.MethodPost, "/schedules/"+url.PathEscape(id)+"/run", nil, req, &out)
	return out, err
}

// RunScheduleWait starts a job like RunSchedule and has the server hold the
// answer until the job ends or wait (at most api.MaxJobWait) has passed;
// the job's State tells which. The HTTP client's timeout must exceed wait.
func (c *Client) RunScheduleWait(ctx context.Context, id string, force bool, wait time.Duration) (domain.Job, error) {
	var out domain.Job
	err := c.do(ctx, http.MethodPost, "/schedules/"+url.PathEscape(id)+"/run", nil, api.RunRequest{Force: force, Wait: wait.String()}, &out)
	return out, err
}

// ListJobs returns one page of jobs. A zero Limit leaves the server default.
func (c *Client) ListJobs(ctx context.Context, f api.JobFilter) (api.JobPage, error) {
	q := url.Values{}
	if f.ActiveOnly {
		q.Set("active_only", "true")
	}
	if f.ScheduleID != "" {
		q.Set("schedule_id", f.ScheduleID)
	}
	if f.State != "" {
		q.Set("state", string(f.State))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.NextPageToken != "" {
		q.Set("next_page_token", f.NextPageToken)
	}
	var out api.JobPage
	err := c.do(ctx, http.MethodGet, "/jobs", q, nil, &out)
	return out, err
}

// GetJob returns a job with its tasks and progress.
func (c *Client) GetJob(ctx context.Context, id string) (domain.Job, error) {
	var out domain.Job
	err := c.do(ctx, http.MethodGet, "/jobs/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

// WaitJob returns the job once it has ended or wait (at most
// api.MaxJobWait) has passed, whichever comes first: a long poll, answered
// at once for a job that has already ended. The HTTP client's timeout must
// exceed wait.
func (c *Client) WaitJob(ctx context.Context, id string, wait time.Duration) (domain.Job, error) {
	var out domain.Job
	err := c.do(ctx, http.MethodGet, "/jobs/"+url.PathEscape(id), url.Values{"wait": {wait.String()}}, nil, &out)
	return out, err
}

// CancelJob requests cancellation of an active job; a job that is not
// active is an *APIError with Status 409.
func (c *Client) CancelJob(ctx context.Context, id string) (domain.Job, error) {
	var out domain.Job
	err := c.do(ctx, http.MethodPost, "/jobs/"+url.PathEscape(id)+"/cancel", nil, nil, &out)
	return out, err
}

// Health returns the cached health report (GET /health).
func (c *Client) Health(ctx context.Context) (api.HealthReport, error) {
	var out api.HealthReport
	err := c.do(ctx, http.MethodGet, "/health", nil, nil, &out)
	return out, err
}

// TaskTypes lists the task types with their options and drivers.
func (c *Client) TaskTypes(ctx context.Context) ([]api.TaskTypeInfo, error) {
	var out api.TaskTypeList
	if err := c.do(ctx, http.MethodGet, "/task-types", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.TaskTypes, nil
}

// Targets lists the configured targets (no secrets).
func (c *Client) Targets(ctx context.Context) ([]api.TargetInfo, error) {
	var out api.TargetList
	if err := c.do(ctx, http.MethodGet, "/targets", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Targets, nil
}

// StartDrill starts a DR drill on target ("" = the default target). It
// needs the admin scope.
func (c *Client) StartDrill(ctx context.Context, target string) (domain.Drill, error) {
	return c.StartDrillRequest(ctx, api.DrillStartRequest{Target: target})
}

// StartDrillRequest starts a DR drill as req says: its target ("" = the
// default target) and strategy ("" = the target's). It needs the admin
// scope.
func (c *Client) StartDrillRequest(ctx context.Context, req api.DrillStartRequest) (domain.Drill, error) {
	var out domain.Drill
	var body any
	if req != (api.DrillStartRequest{}) {
		body = req
	}
	err := c.do(ctx, http.MethodPost, "/drills", nil, body, &out)
	return out, err
}

// ListDrills lists drills, newest first. A zero limit leaves the server
// default (50).
func (c *Client) ListDrills(ctx context.Context, limit int) ([]domain.Drill, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out api.DrillList
	if err := c.do(ctx, http.MethodGet, "/drills", q, nil, &out); err != nil {
		return nil, err
	}
	return out.Drills, nil
}

// GetDrill returns a drill with its steps, approvals and RTO/RPO.
func (c *Client) GetDrill(ctx context.Context, id string) (domain.Drill, error) {
	var out domain.Drill
	err := c.do(ctx, http.MethodGet, "/drills/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

// WaitDrill holds for at most w.Wait (up to 60 s; GET /drills/{id}?wait=)
// until the drill is in one of w.Until, its state or step differs from
// w.SinceState / w.SinceStep, or it has ended, and returns it as it then is.
func (c *Client) WaitDrill(ctx context.Context, id string, w api.DrillWait) (domain.Drill, error) {
	q := url.Values{"wait": {w.Wait.String()}}
	if len(w.Until) > 0 {
		until := make([]string, len(w.Until))
		for i, s := range w.Until {
			until[i] = string(s)
		}
		q.Set("until", strings.Join(until, ","))
	}
	if w.SinceState != "" {
		q.Set("since_state", string(w.SinceState))
	}
	if w.SinceStep != "" {
		q.Set("since_step", w.SinceStep)
	}
	var out domain.Drill
	err := c.do(ctx, http.MethodGet, "/drills/"+url.PathEscape(id), q, nil, &out)
	return out, err
}

// ApproveDrill approves the awaited step ("start" or "complete"); a drill
// not awaiting that step is an *APIError with Status 409.
func (c *Client) ApproveDrill(ctx context.Context, id, step, comment string) (domain.Drill, error) {
	return c.decideDrill(ctx, "approve", id, step, comment)
}

// RejectDrill rejects the awaited step; the drill stops and cleans up. A
// drill not awaiting that step is an *APIError with Status 409.
func (c *Client) RejectDrill(ctx context.Context, id, step, comment string) (domain.Drill, error) {
	return c.decideDrill(ctx, "reject", id, step, comment)
}

func (c *Client) decideDrill(ctx context.Context, verb, id, step, comment string) (domain.Drill, error) {
	var out domain.Drill
	err := c.do(ctx, http.MethodPost, "/drills/"+url.PathEscape(id)+"/"+verb, nil, api.DrillDecision{Step: step, Comment: comment}, &out)
	return out, err
}

// AbortDrill aborts a drill (its clean-up still runs); a finished drill is
// an *APIError with Status 409.
func (c *Client) AbortDrill(ctx context.Context, id, reason string) (domain.Drill, error) {
	var out domain.Drill
	err := c.do(ctx, http.MethodPost, "/drills/"+url.PathEscape(id)+"/abort", nil, api.DrillAbortRequest{Reason: reason}, &out)
	return out, err
}

// Audit returns the newest limit audit events at or after since (zero:
// all), oldest first. A zero limit leaves the server default (100). It
// needs the admin scope.
func (c *Client) Audit(ctx context.Context, since time.Time, limit int) (api.AuditList, error) {
	q := url.Values{}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339Nano))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out api.AuditList
	err := c.do(ctx, http.MethodGet, "/audit", q, nil, &out)
	return out, err
}

// do calls path under api.BasePath.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	// path is already escaped (url.PathEscape of every id).
	raw := c.base.String() + api.BasePath + path
	if len(q) > 0 {
		raw += "?" + q.Encode()
	}
	return c.doURL(ctx, method, raw, in, out)
}

func (c *Client) doURL(ctx context.Context, method, rawURL string, in, out any) error {
	var body io.Reader
	if in != nil {
		var b []byte
		switch v := in.(type) {
		case json.RawMessage:
			b = v
		default:
			var err error
			if b, err = json.Marshal(in); err != nil {
				return fmt.Errorf("encode request: %w", err)
			}
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, req.URL.Path, err)
	}
	if resp.StatusCode >= 300 {
		return decodeError(resp, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, req.URL.Path, err)
	}
	return nil
}

func decodeError(resp *http.Response, data []byte) error {
	e := &APIError{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), RequestID: resp.Header.Get(api.RequestIDHeader)}
	var p api.Problem
	if json.Unmarshal(data, &p) == nil && p.Code != "" {
		e.Code, e.Title, e.Detail, e.Field, e.ActiveJobID = p.Code, p.Title, p.Detail, p.Field, p.ActiveJobID
		if p.RequestID != "" {
			e.RequestID = p.RequestID
		}
		return e
	}
	e.Title = http.StatusText(resp.StatusCode)
	// Not a problem: show a little of what came back, on one line.
	snippet := strings.Join(strings.Fields(string(data)), " ")
	if len(snippet) > 200 {
		snippet = snippet[:200] + "…"
	}
	e.Detail = strings.TrimSpace(e.Title + ": " + snippet)
	return e
}
