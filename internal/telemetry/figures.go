package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/internal/history"
)

// FiguresStore is what HistoryFigures reads: the history store's task
// results, samples, backups and drill reports (*history.Store).
type FiguresStore interface {
	LatestBackup(ctx context.Context, target string) (driver.BackupRecord, bool, error)
	Samples(ctx context.Context, target, metric string, since time.Time) ([]driver.Sample, error)
	TaskResults(ctx context.Context, target string, limit int) ([]history.TaskRecord, error)
	ListDrillReports(ctx context.Context, limit int) ([]history.DrillReportEntry, error)
}

// TargetObjectives are a target's configured quota and recovery objectives
// (zero: none).
type TargetObjectives struct {
	Target       string
	QuotaBytes   int64
	RTOObjective time.Duration
	RPOObjective time.Duration
}

// Sample names the drivers record (driver/postgres, driver/sqlite).
const (
	sampleSizeBytes  = "size_bytes"
	sampleXIDAge     = "xid_age"
	sampleReplicaLag = "replica_max_lag_ms"
)

// sampleWindow bounds how far back the newest sample is looked for.
const sampleWindow = 8 * 24 * time.Hour

// HistoryFigures returns a figures source for ObserveTargets that reads
// targets' figures from store, at most once per ttl (scrapes in between
// are answered from the cache).
func HistoryFigures(store FiguresStore, targets []TargetObjectives, ttl time.Duration) func(context.Context) ([]TargetFigures, error) {
	var (
		mu     sync.Mutex
		at     time.Time
		cached []TargetFigures
		cerr   error
	)
	return func(ctx context.Context) ([]TargetFigures, error) {
		mu.Lock()
		defer mu.Unlock()
		if !at.IsZero() && time.Since(at) < ttl {
			return cached, cerr
		}
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		cached, cerr = readFigures(qctx, store, targets, time.Now())
		at = time.Now()
		return cached, cerr
	}
}

func ptr(v float64) *float64 { return &v }

func readFigures(ctx context.Context, store FiguresStore, targets []TargetObjectives, now time.Time) ([]TargetFigures, error) {
	var errs []error
	drills, err := newestDrills(ctx, store)
	errs = append(errs, err)
	out := make([]TargetFigures, 0, len(targets))
	for _, t := range targets {
		f := TargetFigures{Target: t.Target}
		if t.QuotaBytes > 0 {
			f.QuotaBytes = ptr(float64(t.QuotaBytes))
		}
		if t.RTOObjective > 0 {
			f.DrillRTOObjective = ptr(t.RTOObjective.Seconds())
		}
		if t.RPOObjective > 0 {
			f.DrillRPOObjective = ptr(t.RPOObjective.Seconds())
		}
		newest := func(metric string) *float64 {
			s, err := store.Samples(ctx, t.Target, metric, now.Add(-sampleWindow))
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			if len(s) == 0 {
				return nil
			}
			return ptr(s[len(s)-1].Value)
		}
		f.SizeBytes = newest(sampleSizeBytes)
		f.TransactionIDAge = newest(sampleXIDAge)
		if lag := newest(sampleReplicaLag); lag != nil {
			f.ReplicaLagSeconds = ptr(*lag / 1000)
		}
		if b, ok, err := store.LatestBackup(ctx, t.Target); err != nil {
			errs = append(errs, err)
		} else if ok {
			f.BackupAgeSeconds = ptr(max(0, now.Sub(b.TakenAt).Seconds()))
		}
		runway, err := newestRunway(ctx, store, t.Target)
		errs = append(errs, err)
		f.RunwayDays = runway
		if d, ok := drills[t.Target]; ok {
			if d.Measured {
				f.DrillRTOSeconds = ptr(float64(d.RTOMs) / 1000)
				f.DrillRPOSeconds = ptr(float64(d.RPOMs) / 1000)
			}
			if f.DrillRTOObjective == nil && d.RTOObjectiveMs > 0 {
				f.DrillRTOObjective = ptr(float64(d.RTOObjectiveMs) / 1000)
			}
			if f.DrillRPOObjective == nil && d.RPOObjectiveMs > 0 {
				f.DrillRPOObjective = ptr(float64(d.RPOObjectiveMs) / 1000)
			}
			passed := 0.0
			if d.Passed {
				passed = 1
			}
			f.DrillPassed = ptr(passed)
			f.DrillFinishedUnixSeconds = ptr(float64(d.FinishedAtMs) / 1000)
			if d.CopyMs > 0 && d.RestoredBytes > 0 {
				f.DrillRestoreBytesPerSecond = ptr(float64(d.RestoredBytes) * 1000 / float64(d.CopyMs))
			}
			if d.ReplayMs > 0 && d.WALBytes > 0 {
				f.DrillReplayBytesPerSecond = ptr(float64(d.WALBytes) * 1000 / float64(d.ReplayMs))
			}
			if d.BackupAtMs > 0 && d.FailureAtMs >= d.BackupAtMs {
				f.DrillBackupAgeSeconds = ptr(float64(d.FailureAtMs-d.BackupAtMs) / 1000)
			}
		}
		out = append(out, f)
	}
	return out, errors.Join(errs...)
}

// newestRunway is the runway_days of the target's newest
// capacity_trend_analysis result that has one.
func newestRunway(ctx context.Context, store FiguresStore, target string) (*float64, error) {
	recs, err := store.TaskResults(ctx, target, 500)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if r.Task != domain.TaskCapacityTrendAnalysis || r.State != domain.StateSucceeded {
			continue
		}
		switch v := r.Details["runway_days"].(type) {
		case float64:
			return ptr(v), nil
		case json.Number:
			f, err := v.Float64()
			if err == nil {
				return ptr(f), nil
			}
		}
		// The newest analysis found no runway (no quota, not growing).
		return nil, nil
	}
	return nil, nil
}

// newestDrills is, per target, the newest drill that has finished.
func newestDrills(ctx context.Context, store FiguresStore) (map[string]domain.Drill, error) {
	entries, err := store.ListDrillReports(ctx, 200)
	if err != nil {
		return nil, err
	}
	out := map[string]domain.Drill{}
	for _, e := range entries {
		if _, seen := out[e.Target]; seen {
			continue
		}
		var d domain.Drill
		if err := json.Unmarshal(e.Report, &d); err != nil || d.FinishedAtMs == 0 {
			continue
		}
		out[e.Target] = d
	}
	return out, nil
}
