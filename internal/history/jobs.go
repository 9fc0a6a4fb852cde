package history

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/themis-maintenance/themis/domain"
)

// JobRecordTask is the task name under which whole jobs are kept in
// task_results, beside the records of their tasks (activities.RecordJob
// writes them with the job's JSON as Details).
const JobRecordTask domain.TaskType = "job"

// MaxJobRecordLimit bounds JobRecordFilter.Limit.
const MaxJobRecordLimit = 10000

// JobRecordFilter selects job records for ListJobRecords. Empty fields
// match everything.
type JobRecordFilter struct {
	Target     string
	ScheduleID string
	State      domain.JobState
	// Limit is the most records returned (0 = 100, at most
	// MaxJobRecordLimit).
	Limit int
	// BeforeMs, when not zero, keeps only jobs started before it (Unix ms):
	// the StartedAtMs of the last job of the previous page. With BeforeID
	// (that job's ID) a job started in the same millisecond whose ID sorts
	// before BeforeID is kept too, so no job is skipped between pages.
	BeforeMs int64
	BeforeID string
}

// JobRecord returns the job jobID as RecordJob stored it; the error wraps
// domain.ErrNotFound when there is none. It is there after Temporal's
// retention has removed the workflow, until Prune removes it.
func (s *Store) JobRecord(ctx context.Context, jobID string) (domain.Job, error) {
	row := s.queryRow(ctx, `SELECT `+jobColumns+` FROM task_results WHERE task = 'job' AND job_id = ?`, jobID)
	j, err := scanJob(row)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Job{}, fmt.Errorf("history: job record %q: %w", jobID, domain.ErrNotFound)
	}
	if err != nil {
		return domain.Job{}, fmt.Errorf("history: job record %q: %w", jobID, err)
	}
	return j, nil
}

// ListJobRecords returns the stored job records that match f, newest start
// first (ties by job ID, descending).
func (s *Store) ListJobRecords(ctx context.Context, f JobRecordFilter) ([]domain.Job, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxJobRecordLimit)
	rows, err := s.query(ctx, `SELECT `+jobColumns+` FROM task_results
		WHERE task = 'job' AND (? = '' OR target = ?) AND (? = '' OR schedule_id = ?) AND (? = '' OR state = ?)
			AND (? = 0 OR started_at_ms < ? OR (started_at_ms = ? AND job_id < ?))
		ORDER BY started_at_ms DESC, job_id DESC LIMIT ?`,
		f.Target, f.Target, f.ScheduleID, f.ScheduleID, string(f.State), string(f.State),
		f.BeforeMs, f.BeforeMs, f.BeforeMs, f.BeforeID, limit)
	if err != nil {
		return nil, fmt.Errorf("history: list job records: %w", err)
	}
	defer rows.Close()
	out := []domain.Job{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("history: list job records: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: list job records: %w", err)
	}
	return out, nil
}

const jobColumns = `job_id, target, state, started_at_ms, finished_at_ms, summary, error, schedule_id, details_json`

// scanJob decodes a job record: the stored job JSON, with the columns
// filling in what it lacks (a record written by hand, or not a job's JSON).
func scanJob(sc scanner) (domain.Job, error) {
	var (
		id, target, state, summary, errMsg, scheduleID, details string
		started, finished                                       int64
	)
	if err := sc.Scan(&id, &target, &state, &started, &finished, &summary, &errMsg, &scheduleID, &details); err != nil {
		return domain.Job{}, err
	}
	var j domain.Job
	_ = json.Unmarshal([]byte(details), &j)
	if j.ID == "" {
		j.ID = id
	}
	if j.Target == "" {
		j.Target = target
	}
	if j.State == "" {
		j.State = domain.JobState(state)
	}
	if j.ScheduleID == "" {
		j.ScheduleID = scheduleID
	}
	if j.StartedAtMs == 0 {
		j.StartedAtMs = started
	}
	if j.FinishedAtMs == 0 {
		j.FinishedAtMs = finished
	}
	if j.ResultSummary == "" {
		j.ResultSummary = summary
	}
	if j.ErrorMessage == "" {
		j.ErrorMessage = errMsg
	}
	return j, nil
}
