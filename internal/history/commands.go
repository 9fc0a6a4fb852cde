package history

import (
	"context"
	"fmt"
	"strings"

	"github.com/themis-maintenance/themis/driver/commandlog"
)

// MaxCommandLimit bounds CommandFilter.Limit.
const MaxCommandLimit = 1000

// CommandFilter selects command-log rows for ListCommands. Empty fields
// match everything.
type CommandFilter struct {
	Target string
	// Object matches the command's object exactly (schema.table, an index).
	Object string
	JobID  string
	// SinceMs keeps commands started at or after it (Unix ms).
	SinceMs int64
	// BeforeID keeps commands with a smaller id: the last id of the
	// previous page (newest first).
	BeforeID int64
	// Limit is the most rows returned (0 = 100, at most MaxCommandLimit).
	Limit int
}

// RecordCommands appends a task's commands to the command log in one
// transaction (implements commandlog.Sink).
func (s *Store) RecordCommands(ctx context.Context, cmds []commandlog.Command) error {
	if len(cmds) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(t tx) error {
		st, err := t.prepare(ctx, `INSERT INTO commands (job_id, schedule_id, target, task, attempt, object, operation,
			statement, started_at_ms, finished_at_ms, duration_ms, rows_affected, throttled_ms, error)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, c := range cmds {
			if _, err := st.ExecContext(ctx, c.JobID, c.ScheduleID, c.Target, c.Task, c.Attempt, c.Object, c.Operation,
				strings.ToValidUTF8(c.Statement, "?"), c.StartMs, c.EndMs, c.DurationMs, c.RowsAffected, c.ThrottledMs,
				strings.ToValidUTF8(c.Error, "?")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("history: record %d command(s): %w", len(cmds), err)
	}
	return nil
}

// ListCommands returns the commands that match f, newest first (by id).
func (s *Store) ListCommands(ctx context.Context, f CommandFilter) ([]commandlog.Command, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxCommandLimit)
	var where []string
	var args []any
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	if f.Target != "" {
		add("target = ?", f.Target)
	}
	if f.Object != "" {
		add("object = ?", f.Object)
	}
	if f.JobID != "" {
		add("job_id = ?", f.JobID)
	}
	if f.SinceMs > 0 {
		add("started_at_ms >= ?", f.SinceMs)
	}
	if f.BeforeID > 0 {
		add("id < ?", f.BeforeID)
	}
	q := `SELECT id, job_id, schedule_id, target, task, attempt, object, operation, statement,
		started_at_ms, finished_at_ms, duration_ms, rows_affected, throttled_ms, error FROM commands`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit)
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("history: list commands: %w", err)
	}
	defer rows.Close()
	out := []commandlog.Command{}
	for rows.Next() {
		var c commandlog.Command
		if err := rows.Scan(&c.ID, &c.JobID, &c.ScheduleID, &c.Target, &c.Task, &c.Attempt, &c.Object, &c.Operation,
			&c.Statement, &c.StartMs, &c.EndMs, &c.DurationMs, &c.RowsAffected, &c.ThrottledMs, &c.Error); err != nil {
			return nil, fmt.Errorf("history: list commands: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: list commands: %w", err)
	}
	return out, nil
}
