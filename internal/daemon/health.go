package daemon

import (
	"context"
	"fmt"
	"slices"
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
	ns, queue := cfg.Temporal.Namespace, cfg.Temporal.TaskQueue
	if err := add("temporal", temporalProbe(c, ns)); err != nil {
		return nil, err
	}
	if err := add("workers", workersProbe(c, queue)); err != nil {
		return nil, err
	}
	if err := add("jobs", jobsProbe(c, ns)); err != nil {
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

// workersProbe: some worker polls the task queue, for workflow tasks and
// for activity tasks; critical when either has none (nothing would run).
func workersProbe(c client.Client, queue string) health.ProbeFunc {
	return func(ctx context.Context) health.Signal {
		details := map[string]any{"task_queue": queue}
		live := map[string]int{}
		var identities []string
		for _, kind := range []struct {
			name string
			typ  enumspb.TaskQueueType
		}{{"workflow", enumspb.TASK_QUEUE_TYPE_WORKFLOW}, {"activity", enumspb.TASK_QUEUE_TYPE_ACTIVITY}} {
			resp, err := c.DescribeTaskQueue(ctx, queue, kind.typ)
			if err != nil {
				return health.Signal{Status: health.Unknown, Details: details,
					Message: fmt.Sprintf("could not describe the %s task queue %s: %s", kind.name, queue, redact(err))}
			}
			for _, p := range resp.GetPollers() {
				if at := p.GetLastAccessTime(); at != nil && time.Since(at.AsTime()) > pollerFresh {
					continue
				}
				live[kind.name]++
				if !slices.Contains(identities, p.GetIdentity()) && len(identities) < 20 {
					identities = append(identities, p.GetIdentity())
				}
			}
			details[kind.name+"_pollers"] = live[kind.name]
		}
		slices.Sort(identities)
		details["identities"] = identities
		var missing []string
		for _, k := range []string{"workflow", "activity"} {
			if live[k] == 0 {
				missing = append(missing, k)
			}
		}
		switch len(missing) {
		case 2:
			return health.Signal{Status: health.Critical, Details: details,
				Message: fmt.Sprintf("no worker polls task queue %s: no job can run", queue)}
		case 1:
			return health.Signal{Status: health.Critical, Details: details,
				Message: fmt.Sprintf("no worker polls the %s tasks of task queue %s: no job can run", missing[0], queue)}
		}
		return health.Signal{Status: health.OK, Details: details, Message: fmt.Sprintf(
			"%d worker(s) polling task queue %s (%d workflow, %d activity poller(s))",
			len(identities), queue, live["workflow"], live["activity"])}
	}
}

// jobsProbe: any failed maintenance job in the last 24 hours makes it
// degraded.
func jobsProbe(c client.Client, namespace string) health.ProbeFunc {
	return func(ctx context.Context) health.Signal {
		since := time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339)
		resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Namespace: namespace,
			Query: fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Failed' AND CloseTime > '%s'",
				workflows.MaintenanceWorkflowName, since),
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
