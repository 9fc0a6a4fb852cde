package pgbench

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/themis-maintenance/themis/driver"
)

// memHistory is a small in-memory driver.History for direct driver calls
// (none of the benchmarked tasks reads it; it is there because a real
// activity always passes one).
type memHistory struct {
	mu        sync.Mutex
	samples   []driver.Sample
	baselines map[string]map[string]float64
	backups   []driver.BackupRecord
}

var _ driver.History = (*memHistory)(nil)

func newMemHistory() *memHistory {
	return &memHistory{baselines: map[string]map[string]float64{}}
}

func (h *memHistory) RecordSamples(_ context.Context, samples ...driver.Sample) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples = append(h.samples, samples...)
	return nil
}

func (h *memHistory) Samples(_ context.Context, target, metric string, since time.Time) ([]driver.Sample, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []driver.Sample
	for _, s := range h.samples {
		if s.Target == target && s.Metric == metric && !s.At.Before(since) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (h *memHistory) Baseline(_ context.Context, target string) (map[string]float64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.baselines[target]), nil
}

func (h *memHistory) SaveBaseline(_ context.Context, target string, values map[string]float64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.baselines[target] = maps.Clone(values)
	return nil
}

func (h *memHistory) RecordBackup(_ context.Context, rec driver.BackupRecord) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.backups = append(h.backups, rec)
	return nil
}

func (h *memHistory) LatestBackup(_ context.Context, target string) (driver.BackupRecord, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.backups) - 1; i >= 0; i-- {
		if b := h.backups[i]; b.Target == target && b.Verified {
			return b, true, nil
		}
	}
	return driver.BackupRecord{}, false, nil
}
