package history

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/themis-maintenance/themis/domain"
)

// TaskRecord is the outcome of one task of one job, kept for operators and
// for trends across jobs.
type TaskRecord struct {
	JobID      string          `json:"job_id"`
	Target     string          `json:"target"`
	Task       domain.TaskType `json:"task"`
	State      domain.JobState `json:"state"`
	StartedAt  time.Time       `json:"started_at"`
	FinishedAt time.Time       `json:"finished_at"`
	Summary    string          `json:"summary"`
	Details    map[string]any  `json:"details"`
	Error      string          `json:"error"`
}

// RecordTaskResult stores rec. Recording the same (JobID, Task, StartedAt)
// again replaces the earlier row, so a retried recording activity does not
// duplicate it. Details must encode as JSON.
//
// A job record (Task "job", see JobRecordTask) is kept once per JobID:
// recording it again, whatever its StartedAt, replaces it. Its Details are
// the job's JSON; their "schedule_id" is kept in a column for
// ListJobRecords.
func (s *Store) RecordTaskResult(ctx context.Context, rec TaskRecord) error {
	if rec.Task == "" || rec.Target == "" {
		return fmt.Errorf("history: task result needs a target and a task (got %q, %q)", rec.Target, rec.Task)
	}
	details, err := marshalDetails(rec.Details)
	if err != nil {
		return fmt.Errorf("history: record task result: %w", err)
	}
	finished := rec.FinishedAt
	if finished.IsZero() {
		finished = time.Now()
	}
	conflict := `(job_id, task, started_at_ms)`
	scheduleID := ""
	if rec.Task == JobRecordTask {
		conflict = `(job_id) WHERE task = 'job'`
		if v, ok := rec.Details["schedule_id"].(string); ok {
			scheduleID = v
		}
	}
	// Two writers of the same row at once (a retried RecordJob on another
	// worker): PostgreSQL's ON CONFLICT resolves a conflict on its arbiter
	// index only, so the loser can instead hit the table's other unique
	// key; the retry then finds the row and updates it.
	for attempt := 1; ; attempt++ {
		_, err = s.exec(ctx, `INSERT INTO task_results
			(job_id, target, task, state, started_at_ms, finished_at_ms, summary, details_json, error, schedule_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT `+conflict+` DO UPDATE SET
				target = excluded.target, state = excluded.state, started_at_ms = excluded.started_at_ms,
				finished_at_ms = excluded.finished_at_ms, summary = excluded.summary,
				details_json = excluded.details_json, error = excluded.error, schedule_id = excluded.schedule_id`,
			rec.JobID, rec.Target, string(rec.Task), string(rec.State), ms(rec.StartedAt), ms(finished),
			rec.Summary, details, rec.Error, scheduleID)
		if err == nil {
			return nil
		}
		if attempt >= 3 || !uniqueViolation(err) || ctx.Err() != nil {
			return fmt.Errorf("history: record task result: %w", err)
		}
	}
}

// uniqueViolation reports whether err is PostgreSQL's unique_violation.
func uniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == pgerrcode.UniqueViolation
}

// TaskResults returns the newest task results of target (all targets when
// target is empty), newest first, at most limit (0 = 100).
func (s *Store) TaskResults(ctx context.Context, target string, limit int) ([]TaskRecord, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.query(ctx, `SELECT job_id, target, task, state, started_at_ms, finished_at_ms,
			summary, details_json, error
		FROM task_results WHERE (? = '' OR target = ?)
		ORDER BY finished_at_ms DESC, id DESC LIMIT ?`, target, target, limit)
	if err != nil {
		return nil, fmt.Errorf("history: task results: %w", err)
	}
	defer rows.Close()
	var out []TaskRecord
	for rows.Next() {
		var rec TaskRecord
		var task, state, details string
		var started, finished int64
		if err := rows.Scan(&rec.JobID, &rec.Target, &task, &state, &started, &finished,
			&rec.Summary, &details, &rec.Error); err != nil {
			return nil, fmt.Errorf("history: task results: %w", err)
		}
		rec.Task, rec.State = domain.TaskType(task), domain.JobState(state)
		rec.StartedAt, rec.FinishedAt = fromMs(started), fromMs(finished)
		rec.Details = unmarshalDetails(details)
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: task results: %w", err)
	}
	return out, nil
}
