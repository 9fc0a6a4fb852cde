// Package historytest provides an in-memory driver.History for code that
// calls a driver directly (driver tests, the PostgreSQL benchmark) and needs
// a store for samples, baselines and backups without a file. The durable
// store is package history, tested on its own.
package historytest

import (
	"context"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/themis-maintenance/themis/driver"
)

// Memory is an in-memory driver.History, safe for concurrent use.
type Memory struct {
	mu        sync.Mutex
	samples   []driver.Sample
	baselines map[string]map[string]float64
	backups   []driver.BackupRecord
}

var _ driver.History = (*Memory)(nil)

// New returns an empty store.
func New() *Memory { return &Memory{baselines: map[string]map[string]float64{}} }

// RecordSamples implements driver.History.
func (m *Memory) RecordSamples(_ context.Context, s ...driver.Sample) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples = append(m.samples, s...)
	return nil
}

// Samples implements driver.History: oldest first.
func (m *Memory) Samples(_ context.Context, target, metric string, since time.Time) ([]driver.Sample, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []driver.Sample
	for _, s := range m.samples {
		if s.Target == target && s.Metric == metric && !s.At.Before(since) {
			out = append(out, s)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

// Baseline implements driver.History.
func (m *Memory) Baseline(_ context.Context, target string) (map[string]float64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := maps.Clone(m.baselines[target])
	if out == nil {
		out = map[string]float64{}
	}
	return out, nil
}

// SaveBaseline implements driver.History.
func (m *Memory) SaveBaseline(_ context.Context, target string, values map[string]float64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.baselines[target] = maps.Clone(values)
	return nil
}

// RecordBackup implements driver.History.
func (m *Memory) RecordBackup(_ context.Context, rec driver.BackupRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.backups = append(m.backups, rec)
	return nil
}

// LatestBackup implements driver.History: the last verified backup
// recorded for target.
func (m *Memory) LatestBackup(_ context.Context, target string) (driver.BackupRecord, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.backups) - 1; i >= 0; i-- {
		if b := m.backups[i]; b.Target == target && b.Verified {
			return b, true, nil
		}
	}
	return driver.BackupRecord{}, false, nil
}

// Backups returns every recorded backup, verified or not, oldest first.
func (m *Memory) Backups() []driver.BackupRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.backups)
}
