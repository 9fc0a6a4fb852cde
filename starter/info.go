package starter

import (
	"context"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/health"
)

var (
	_ api.DrillService        = (*Service)(nil)
	_ api.InfoService         = (*Service)(nil)
	_ api.DrillRequestStarter = (*Service)(nil)
)

// TaskTypes lists the task types with the drivers that support them.
func (s *Service) TaskTypes() []api.TaskTypeInfo {
	out := make([]api.TaskTypeInfo, 0, len(domain.AllTaskTypes()))
	for _, t := range domain.AllTaskTypes() {
		ti, _ := domain.Info(t)
		out = append(out, api.DescribeTaskType(ti, s.opts.Capabilities[t]))
	}
	return out
}

// Targets lists the configured targets without secrets.
func (s *Service) Targets() []api.TargetInfo {
	out := make([]api.TargetInfo, 0, len(s.opts.Targets))
	now := s.opts.Now()
	for _, t := range s.opts.Targets {
		ti := api.TargetInfo{
			Name: t.Name, Driver: t.Driver, QuotaBytes: t.QuotaBytes,
			RTOObjectiveMs: t.RTOObjectiveMs, RPOObjectiveMs: t.RPOObjectiveMs, Default: t.Default, Group: t.Group,
		}
		if w, ok := domain.ActiveBlackout(t.Blackouts, now); ok {
			ti.Blackout = &api.BlackoutNow{Name: w.Name, StartMs: w.Start.UnixMilli(), EndMs: w.End.UnixMilli()}
		}
		out = append(out, ti)
	}
	return out
}

// Health returns the cached report of the health probes: it reads the
// Runner's cache and never waits for a probe. Before the first round has
// run every module is unknown ("not checked yet") and checked_at_ms is 0.
func (s *Service) Health(context.Context) (api.HealthReport, error) {
	return apiReport(s.health.Report()), nil
}

// RegisterHealthProbe adds a probe to this service's registry (the daemon
// registers the built-in ones there); probes of health.Default run beside
// them. A name already taken in this registry is an error.
func (s *Service) RegisterHealthProbe(name string, fn health.ProbeFunc) error {
	return s.probes.RegisterProbe(name, fn)
}

// RunHealthProbes runs the health probes in the background, a round every
// Options.HealthProbeInterval, until ctx is done.
func (s *Service) RunHealthProbes(ctx context.Context) { s.health.Run(ctx) }

// ProbeHealth runs one round of the probes and returns the report once each
// has answered or timed out (for start-up and tests; GET /health never
// waits for probes).
func (s *Service) ProbeHealth(ctx context.Context) api.HealthReport {
	return apiReport(s.health.Check(ctx))
}

// apiReport is the wire form of a health report.
func apiReport(rep health.Report) api.HealthReport {
	out := api.HealthReport{OverallStatus: string(rep.Overall), CheckedAtMs: unixMs(rep.CheckedAt),
		Modules: make([]api.HealthSignal, 0, len(rep.Modules))}
	for _, m := range rep.Modules {
		out.Modules = append(out.Modules, api.HealthSignal{Name: m.Name, Status: string(m.Status), Message: m.Message,
			CheckedAtMs: unixMs(m.CheckedAt), Details: m.Details})
	}
	return out
}

// unixMs is t in Unix milliseconds, 0 for the zero time.
func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
