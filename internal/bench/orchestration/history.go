package orchestration

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/themis-maintenance/themis/activities"
)

// runHistory is what one workflow's history tells: server-side start →
// close and each completed activity's timing.
type runHistory struct {
	StartToClose time.Duration
	Activities   []activityTiming
}

// activityTiming is one completed activity: its type, scheduled →
// started → completed from the events, and its own work when the result
// reports it (a task's TaskOutput; zero for a no-op).
type activityTiming struct {
	Type                         string
	Scheduled, Started, Complete time.Time
	Work                         time.Duration
	IsTask                       bool
}

// Overhead is scheduled → completed minus the activity's own work.
func (a activityTiming) Overhead() time.Duration {
	return a.Complete.Sub(a.Scheduled) - a.Work
}

// readHistory reads the closed workflow id's history.
func readHistory(ctx context.Context, c client.Client, id string) (runHistory, error) {
	it := c.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var events []*historypb.HistoryEvent
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return runHistory{}, fmt.Errorf("history of %s: %w", id, err)
		}
		events = append(events, ev)
	}
	return timingsOf(events)
}

// timingsOf computes a history's timings; the result payload of an activity
// is decoded as a task's output, whose reported start and finish are the
// task's own work.
func timingsOf(events []*historypb.HistoryEvent) (runHistory, error) {
	var out runHistory
	var started, closed time.Time
	byScheduled := map[int64]*activityTiming{}
	var order []int64
	for _, ev := range events {
		t := ev.GetEventTime().AsTime()
		switch ev.GetEventType() {
		case enums.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			started = t
		case enums.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, enums.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
			enums.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, enums.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
			enums.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
			closed = t
		case enums.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			a := ev.GetActivityTaskScheduledEventAttributes()
			byScheduled[ev.GetEventId()] = &activityTiming{Type: a.GetActivityType().GetName(), Scheduled: t}
			order = append(order, ev.GetEventId())
		case enums.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			if a := byScheduled[ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId()]; a != nil {
				a.Started = t
			}
		case enums.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			attrs := ev.GetActivityTaskCompletedEventAttributes()
			a := byScheduled[attrs.GetScheduledEventId()]
			if a == nil {
				continue
			}
			a.Complete = t
			var res activities.TaskOutput
			if p := attrs.GetResult(); p != nil && len(p.GetPayloads()) == 1 {
				if err := converter.GetDefaultDataConverter().FromPayloads(p, &res); err == nil && res.StartedAtMs > 0 {
					a.IsTask = true
					a.Work = time.Duration(res.FinishedAtMs-res.StartedAtMs) * time.Millisecond
				}
			}
		}
	}
	if started.IsZero() || closed.IsZero() {
		return out, fmt.Errorf("history has no start or no close event (%d events)", len(events))
	}
	out.StartToClose = closed.Sub(started)
	for _, id := range order {
		if a := byScheduled[id]; !a.Complete.IsZero() {
			out.Activities = append(out.Activities, *a)
		}
	}
	return out, nil
}
