package activities

import (
	"context"
	"time"

	"github.com/themis-maintenance/themis/domain"
)

// BlackoutInput asks whether a blackout of Target is in force at AtMs
// (the job's start, Unix ms).
type BlackoutInput struct {
	Target string `json:"target"`
	AtMs   int64  `json:"at_ms"`
}

// BlackoutResult is the blackout in force, if any.
type BlackoutResult struct {
	Active bool                  `json:"active"`
	Window domain.BlackoutWindow `json:"window,omitzero"`
}

// CheckBlackout reads the target's blackouts from this worker's
// configuration: a scheduled job that starts inside one is skipped.
func (a *Activities) CheckBlackout(ctx context.Context, in BlackoutInput) (BlackoutResult, error) {
	t, _, err := a.Registry.Lookup(in.Target)
	if err != nil {
		return BlackoutResult{}, classify(err, 0, 0)
	}
	w, ok := domain.ActiveBlackout(t.Blackouts, time.UnixMilli(in.AtMs))
	return BlackoutResult{Active: ok, Window: w}, nil
}
