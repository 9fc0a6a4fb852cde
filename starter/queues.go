package starter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	schedulepb "go.temporal.io/api/schedule/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/workflows"
)

// Task queues of target groups (internal/config/groups.go, docs/TARGETS.md):
// every workflow started for a target (a Schedule's action, a manual run, a
// drill) starts on the target's group queue; claims and anything not tied
// to a target stay on the base queue (Options.TaskQueue).

// queueOf is the task queue of target's workflows: its group's queue, or
// the base queue for an ungrouped or unknown target.
func (s *Service) queueOf(target string) string {
	if q, ok := s.queues[target]; ok {
		return q
	}
	return s.opts.TaskQueue
}

// queueFilter is the visibility clause matching this deployment's task
// queues (the base queue and every group's): another deployment may share
// the namespace.
func (s *Service) queueFilter() string {
	if len(s.allQueues) == 1 {
		return fmt.Sprintf("TaskQueue = '%s'", quoteVisibility(s.allQueues[0]))
	}
	quoted := make([]string, len(s.allQueues))
	for i, q := range s.allQueues {
		quoted[i] = "'" + quoteVisibility(q) + "'"
	}
	return "TaskQueue IN (" + strings.Join(quoted, ", ") + ")"
}

// quoteVisibility escapes a string literal of a visibility query.
func quoteVisibility(s string) string { return strings.ReplaceAll(s, "'", `\'`) }

// QueueReconcileResult says what ReconcileScheduleQueues did.
type QueueReconcileResult struct {
	// Moved are the schedules whose action now starts on another queue.
	Moved []string
	// Failed are the schedules left as they were, with the reason.
	Failed map[string]string
}

// ReconcileScheduleQueues brings every maintenance Schedule's action to its
// target's task queue: after a target joined, left or changed group, the
// Schedules created before start their next job on the queue the target's
// workers poll. Schedules of targets this configuration does not know are
// left alone. Running jobs keep their queue (a workflow's task queue is
// fixed at its start). The API process calls it at start; several
// replicas doing so at once is safe (each move is taken under the
// schedule's write claim and sent with its conflict token).
func (s *Service) ReconcileScheduleQueues(ctx context.Context) (QueueReconcileResult, error) {
	res := QueueReconcileResult{Failed: map[string]string{}}
	iter, err := s.c.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 1000})
	if err != nil {
		return res, mapErr(fmt.Errorf("list schedules: %w", err))
	}
	var ids []string
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			return res, mapErr(fmt.Errorf("list schedules: %w", err))
		}
		if e.WorkflowType.Name == workflows.MaintenanceWorkflowName {
			ids = append(ids, e.ID)
		}
	}
	for _, id := range ids {
		moved, err := s.reconcileScheduleQueue(ctx, id)
		switch {
		case errors.Is(err, domain.ErrNotFound):
			// Deleted meanwhile, or not a maintenance schedule.
		case err != nil:
			res.Failed[id] = err.Error()
		case moved:
			res.Moved = append(res.Moved, id)
		}
	}
	return res, nil
}

// reconcileScheduleQueue moves schedule id's action to its target's queue
// when it is elsewhere; moved reports whether it was.
func (s *Service) reconcileScheduleQueue(ctx context.Context, id string) (moved bool, err error) {
	desc, err := s.describe(ctx, id)
	if err != nil {
		return false, err
	}
	in, _, err := decodeEntry(id, desc)
	if err != nil {
		return false, err
	}
	target := in.Spec.Target
	if !s.TargetKnown(target) || desc.GetSchedule().GetAction().GetStartWorkflow().GetTaskQueue().GetName() == s.queueOf(target) {
		return false, nil
	}
	unlock, err := s.lockScheduleWrites(ctx, id)
	if err != nil {
		return false, err
	}
	defer unlock()
	for attempt := 1; ; attempt++ {
		desc, err := s.describe(ctx, id)
		if err != nil {
			return false, err
		}
		act := desc.GetSchedule().GetAction().GetStartWorkflow()
		want := s.queueOf(target)
		if act.GetTaskQueue().GetName() == want {
			return attempt > 1, nil
		}
		sched, ok := proto.Clone(desc.GetSchedule()).(*schedulepb.Schedule)
		if !ok {
			return false, fmt.Errorf("schedule %s: unexpected description", id)
		}
		sched.GetAction().GetStartWorkflow().TaskQueue = &taskqueuepb.TaskQueue{Name: want, Kind: enums.TASK_QUEUE_KIND_NORMAL}
		if _, err := s.c.WorkflowService().UpdateSchedule(ctx, &workflowservice.UpdateScheduleRequest{
			Namespace: s.opts.Namespace, ScheduleId: id, Schedule: sched, ConflictToken: desc.GetConflictToken(),
			Identity: "themis-api target-group reconcile", RequestId: newWriteID(),
		}); err != nil {
			return false, mapErr(fmt.Errorf("move schedule %s to task queue %s: %w", id, want, err))
		}
		if attempt == 3 {
			// Read back once more below; a third superseded write gives up.
			break
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
	desc, err = s.describe(ctx, id)
	if err != nil {
		return false, err
	}
	if got := desc.GetSchedule().GetAction().GetStartWorkflow().GetTaskQueue().GetName(); got != s.queueOf(target) {
		return false, fmt.Errorf("schedule %s still starts on task queue %s after three updates (changed concurrently); the next start tries again", id, got)
	}
	return true, nil
}
