package history

import (
	"context"
	"fmt"
	"slices"

	"github.com/themis-maintenance/themis/domain"
)

// durationSamples is how many recent successful runs a prediction uses.
const durationSamples = 10

// PredictTaskDurations returns, for each task type that has succeeded on
// target before, the median duration in milliseconds of its newest
// successful runs (at most 10): what a job expects the task to take.
// Task types never run are absent.
func (s *Store) PredictTaskDurations(ctx context.Context, target string, tasks []domain.TaskType) (map[domain.TaskType]int64, error) {
	out := map[domain.TaskType]int64{}
	for _, t := range tasks {
		if _, done := out[t]; done {
			continue
		}
		rows, err := s.query(ctx, `SELECT finished_at_ms - started_at_ms FROM task_results
			WHERE target = ? AND task = ? AND state = ? AND finished_at_ms >= started_at_ms
			ORDER BY finished_at_ms DESC LIMIT ?`, target, string(t), string(domain.StateSucceeded), durationSamples)
		if err != nil {
			return nil, fmt.Errorf("history: task durations of %s on %s: %w", t, target, err)
		}
		var ds []int64
		for rows.Next() {
			var d int64
			if err := rows.Scan(&d); err != nil {
				rows.Close()
				return nil, fmt.Errorf("history: task durations of %s on %s: %w", t, target, err)
			}
			ds = append(ds, d)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("history: task durations of %s on %s: %w", t, target, err)
		}
		if len(ds) > 0 {
			slices.Sort(ds)
			out[t] = ds[len(ds)/2]
		}
	}
	return out, nil
}
