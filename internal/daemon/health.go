package daemon

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/health"
	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/internal/history"
	"github.com/themis-maintenance/themis/workflows"
)

// BuiltinProbes returns the registry of the built-in health probes of an
// API process: temporal, workers, jobs, then history when hist is a
// history store, then target:<name> per configured target when reg is not
// nil. Handler adds "audit" once it has opened the audit sink.
func BuiltinProbes(c client.Client, cfg *config.Config, reg *driver.Registry, hist driver.History) (*health.Registry, error) {
	probes := health.NewRegistry()
	add := func(name string, fn health.ProbeFunc) error {
		if err := probes.RegisterProbe(name, fn); err != nil {
			return fmt.Errorf("built-in health probes: %w", err)
		}
		return nil
	}
	ns := cfg.Temporal.Namespace
	if err := add("temporal", temporalProbe(c, ns)); err != nil {
		return nil, err
	}
	if err := add("workers", workersProbe(c, cfg)); err != nil {
		return nil, err
	}
	if err := add("jobs", jobsProbe(c, ns, cfg.TaskQueues())); err != nil {
		return nil, err
	}
	if hs, ok := hist.(*history.Store); ok && hs != nil {
		if err := add("history", historyProbe(hs)); err != nil {
			return nil, err
		}
	}
	if reg != nil {
		for _, tc := range cfg.Targets {
			if err := add("target:"+tc.Name, targetProbe(tc.Name, reg, hist)); err != nil {
				return nil, err
			}
		}
	}
	return probes, nil
}

// temporalProbe: the frontend answers and the namespace is registered.
func temporalProbe(c client.Client, namespace string) health.ProbeFunc {
	return func(ctx context.Context) health.Signal {
		start := time.Now()
		if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			return health.Signal{Status: health.Critical, Message: "the Temporal frontend does not answer: " + redact(err)}
		}
		answered := time.Since(start).Milliseconds()
		resp, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
		if err != nil {
			return health.Signal{Status: health.Critical, Message: fmt.Sprintf("namespace %s: %s", namespace, redact(err)),
				Details: map[string]any{"namespace": namespace, "answer_ms": answered}}
		}
		details := map[string]any{
			"namespace": namespace, "answer_ms": answered,
			"state":       resp.GetNamespaceInfo().GetState().String(),
			"retention_s": int64(resp.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration().Seconds()),
		}
		if st := resp.GetNamespaceInfo().GetState(); st != enumspb.NAMESPACE_STATE_REGISTERED {
			return health.Signal{Status: health.Critical, Details: details,
				Message: fmt.Sprintf("namespace %s is %s", namespace, st)}
		}
		return health.Signal{Status: health.OK, Details: details,
			Message: fmt.Sprintf("frontend answered in %d ms; namespace %s registered", answered, namespace)}
	}
}

// pollerFresh is how recently a poller must have polled to count as live:
// Temporal lists a poller for minutes after it stopped, and a live one
// polls again at least every long-poll timeout (about a minute).
const pollerFresh = 2 * time.Minute

// queueNeed is one task queue the workers probe checks: whose it is, and
// which pollers it needs.
type queueNeed struct {
	Queue string
	// Group is the target group of the queue ("" for the base queue).
	Group string
	// Targets are the targets whose workflows run on the queue.
	Targets []string
	// Activity: the queue's activities must be polled (a group's queue,
	// or the base queue when some target is ungrouped).
	Activity bool
}

// queueNeeds lists the task queues of cfg: the base queue (claims, and the
// ungrouped targets), then one per target group.
func queueNeeds(cfg *config.Config) []queueNeed {
	base := queueNeed{Queue: cfg.Temporal.TaskQueue}
	byGroup := map[string]*queueNeed{}
	var groups []*queueNeed
	for _, t := range cfg.Targets {
		if t.Group == "" {
			base.Targets = append(base.Targets, t.Name)
			continue
		}
		n, ok := byGroup[t.Group]
		if !ok {
			n = &queueNeed{Queue: config.GroupQueue(cfg.Temporal.TaskQueue, t.Group), Group: t.Group, Activity: true}
			byGroup[t.Group] = n
			groups = append(groups, n)
		}
		n.Targets = append(n.Targets, t.Name)
	}
	// Without targets (or with ungrouped ones) the base queue runs jobs.
	base.Activity = len(base.Targets) > 0 || len(groups) == 0
	slices.SortFunc(groups, func(a, b *queueNeed) int { return strings.Compare(a.Group, b.Group) })
	out := []queueNeed{base}
	for _, g := range groups {
		out = append(out, *g)
	}
	return out
}

// queuePollers is what DescribeTaskQueue told of one queue.
type queuePollers struct {
	queueNeed
	Workflow, Activity int
	Identities         []string
}

// workersProbe: some worker polls each task queue of the deployment (the
// base queue and every target group's), for workflow tasks and for
// activity tasks (pollersSignal).
func workersProbe(c client.Client, cfg *config.Config) health.ProbeFunc {
	needs := queueNeeds(cfg)
	return func(ctx context.Context) health.Signal {
		polled := make([]queuePollers, 0, len(needs))
		for _, n := range needs {
			qp := queuePollers{queueNeed: n}
			for _, kind := range []struct {
				name string
				typ  enumspb.TaskQueueType
				n    *int
			}{{"workflow", enumspb.TASK_QUEUE_TYPE_WORKFLOW, &qp.Workflow}, {"activity", enumspb.TASK_QUEUE_TYPE_ACTIVITY, &qp.Activity}} {
				resp, err := c.DescribeTaskQueue(ctx, n.Queue, kind.typ)
				if err != nil {
					return health.Signal{Status: health.Unknown, Details: map[string]any{"task_queue": needs[0].Queue},
						Message: fmt.Sprintf("could not describe the %s task queue %s: %s", kind.name, n.Queue, redact(err))}
				}
				for _, p := range resp.GetPollers() {
					if at := p.GetLastAccessTime(); at != nil && time.Since(at.AsTime()) > pollerFresh {
						continue
					}
					*kind.n++
					if !slices.Contains(qp.Identities, p.GetIdentity()) {
						qp.Identities = append(qp.Identities, p.GetIdentity())
					}
				}
			}
			polled = append(polled, qp)
		}
		return pollersSignal(polled)
	}
}

// pollersSignal judges the pollers of the deployment's queues (the base
// queue first). Critical: a queue that runs jobs (a group's, or the base
// queue while some target is ungrouped) lacks workflow or activity pollers,
// since its targets' jobs and drills cannot run. Degraded: only the base
// queue's workflow pollers are missing while every target is grouped
// (claims are then released by termination, after a wait).
func pollersSignal(polled []queuePollers) health.Signal {
	base := polled[0].Queue
	var identities []string
	totalWF, totalAct := 0, 0
	queues := make([]map[string]any, 0, len(polled))
	var critical, degraded []string
	for _, q := range polled {
		totalWF += q.Workflow
		totalAct += q.Activity
		for _, id := range q.Identities {
			if !slices.Contains(identities, id) && len(identities) < 20 {
				identities = append(identities, id)
			}
		}
		entry := map[string]any{"task_queue": q.Queue, "workflow_pollers": q.Workflow, "activity_pollers": q.Activity,
			"targets": nonNil(q.Targets)}
		if q.Group != "" {
			entry["group"] = q.Group
		}
		queues = append(queues, entry)

		var missing []string
		if q.Workflow == 0 {
			missing = append(missing, "workflow")
		}
		if q.Activity == 0 && q.queueNeed.Activity {
			missing = append(missing, "activity")
		}
		if len(missing) == 0 {
			continue
		}
		what := "tasks"
		if len(missing) == 1 {
			what = missing[0] + " tasks"
		}
		switch {
		case q.Group != "":
			critical = append(critical, fmt.Sprintf("no worker polls the %s of group %s (task queue %s): jobs and drills of %s cannot run",
				what, q.Group, q.Queue, strings.Join(q.Targets, ", ")))
		case q.queueNeed.Activity:
			msg := fmt.Sprintf("no worker polls the %s of task queue %s: no job can run", what, q.Queue)
			if len(polled) > 1 {
				msg = fmt.Sprintf("no worker polls the %s of task queue %s: jobs and drills of the ungrouped targets (%s) cannot run",
					what, q.Queue, strings.Join(q.Targets, ", "))
			}
			critical = append(critical, msg)
		default:
			degraded = append(degraded, fmt.Sprintf("no worker polls the workflow tasks of task queue %s (claims: releases wait, then terminate)", q.Queue))
		}
	}
	if len(polled) == 1 && len(critical) == 1 && totalWF == 0 && totalAct == 0 {
		// As before target groups: one queue, nobody at all.
		critical = []string{fmt.Sprintf("no worker polls task queue %s: no job can run", base)}
	}
	slices.Sort(identities)
	details := map[string]any{"task_queue": base, "workflow_pollers": totalWF, "activity_pollers": totalAct,
		"identities": nonNil(identities), "queues": queues}
	switch {
	case len(critical) > 0:
		return health.Signal{Status: health.Critical, Details: details, Message: strings.Join(append(critical, degraded...), "; ")}
	case len(degraded) > 0:
		return health.Signal{Status: health.Degraded, Details: details, Message: strings.Join(degraded, "; ")}
	}
	if len(polled) == 1 {
		return health.Signal{Status: health.OK, Details: details, Message: fmt.Sprintf(
			"%d worker(s) polling task queue %s (%d workflow, %d activity poller(s))",
			len(identities), base, totalWF, totalAct)}
	}
	groups := make([]string, 0, len(polled)-1)
	for _, q := range polled[1:] {
		groups = append(groups, q.Group)
	}
	return health.Signal{Status: health.OK, Details: details, Message: fmt.Sprintf(
		"%d worker(s) polling task queue %s and the queues of target groups %s (%d workflow, %d activity poller(s))",
		len(identities), base, strings.Join(groups, ", "), totalWF, totalAct)}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// jobsProbe: any failed maintenance job of this deployment (its task
// queues: another deployment may share the namespace) in the last 24 hours
// makes it degraded.
func jobsProbe(c client.Client, namespace string, queues []string) health.ProbeFunc {
	quoted := make([]string, len(queues))
	for i, q := range queues {
		quoted[i] = "'" + strings.ReplaceAll(q, "'", `\'`) + "'"
	}
	inQueues := "TaskQueue IN (" + strings.Join(quoted, ", ") + ")"
	return func(ctx context.Context) health.Signal {
		since := time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339)
		resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Namespace: namespace,
			Query: fmt.Sprintf("WorkflowType = '%s' AND %s AND ExecutionStatus = 'Failed' AND CloseTime > '%s'",
				workflows.MaintenanceWorkflowName, inQueues, since),
		})
		switch {
		case err != nil:
			return health.Signal{Status: health.Unknown, Message: "could not count failed jobs: " + redact(err)}
		case resp.GetCount() > 0:
			return health.Signal{Status: health.Degraded,
				Message: fmt.Sprintf("%d failed job(s) in the last 24 hours", resp.GetCount()),
				Details: map[string]any{"failed_jobs_24h": resp.GetCount()}}
		}
		return health.Signal{Status: health.OK, Message: "no failed job in the last 24 hours",
			Details: map[string]any{"failed_jobs_24h": int64(0)}}
	}
}
