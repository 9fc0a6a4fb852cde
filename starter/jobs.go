package starter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/themis-maintenance/themis/activities"
	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/history"
	"github.com/themis-maintenance/themis/workflows"
)

// RunSchedule starts a job of schedule id now. A forced run bypasses the
// maintenance window. The job is returned in state running.
//
// A schedule with an active job (a run the Schedule started, or a manual
// run) is refused with a *domain.ActiveJobError (409). Manual runs of one
// schedule are atomic against each other across API replicas: each takes
// the schedule's manual-run claim for its job id first; a claim whose job
// has ended is taken over by the next run.
func (s *Service) RunSchedule(ctx context.Context, id string, force bool, principal string) (domain.Job, error) {
	return s.RunScheduleWith(ctx, id, domain.RunOptions{Force: force}, principal)
}

// RunScheduleWith is RunSchedule with every run option: a dry run starts
// the same workflow with DryRun set (its tasks plan and execute nothing).
func (s *Service) RunScheduleWith(ctx context.Context, id string, opts domain.RunOptions, principal string) (domain.Job, error) {
	force := opts.Force
	desc, err := s.describe(ctx, id)
	if err != nil {
		return domain.Job{}, err
	}
	sc, err := s.fromDescription(id, desc)
	if err != nil {
		return domain.Job{}, err
	}
	if running := desc.GetInfo().GetRunningWorkflows(); len(running) > 0 {
		return domain.Job{}, &domain.ActiveJobError{ScheduleID: id, JobID: running[0].GetWorkflowId()}
	}
	// Runs started before manual runs were claimed: visibility knows them.
	if active := s.activeJob(ctx, id); active != "" {
		return domain.Job{}, &domain.ActiveJobError{ScheduleID: id, JobID: active}
	}
	now := s.opts.Now()
	jobID := workflows.ManualJobID(id, now.UnixMilli())
	held, err := s.claim(ctx, claimManualRun, id, jobID, func(h *claimHolder) bool { return s.jobEnded(ctx, h) })
	if err != nil {
		return domain.Job{}, err
	}
	if held != nil {
		return domain.Job{}, &domain.ActiveJobError{ScheduleID: id, JobID: held.Owner}
	}
	in := workflows.MaintenanceInput{
		ScheduleID: id, ScheduleName: sc.Name, Spec: sc.ScheduleSpec, Forced: force, DryRun: opts.DryRun,
		TriggeredBy: principal, HeartbeatTimeout: s.opts.HeartbeatTimeout,
	}
	run, err := s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       jobID,
		TaskQueue:                s.queueOf(sc.Target),
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		// Two runs asked for in the same millisecond share the job id (and
		// so the claim): the second must learn it did not start the job,
		// not be handed the first one's run.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.ScheduleIDKey.ValueSet(id), workflows.TargetKey.ValueSet(sc.Target),
			workflows.JobStateKey.ValueSet(string(domain.StatePending))),
		Memo:          map[string]any{memoSchedule: sc.ScheduleSpec},
		StaticSummary: jobSummary(sc.Name, sc.Target, opts) + " — started by " + principal,
		StaticDetails: jobDetails(sc.ScheduleSpec),
	}, workflows.MaintenanceWorkflowName, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		// Another request started this very job id: the claim is its.
		return domain.Job{}, &domain.ActiveJobError{ScheduleID: id, JobID: jobID}
	}
	if err != nil {
		s.releaseQuietly(claimManualRun, id, jobID)
		return domain.Job{}, mapErr(fmt.Errorf("start job of %s: %w", id, err))
	}
	job := domain.Job{
		ID: run.GetID(), RunID: run.GetRunID(), ScheduleID: id, ScheduleName: sc.Name, Target: sc.Target,
		State: domain.StateRunning, Forced: force, DryRun: opts.DryRun, TriggeredBy: principal, StartedAtMs: now.UnixMilli(),
		UIURL: s.uiURL(run.GetID(), run.GetRunID()), Tasks: make([]domain.TaskRun, len(sc.Tasks)),
	}
	for i, t := range sc.Tasks {
		job.Tasks[i] = domain.TaskRun{TaskType: t, State: domain.StatePending}
	}
	s.rm.putJob(job)
	return job, nil
}

// activeJob returns a running job of schedule id that visibility knows of,
// or "". Visibility lags behind: a job it still lists as running is
// described, and one that has ended is not active.
func (s *Service) activeJob(ctx context.Context, id string) string {
	resp, err := s.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: s.opts.Namespace, PageSize: 5,
		Query: fmt.Sprintf("WorkflowType = '%s' AND %s = '%s' AND ExecutionStatus = 'Running'",
			workflows.MaintenanceWorkflowName, workflows.ScheduleIDKey.GetName(), id),
	})
	if err != nil {
		return ""
	}
	for _, ex := range resp.GetExecutions() {
		wid := ex.GetExecution().GetWorkflowId()
		d, err := s.c.DescribeWorkflowExecution(ctx, wid, "")
		switch {
		case err != nil && errors.Is(mapErr(err), domain.ErrNotFound):
		case err != nil, d.GetWorkflowExecutionInfo().GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
			return wid
		}
	}
	return ""
}

// jobEnded reports whether the job holding a manual-run claim has ended
// (or never started, once the claim is past its grace period).
func (s *Service) jobEnded(ctx context.Context, h *claimHolder) bool {
	d, err := s.c.DescribeWorkflowExecution(ctx, h.Owner, "")
	if err != nil {
		return errors.Is(mapErr(err), domain.ErrNotFound) && s.claimOld(h)
	}
	return d.GetWorkflowExecutionInfo().GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING
}

// GetJob returns a job with live progress of its running task.
func (s *Service) GetJob(ctx context.Context, id string) (domain.Job, error) {
	if !validJobID(id) {
		return domain.Job{}, fmt.Errorf("%w: job %q", domain.ErrNotFound, id)
	}
	job, err := s.describeJob(ctx, id)
	if errors.Is(err, domain.ErrNotFound) && s.opts.Records != nil {
		// Temporal's retention removed the workflow: the history store
		// keeps what the job recorded when it finished.
		rec, rerr := s.opts.Records.JobRecord(ctx, id)
		if rerr == nil {
			rec.UIURL = ""
			return rec, nil
		}
		if !errors.Is(rerr, domain.ErrNotFound) {
			return domain.Job{}, fmt.Errorf("job %s from the history store: %w", id, rerr)
		}
	}
	return job, err
}

func validJobID(id string) bool {
	return id != "" && len(id) <= 255 && !strings.ContainsAny(id, "/\\\x00")
}

// describeJob reads a job with one describe: the task states from its
// progress memo (what the workflow recorded after each task), the running
// task's progress and attempt from its pending activity's heartbeat. A
// finished job is read from its history store record when there is one;
// the workflow's progress query is asked only of a job without a memo (one
// started before the memo existed) or without a record.
func (s *Service) describeJob(ctx context.Context, id string) (domain.Job, error) {
	desc, err := s.c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return domain.Job{}, mapErr(fmt.Errorf("describe job %s: %w", id, err))
	}
	info := desc.GetWorkflowExecutionInfo()
	if info.GetType().GetName() != workflows.MaintenanceWorkflowName {
		return domain.Job{}, fmt.Errorf("%w: %s is not a maintenance job", domain.ErrNotFound, id)
	}
	job := s.jobFromInfo(info)
	_, hasMemo := info.GetMemo().GetFields()[workflows.ProgressMemo]
	if job.State.Terminal() && s.opts.Records != nil {
		if rec, err := s.opts.Records.JobRecord(ctx, id); err == nil {
			rec.UIURL = job.UIURL
			return rec, nil
		}
	}
	// A job no worker has run yet (its target group's workers are down or
	// busy: no workflow task completed, history of at most 3 events) has
	// nothing to answer a query with, and the query would wait for a
	// worker; visibility and the memo say it is pending, with its tasks.
	notRunYet := info.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING && info.GetHistoryLength() <= 3
	if (!hasMemo || job.State.Terminal()) && !notRunYet {
		var queried domain.Job
		if v, qerr := s.c.QueryWorkflow(ctx, id, info.GetExecution().GetRunId(), workflows.ProgressQuery); qerr == nil && v.Get(&queried) == nil {
			queried.UIURL = job.UIURL
			// The execution status is authoritative for the final state.
			if job.State.Terminal() && !(job.State == domain.StateSucceeded && queried.State == domain.StateSkipped) {
				queried.State = job.State
			}
			if queried.FinishedAtMs == 0 {
				queried.FinishedAtMs = job.FinishedAtMs
			}
			job = queried
		}
	}
	if job.State == domain.StateRunning || job.State == domain.StatePending {
		applyHeartbeats(&job, desc.GetPendingActivities())
	}
	return job, nil
}

// jobFromInfo builds a job from visibility data alone (no worker needed).
func (s *Service) jobFromInfo(info *workflowpb.WorkflowExecutionInfo) domain.Job {
	id, runID := info.GetExecution().GetWorkflowId(), info.GetExecution().GetRunId()
	job := domain.Job{ID: id, RunID: runID, UIURL: s.uiURL(id, runID), Tasks: []domain.TaskRun{}}
	job.StartedAtMs = info.GetStartTime().AsTime().UnixMilli()
	if info.GetCloseTime() != nil {
		job.FinishedAtMs = info.GetCloseTime().AsTime().UnixMilli()
		job.DurationMs = job.FinishedAtMs - job.StartedAtMs
	}
	sas := info.GetSearchAttributes().GetIndexedFields()
	dc := converter.GetDefaultDataConverter()
	str := func(key string) string {
		var v string
		if p, ok := sas[key]; ok {
			_ = dc.FromPayload(p, &v)
		}
		return v
	}
	job.ScheduleID = str(workflows.ScheduleIDKey.GetName())
	job.Target = str(workflows.TargetKey.GetName())
	saState := domain.JobState(str(workflows.JobStateKey.GetName()))
	if p, ok := info.GetMemo().GetFields()[memoSchedule]; ok {
		var spec domain.ScheduleSpec
		if dc.FromPayload(p, &spec) == nil {
			job.ScheduleName = spec.Name
			for _, t := range spec.Tasks {
				job.Tasks = append(job.Tasks, domain.TaskRun{TaskType: t, State: domain.StatePending})
			}
		}
	}
	switch info.GetStatus() {
	case enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
		job.State = domain.StateRunning
		if saState == domain.StatePending || saState == domain.StateWaiting {
			job.State = saState
		}
		if p, ok := info.GetMemo().GetFields()[workflows.ProgressMemo]; ok {
			var progress workflows.JobProgress
			if dc.FromPayload(p, &progress) == nil {
				progress.Apply(&job)
			}
		}
	case enums.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		job.State = domain.StateSucceeded
		if saState == domain.StateSkipped {
			job.State = domain.StateSkipped
		}
	case enums.WORKFLOW_EXECUTION_STATUS_CANCELED:
		job.State = domain.StateCancelled
	case enums.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		job.State, job.ErrorMessage = domain.StateCancelled, "terminated"
	default:
		job.State = domain.StateFailed
	}
	return job
}

// applyHeartbeats copies the running task's heartbeat progress and attempt
// into the job and recomputes the job's progress.
func applyHeartbeats(job *domain.Job, pending []*workflowpb.PendingActivityInfo) {
	dc := converter.GetDefaultDataConverter()
	for _, pa := range pending {
		for i := range job.Tasks {
			t := &job.Tasks[i]
			if string(t.TaskType) != pa.GetActivityType().GetName() || t.State.Terminal() {
				continue
			}
			t.State = domain.StateRunning
			t.Attempt = int(pa.GetAttempt())
			if pa.GetLastStartedTime() != nil && t.StartedAtMs == 0 {
				t.StartedAtMs = pa.GetLastStartedTime().AsTime().UnixMilli()
			}
			if payloads := pa.GetHeartbeatDetails().GetPayloads(); len(payloads) > 0 {
				var hb activities.Heartbeat
				if dc.FromPayload(payloads[len(payloads)-1], &hb) == nil {
					t.ProgressPct = hb.Pct
					if t.Details == nil {
						t.Details = map[string]any{}
					}
					t.Details["progress_note"] = hb.Note
				}
			}
			if f := pa.GetLastFailure(); f != nil {
				t.ErrorMessage = "attempt failed, retrying: " + f.GetMessage()
			}
			break
		}
	}
	if n := len(job.Tasks); n > 0 {
		var sum float64
		for _, t := range job.Tasks {
			if t.State.Terminal() {
				sum += 100
			} else {
				sum += t.ProgressPct
			}
		}
		job.ProgressPct = sum / float64(n)
	}
}

// ListJobs lists jobs from the read model, running first, then by start
// time, newest first; past the model's window, finished jobs are paged
// from the history store. The next_page_token is a cursor (the last job's
// place in that order), bound to the filters.
func (s *Service) ListJobs(ctx context.Context, f api.JobFilter) (api.JobPage, error) {
	if f.ScheduleID != "" && !domain.ValidID(f.ScheduleID) {
		return api.JobPage{}, &domain.ValidationError{Field: "schedule_id", Message: "not a schedule id"}
	}
	if f.State != "" && !f.State.Valid() {
		return api.JobPage{}, &domain.ValidationError{Field: "state", Message: fmt.Sprintf("unknown state %q", f.State)}
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	filters := fmt.Sprintf("jobs|%s|%t|%s", f.ScheduleID, f.ActiveOnly, f.State)
	var after *jobCursor
	if f.NextPageToken != "" {
		raw, err := DecodePageToken(filters, f.NextPageToken)
		if err != nil {
			return api.JobPage{}, err
		}
		c, ok := parseJobCursor(string(raw))
		if !ok {
			return api.JobPage{}, &domain.ValidationError{Field: "next_page_token", Message: "not a page token of this listing"}
		}
		after = &c
	}
	if err := s.rm.fresh(ctx); err != nil {
		return api.JobPage{}, err
	}
	window, asOf, rev := s.rm.jobList()
	match := func(j domain.Job) bool {
		return (f.ScheduleID == "" || j.ScheduleID == f.ScheduleID) &&
			(!f.ActiveOnly || !j.State.Terminal()) && (f.State == "" || j.State == f.State)
	}
	page := api.JobPage{Jobs: []domain.Job{}, AsOfMs: asOf.UnixMilli(), Revision: rev}
	more := false
	for _, j := range window {
		if !match(j) || (after != nil && !after.precedes(j)) {
			continue
		}
		if len(page.Jobs) == limit {
			more = true
			break
		}
		page.Jobs = append(page.Jobs, j)
	}
	// Past a full window, finished jobs come from the history store.
	if !more && len(page.Jobs) < limit && len(window) >= readModelJobWindow && !f.ActiveOnly &&
		(f.State == "" || f.State.Terminal()) && s.opts.Records != nil {
		floor := cursorOf(window[len(window)-1])
		if after != nil && floor.precedesCursor(*after) {
			floor = *after
		}
		recs, err := s.opts.Records.ListJobRecords(ctx, history.JobRecordFilter{
			ScheduleID: f.ScheduleID, State: f.State, Limit: limit - len(page.Jobs) + 1,
			BeforeMs: floor.startedMs, BeforeID: floor.id,
		})
		if err != nil {
			return api.JobPage{}, fmt.Errorf("list jobs from the history store: %w", err)
		}
		for _, j := range recs {
			if len(page.Jobs) == limit {
				more = true
				break
			}
			j.UIURL = ""
			page.Jobs = append(page.Jobs, j)
		}
	}
	page.Count = len(page.Jobs)
	if more {
		page.NextPageToken = EncodePageToken(filters, []byte(cursorOf(page.Jobs[len(page.Jobs)-1]).String()))
	}
	return page, nil
}

// jobCursor is a job's place in the GET /jobs order.
type jobCursor struct {
	running   bool
	startedMs int64
	id        string
}

func cursorOf(j domain.Job) jobCursor {
	return jobCursor{running: !j.State.Terminal(), startedMs: j.StartedAtMs, id: j.ID}
}

func (c jobCursor) String() string {
	r := 0
	if c.running {
		r = 1
	}
	return fmt.Sprintf("%d|%d|%s", r, c.startedMs, c.id)
}

func parseJobCursor(s string) (jobCursor, bool) {
	parts := strings.SplitN(s, "|", 3)
	if len(parts) != 3 || (parts[0] != "0" && parts[0] != "1") || !validJobID(parts[2]) {
		return jobCursor{}, false
	}
	ms, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return jobCursor{}, false
	}
	return jobCursor{running: parts[0] == "1", startedMs: ms, id: parts[2]}, true
}

// precedes reports whether the cursor comes before job j in the order.
func (c jobCursor) precedes(j domain.Job) bool { return c.precedesCursor(cursorOf(j)) }

func (c jobCursor) precedesCursor(o jobCursor) bool {
	if c.running != o.running {
		return c.running
	}
	if c.startedMs != o.startedMs {
		return o.startedMs < c.startedMs
	}
	return o.id < c.id
}

// CancelJob requests cancellation of a running job; the running task sees it
// at its next heartbeat. A job that is not active is domain.ErrConflict.
func (s *Service) CancelJob(ctx context.Context, id, principal string) (domain.Job, error) {
	job, err := s.GetJob(ctx, id)
	if err != nil {
		return domain.Job{}, err
	}
	if job.State.Terminal() {
		return job, fmt.Errorf("%w: job %s is already %s", domain.ErrConflict, id, job.State)
	}
	if err := s.c.CancelWorkflow(ctx, id, ""); err != nil {
		return domain.Job{}, mapErr(fmt.Errorf("cancel job %s: %w", id, err))
	}
	s.opts.Logger.Info("job cancel requested", "job_id", id, "principal", principal)
	return job, nil
}
