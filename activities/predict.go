package activities

import (
	"context"

	"github.com/themis-maintenance/themis/domain"
)

// DurationPredictor is the history store's view of past task durations.
type DurationPredictor interface {
	PredictTaskDurations(ctx context.Context, target string, tasks []domain.TaskType) (map[domain.TaskType]int64, error)
}

// PredictInput names a job's target and tasks.
type PredictInput struct {
	Target string            `json:"target"`
	Tasks  []domain.TaskType `json:"tasks"`
}

// PredictOutput is each task's expected duration in ms (the median of its
// recent successful runs on the target); a task never run is absent.
type PredictOutput struct {
	Ms map[domain.TaskType]int64 `json:"ms"`
}

// PredictDurations reads what a job's tasks are expected to take from the
// history store. Without a store that keeps task results it predicts
// nothing.
func (a *Activities) PredictDurations(ctx context.Context, in PredictInput) (PredictOutput, error) {
	p, ok := a.History.(DurationPredictor)
	if !ok {
		return PredictOutput{Ms: map[domain.TaskType]int64{}}, nil
	}
	ms, err := p.PredictTaskDurations(ctx, in.Target, in.Tasks)
	if err != nil {
		return PredictOutput{}, err
	}
	return PredictOutput{Ms: ms}, nil
}
