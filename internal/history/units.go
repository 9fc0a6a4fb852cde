package history

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/themis-maintenance/themis/domain"
)

// unitSamples is how many recent runs of a unit its prediction uses.
const unitSamples = 10

// UnitDurations implements driver.UnitHistory from the command log: for
// each object of target, the median over its newest (at most 10) runs by
// task of the time task's statements on it took in one attempt, counting
// only attempts none of whose statements on it failed.
func (s *Store) UnitDurations(ctx context.Context, target string, task domain.TaskType) (map[string]time.Duration, error) {
	rows, err := s.query(ctx, `SELECT object, d FROM (
			SELECT object, SUM(duration_ms) AS d,
				ROW_NUMBER() OVER (PARTITION BY object ORDER BY MAX(id) DESC) AS rn
			FROM commands WHERE target = ? AND task = ? AND object <> ''
			GROUP BY object, job_id, attempt
			HAVING SUM(CASE WHEN error = '' THEN 0 ELSE 1 END) = 0
		) runs WHERE rn <= ?`, target, string(task), unitSamples)
	if err != nil {
		return nil, fmt.Errorf("history: unit durations of %s on %s: %w", task, target, err)
	}
	defer rows.Close()
	byObject := map[string][]int64{}
	for rows.Next() {
		var obj string
		var d int64
		if err := rows.Scan(&obj, &d); err != nil {
			return nil, fmt.Errorf("history: unit durations of %s on %s: %w", task, target, err)
		}
		byObject[obj] = append(byObject[obj], d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: unit durations of %s on %s: %w", task, target, err)
	}
	out := make(map[string]time.Duration, len(byObject))
	for obj, ds := range byObject {
		slices.Sort(ds)
		out[obj] = time.Duration(ds[len(ds)/2]) * time.Millisecond
	}
	return out, nil
}

// LastGoodChecks implements driver.UnitHistory: for each object of target,
// when one of tasks last finished a statement on it without error, in a
// task run that succeeded (a check that finds corruption returns rows, not
// an error: its task failed, and its relations do not count as checked).
func (s *Store) LastGoodChecks(ctx context.Context, target string, tasks []domain.TaskType) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if len(tasks) == 0 {
		return out, nil
	}
	args := []any{target}
	for _, t := range tasks {
		args = append(args, string(t))
	}
	args = append(args, string(domain.StateSucceeded))
	rows, err := s.query(ctx, `SELECT object, MAX(finished_at_ms) FROM commands
		WHERE target = ? AND task IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(tasks)), ", ")+`)
			AND object <> '' AND error = ''
			AND EXISTS (SELECT 1 FROM task_results r
				WHERE r.job_id = commands.job_id AND r.task = commands.task AND r.state = ?)
		GROUP BY object`, args...)
	if err != nil {
		return nil, fmt.Errorf("history: last good checks on %s: %w", target, err)
	}
	defer rows.Close()
	for rows.Next() {
		var obj string
		var at int64
		if err := rows.Scan(&obj, &at); err != nil {
			return nil, fmt.Errorf("history: last good checks on %s: %w", target, err)
		}
		out[obj] = time.UnixMilli(at).UTC()
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: last good checks on %s: %w", target, err)
	}
	return out, nil
}

// CarriedUnits are the units of work a run of a schedule's task left when
// its budget ran out; the next run of the schedule starts with them.
type CarriedUnits struct {
	ScheduleID string    `json:"schedule_id"`
	Target     string    `json:"target"`
	Task       string    `json:"task"`
	Units      []string  `json:"units"`
	StoppedBy  string    `json:"stopped_by"`
	JobID      string    `json:"job_id"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// SaveCarriedUnits records what c.JobID left of its task (no units: it
// left nothing, and the row goes).
func (s *Store) SaveCarriedUnits(ctx context.Context, c CarriedUnits) error {
	if len(c.Units) == 0 {
		if _, err := s.exec(ctx, `DELETE FROM carried_units WHERE schedule_id = ? AND target = ? AND task = ?`,
			c.ScheduleID, c.Target, c.Task); err != nil {
			return fmt.Errorf("history: clear units left by %s: %w", c.JobID, err)
		}
		return nil
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = time.Now()
	}
	units, err := json.Marshal(c.Units)
	if err != nil {
		return fmt.Errorf("history: encode units left by %s: %w", c.JobID, err)
	}
	_, err = s.exec(ctx, `INSERT INTO carried_units (schedule_id, target, task, units, stopped_by, job_id, updated_at_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (schedule_id, target, task) DO UPDATE SET units = excluded.units,
			stopped_by = excluded.stopped_by, job_id = excluded.job_id, updated_at_ms = excluded.updated_at_ms`,
		c.ScheduleID, c.Target, c.Task, string(units), c.StoppedBy, c.JobID, ms(c.UpdatedAt))
	if err != nil {
		return fmt.Errorf("history: record units left by %s: %w", c.JobID, err)
	}
	return nil
}

// LoadCarriedUnits returns what the last run of schedule's task on target
// left; ok is false when it left nothing.
func (s *Store) LoadCarriedUnits(ctx context.Context, scheduleID, target, task string) (c CarriedUnits, ok bool, err error) {
	var units string
	var at int64
	err = s.queryRow(ctx, `SELECT units, stopped_by, job_id, updated_at_ms FROM carried_units
		WHERE schedule_id = ? AND target = ? AND task = ?`, scheduleID, target, task).Scan(&units, &c.StoppedBy, &c.JobID, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return CarriedUnits{}, false, nil
	}
	if err != nil {
		return CarriedUnits{}, false, fmt.Errorf("history: read units left for %s/%s: %w", scheduleID, task, err)
	}
	if err := json.Unmarshal([]byte(units), &c.Units); err != nil {
		return CarriedUnits{}, false, fmt.Errorf("history: decode units left for %s/%s: %w", scheduleID, task, err)
	}
	c.ScheduleID, c.Target, c.Task, c.UpdatedAt = scheduleID, target, task, time.UnixMilli(at).UTC()
	return c, len(c.Units) > 0, nil
}
