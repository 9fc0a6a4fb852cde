package starter

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/workflows"
)

var (
	_ api.DrillService = (*Service)(nil)
	_ api.InfoService  = (*Service)(nil)
)

// TaskTypes lists the task types with the drivers that support them.
func (s *Service) TaskTypes() []api.TaskTypeInfo {
	out := make([]api.TaskTypeInfo, 0, len(domain.AllTaskTypes()))
	for _, t := range domain.AllTaskTypes() {
		ti, _ := domain.Info(t)
		drivers := s.opts.Capabilities[t]
		if drivers == nil {
			drivers = []string{}
		}
		opts := map[string]api.OptionInfo{}
		for name, o := range ti.Options {
			oi := api.OptionInfo{Type: string(o.Kind), Values: o.Values, Help: o.Help}
			if o.Kind == domain.OptionInt || o.Kind == domain.OptionFloat {
				lo, hi := o.Min, o.Max
				oi.Min, oi.Max = &lo, &hi
			}
			opts[name] = oi
		}
		out = append(out, api.TaskTypeInfo{Name: string(t), Title: ti.Title, Description: ti.Description, Drivers: drivers, Options: opts})
	}
	return out
}

// Targets lists the configured targets without secrets.
func (s *Service) Targets() []api.TargetInfo {
	out := make([]api.TargetInfo, 0, len(s.opts.Targets))
	for _, t := range s.opts.Targets {
		out = append(out, api.TargetInfo{
			Name: t.Name, Driver: t.Driver, QuotaBytes: t.QuotaBytes,
			RTOObjectiveMs: t.RTOObjectiveMs, RPOObjectiveMs: t.RPOObjectiveMs, Default: t.Default,
		})
	}
	return out
}

// healthCache holds the last probe results; Health reads it without I/O.
type healthCache struct {
	mu     sync.RWMutex
	report api.HealthReport
}

// Health returns the cached health report. Before the first probe has
// finished it says so rather than blocking.
func (s *Service) Health(context.Context) (api.HealthReport, error) {
	s.health.mu.RLock()
	defer s.health.mu.RUnlock()
	if s.health.report.CheckedAtMs == 0 {
		return api.HealthReport{OverallStatus: api.HealthDegraded, Modules: []api.HealthSignal{{
			Name: "probes", Status: api.HealthDegraded, Message: "first health probe still running"}}}, nil
	}
	return s.health.report, nil
}

// RunHealthProbes refreshes the health report every interval until ctx is
// done: Temporal reachability, failed jobs in the last 24 hours (any ⇒ at
// least degraded), and the target probes of Options.ProbeTargets.
func (s *Service) RunHealthProbes(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 30 * time.Second
	}
	for {
		s.ProbeHealth(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// ProbeHealth runs the probes once and caches the report.
func (s *Service) ProbeHealth(ctx context.Context) api.HealthReport {
	now := s.opts.Now()
	ms := now.UnixMilli()
	var signals []api.HealthSignal

	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	start := time.Now()
	_, err := s.c.CheckHealth(tctx, &client.CheckHealthRequest{})
	cancel()
	if err != nil {
		signals = append(signals, api.HealthSignal{Name: "temporal", Status: api.HealthCritical, Message: "Temporal does not answer", CheckedAtMs: ms})
	} else {
		signals = append(signals, api.HealthSignal{Name: "temporal", Status: api.HealthOK, CheckedAtMs: ms,
			Message: fmt.Sprintf("answered in %d ms", time.Since(start).Milliseconds())})

		since := now.Add(-24 * time.Hour).UTC().Format(time.RFC3339)
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := s.c.CountWorkflow(qctx, &workflowservice.CountWorkflowExecutionsRequest{
			Namespace: s.opts.Namespace,
			Query: fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Failed' AND CloseTime > '%s'",
				workflows.MaintenanceWorkflowName, since),
		})
		cancel()
		switch {
		case err != nil:
			signals = append(signals, api.HealthSignal{Name: "jobs", Status: api.HealthDegraded, Message: "could not count failed jobs", CheckedAtMs: ms})
		case resp.GetCount() > 0:
			signals = append(signals, api.HealthSignal{Name: "jobs", Status: api.HealthDegraded, CheckedAtMs: ms,
				Message: fmt.Sprintf("%d failed job(s) in the last 24 hours", resp.GetCount()),
				Details: map[string]any{"failed_jobs_24h": resp.GetCount()}})
		default:
			signals = append(signals, api.HealthSignal{Name: "jobs", Status: api.HealthOK, Message: "no failed job in the last 24 hours", CheckedAtMs: ms})
		}
	}
	if s.opts.ProbeTargets != nil {
		signals = append(signals, s.opts.ProbeTargets(ctx)...)
	}
	report := api.HealthReport{OverallStatus: api.HealthOK, CheckedAtMs: ms, Modules: signals}
	for _, sig := range signals {
		report.OverallStatus = worse(report.OverallStatus, sig.Status)
	}
	s.health.mu.Lock()
	s.health.report = report
	s.health.mu.Unlock()
	return report
}

func worse(a, b string) string {
	rank := map[string]int{api.HealthOK: 0, api.HealthDegraded: 1, api.HealthCritical: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}
