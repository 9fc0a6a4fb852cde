package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Gauge names: per-target figures an operator watches, and health per
// module (docs/METRICS.md). Seconds and bytes carry their unit in the name;
// no OpenTelemetry unit is set, so the exporter adds no suffix.
const (
	RunwayDaysMetric        = "maintenance_capacity_runway_days"
	SizeBytesMetric         = "maintenance_database_size_bytes"
	QuotaBytesMetric        = "maintenance_quota_bytes"
	BackupAgeMetric         = "maintenance_backup_age_seconds"
	ReplicaLagMetric        = "maintenance_replica_lag_seconds"
	TransactionIDAgeMetric  = "maintenance_transaction_id_age"
	DrillRTOMetric          = "maintenance_drill_rto_seconds"
	DrillRPOMetric          = "maintenance_drill_rpo_seconds"
	DrillRTOObjectiveMetric = "maintenance_drill_rto_objective_seconds"
	DrillRPOObjectiveMetric = "maintenance_drill_rpo_objective_seconds"
	DrillPassedMetric       = "maintenance_drill_passed"
	DrillFinishedMetric     = "maintenance_drill_finished_timestamp_seconds"
	DrillRestoreRateMetric  = "maintenance_drill_restore_bytes_per_second"
	DrillReplayRateMetric   = "maintenance_drill_replay_bytes_per_second"
	DrillBackupAgeMetric    = "maintenance_drill_backup_age_seconds"
	HealthStatusMetric      = "maintenance_health_status"
)

const targetLabel = "target"

// HealthStatuses are the values of the status label of
// maintenance_health_status: one series per status, 1 for the module's
// current one and 0 for the others.
var HealthStatuses = []string{"healthy", "degraded", "critical", "unknown"}

// TargetFigures are one target's gauge values. A nil field has no value yet
// (never measured, no quota, no drill) and exports no series.
type TargetFigures struct {
	Target string
	// RunwayDays is the capacity forecast's days until the quota is reached.
	RunwayDays *float64
	// SizeBytes is the newest size sample; QuotaBytes the configured quota.
	SizeBytes, QuotaBytes *float64
	// BackupAgeSeconds is the age of the newest verified backup.
	BackupAgeSeconds *float64
	// ReplicaLagSeconds is the largest replica lag last measured.
	ReplicaLagSeconds *float64
	// TransactionIDAge is the oldest transaction id's age (PostgreSQL).
	TransactionIDAge *float64
	// Drill figures of the newest finished drill, and the objectives.
	DrillRTOSeconds, DrillRPOSeconds      *float64
	DrillRTOObjective, DrillRPOObjective  *float64
	DrillPassed, DrillFinishedUnixSeconds *float64
	// DrillRestoreBytesPerSecond and DrillReplayBytesPerSecond are the
	// newest drill's copy and WAL-replay rates; DrillBackupAgeSeconds the
	// age of the backup it restored at its failure instant.
	DrillRestoreBytesPerSecond, DrillReplayBytesPerSecond, DrillBackupAgeSeconds *float64
}

// ModuleHealth is one health module's current status ("healthy",
// "degraded", "critical" or "unknown").
type ModuleHealth struct {
	Module, Status string
}

// ObserveTargets exports the per-target gauges, read from figures at each
// scrape. figures should be cheap (HistoryFigures caches). An error is
// logged and the scrape goes on without these gauges.
// Only the first call per Metrics registers; later ones do nothing.
func (m *Metrics) ObserveTargets(figures func(context.Context) ([]TargetFigures, error)) error {
	if m == nil {
		return nil
	}
	var err error
	m.targetsOnce.Do(func() { err = m.observeTargets(figures) })
	return err
}

func (m *Metrics) observeTargets(figures func(context.Context) ([]TargetFigures, error)) error {
	type gauge struct {
		name, desc string
		value      func(TargetFigures) *float64
		inst       metric.Float64ObservableGauge
	}
	gauges := []*gauge{
		{name: RunwayDaysMetric, desc: "Days until the target reaches its quota at the current growth (capacity_trend_analysis)", value: func(f TargetFigures) *float64 { return f.RunwayDays }},
		{name: SizeBytesMetric, desc: "Newest measured size of the target database in bytes", value: func(f TargetFigures) *float64 { return f.SizeBytes }},
		{name: QuotaBytesMetric, desc: "Configured quota of the target in bytes", value: func(f TargetFigures) *float64 { return f.QuotaBytes }},
		{name: BackupAgeMetric, desc: "Age of the newest verified backup in seconds", value: func(f TargetFigures) *float64 { return f.BackupAgeSeconds }},
		{name: ReplicaLagMetric, desc: "Largest replica lag last measured (replica_validation), in seconds", value: func(f TargetFigures) *float64 { return f.ReplicaLagSeconds }},
		{name: TransactionIDAgeMetric, desc: "Age of the oldest transaction id (PostgreSQL), in transactions", value: func(f TargetFigures) *float64 { return f.TransactionIDAge }},
		{name: DrillRTOMetric, desc: "Recovery time measured by the newest finished DR drill, in seconds", value: func(f TargetFigures) *float64 { return f.DrillRTOSeconds }},
		{name: DrillRPOMetric, desc: "Recovery point measured by the newest finished DR drill, in seconds", value: func(f TargetFigures) *float64 { return f.DrillRPOSeconds }},
		{name: DrillRTOObjectiveMetric, desc: "Recovery time objective of the target, in seconds", value: func(f TargetFigures) *float64 { return f.DrillRTOObjective }},
		{name: DrillRPOObjectiveMetric, desc: "Recovery point objective of the target, in seconds", value: func(f TargetFigures) *float64 { return f.DrillRPOObjective }},
		{name: DrillPassedMetric, desc: "1 when the newest finished DR drill passed, else 0", value: func(f TargetFigures) *float64 { return f.DrillPassed }},
		{name: DrillFinishedMetric, desc: "When the newest DR drill finished, Unix seconds", value: func(f TargetFigures) *float64 { return f.DrillFinishedUnixSeconds }},
		{name: DrillRestoreRateMetric, desc: "Copy rate of the newest DR drill's restore, bytes a second", value: func(f TargetFigures) *float64 { return f.DrillRestoreBytesPerSecond }},
		{name: DrillReplayRateMetric, desc: "WAL replay rate of the newest DR drill's restore, bytes a second", value: func(f TargetFigures) *float64 { return f.DrillReplayBytesPerSecond }},
		{name: DrillBackupAgeMetric, desc: "Age of the backup the newest DR drill restored, at its failure instant, in seconds", value: func(f TargetFigures) *float64 { return f.DrillBackupAgeSeconds }},
	}
	insts := make([]metric.Observable, 0, len(gauges))
	var errs []error
	for _, g := range gauges {
		var err error
		g.inst, err = m.meter.Float64ObservableGauge(g.name, metric.WithDescription(g.desc))
		errs = append(errs, err)
		insts = append(insts, g.inst)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("create target gauges: %w", err)
	}
	_, err := m.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		all, err := figures(ctx)
		if err != nil {
			slog.WarnContext(ctx, "metrics: reading the target gauges", "error", err)
		}
		for _, f := range all {
			attrs := metric.WithAttributes(attribute.String(targetLabel, f.Target))
			for _, g := range gauges {
				if v := g.value(f); v != nil {
					o.ObserveFloat64(g.inst, *v, attrs)
				}
			}
		}
		return nil
	}, insts...)
	if err != nil {
		return fmt.Errorf("register target gauges: %w", err)
	}
	return nil
}

// ObserveHealth exports maintenance_health_status{module, status}: for each
// module one series per status, 1 for its current one.
// Only the first call per Metrics registers; later ones do nothing.
func (m *Metrics) ObserveHealth(modules func(context.Context) []ModuleHealth) error {
	if m == nil {
		return nil
	}
	var err error
	m.healthOnce.Do(func() { err = m.observeHealth(modules) })
	return err
}

func (m *Metrics) observeHealth(modules func(context.Context) []ModuleHealth) error {
	g, err := m.meter.Int64ObservableGauge(HealthStatusMetric,
		metric.WithDescription("Health per module: 1 for the module's current status, 0 for the others"))
	if err != nil {
		return fmt.Errorf("create health gauge: %w", err)
	}
	_, err = m.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		for _, mod := range modules(ctx) {
			for _, st := range HealthStatuses {
				v := int64(0)
				if st == mod.Status {
					v = 1
				}
				o.ObserveInt64(g, v, metric.WithAttributes(
					attribute.String("module", mod.Module), attribute.String("status", st)))
			}
		}
		return nil
	}, g)
	if err != nil {
		return fmt.Errorf("register health gauge: %w", err)
	}
	return nil
}
