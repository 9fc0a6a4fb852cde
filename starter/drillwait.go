package starter

import (
	"context"
	"fmt"

	"go.temporal.io/api/enums/v1"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
)

// WaitDrill holds until drill id meets w (reaches one of w.Until, differs
// from w.SinceState / w.SinceStep, or ends) or w.Wait has passed, then
// returns the drill as GetDrill does. A drill that already meets w is
// answered at once.
//
// The wait is a long poll on the drill's event history: nothing is written
// to the drill's history (any number of watchers), and the state is read
// again only after the workflow's code ran (a workflow task completed) or
// the workflow closed — a handful of reads per drill, however long the
// wait. It ends early when ctx does (the HTTP client went away), with
// ctx's error.
func (s *Service) WaitDrill(ctx context.Context, id string, w api.DrillWait) (domain.Drill, error) {
	d, seen, err := s.getDrill(ctx, id)
	if err != nil || w.Wait <= 0 || w.Done(d) || seen == 0 {
		return d, err
	}
	wctx, cancel := context.WithTimeout(ctx, w.Wait)
	defer cancel()
	iter := s.c.GetWorkflowHistory(wctx, id, d.RunID, true, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			break // the wait passed (or the history is gone): read once more below
		}
		if ev.GetEventId() <= seen || !drillStateMayChange(ev.GetEventType()) {
			continue
		}
		cur, n, err := s.getDrill(ctx, id)
		if err != nil {
			continue
		}
		d, seen = cur, max(seen, n)
		if w.Done(d) {
			return d, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return domain.Drill{}, fmt.Errorf("wait for drill %s: %w", id, err)
	}
	return s.GetDrill(ctx, id)
}

// drillStateMayChange: the drill's state changes only while its workflow
// code runs (a workflow task) or when it closes.
func drillStateMayChange(t enums.EventType) bool {
	switch t {
	case enums.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
		enums.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, enums.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
		enums.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, enums.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
		enums.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT, enums.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
		return true
	}
	return false
}
