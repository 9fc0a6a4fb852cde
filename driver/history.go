package driver

import (
	"context"
	"time"
)

// Sample is one measurement kept for trends (size, row counts, timings).
type Sample struct {
	Target string    `json:"target"`
	Metric string    `json:"metric"`
	At     time.Time `json:"at"`
	Value  float64   `json:"value"`
}

// BackupRecord is a backup taken and verified by backup_verification; the DR
// drill restores the newest verified one.
type BackupRecord struct {
	Target   string         `json:"target"`
	Path     string         `json:"path"`
	Method   string         `json:"method"`
	TakenAt  time.Time      `json:"taken_at"`
	Verified bool           `json:"verified"`
	Bytes    int64          `json:"bytes"`
	Details  map[string]any `json:"details"`
	// RemovedAt is when the backup's file was deleted (a DR drill's own
	// backup after its clean-up); nil while it is there.
	RemovedAt *time.Time `json:"removed_at,omitempty"`
}

// History is the durable store of samples, baselines and backups that tasks
// read and write so that trends and baselines survive restarts.
type History interface {
	// RecordSamples appends measurements.
	RecordSamples(ctx context.Context, samples ...Sample) error
	// Samples returns a target's samples of metric taken at or after since,
	// oldest first.
	Samples(ctx context.Context, target, metric string, since time.Time) ([]Sample, error)
	// Baseline returns the stored baseline values (probe name → ms) of a target.
	Baseline(ctx context.Context, target string) (map[string]float64, error)
	// SaveBaseline replaces a target's baseline.
	SaveBaseline(ctx context.Context, target string, values map[string]float64) error
	// RecordBackup stores a backup record.
	RecordBackup(ctx context.Context, rec BackupRecord) error
	// LatestBackup returns the newest verified backup of target; ok is false
	// when there is none.
	LatestBackup(ctx context.Context, target string) (rec BackupRecord, ok bool, err error)
}

// BackupLister is implemented by history stores that list a target's
// backup records, newest first, removed ones included (RemovedAt set);
// internal/history.Store does.
type BackupLister interface {
	Backups(ctx context.Context, target string, verifiedOnly bool, limit int) ([]BackupRecord, error)
}

// LatestBackupBefore returns target's newest verified backup, whose file is
// still there, taken at or before at (a zero at: the newest). A drill
// restores it: a backup taken after the simulated failure would restore
// data a real disaster had lost. When the newest backup is later than at
// and h cannot list older ones (it is no BackupLister), ok is false.
func LatestBackupBefore(ctx context.Context, h History, target string, at time.Time) (rec BackupRecord, ok bool, err error) {
	if h == nil {
		return BackupRecord{}, false, nil
	}
	rec, ok, err = h.LatestBackup(ctx, target)
	if err != nil || !ok || at.IsZero() || !rec.TakenAt.After(at) {
		return rec, ok, err
	}
	lister, isLister := h.(BackupLister)
	if !isLister {
		return BackupRecord{}, false, nil
	}
	recs, err := lister.Backups(ctx, target, true, 0)
	if err != nil {
		return BackupRecord{}, false, err
	}
	for _, r := range recs {
		if r.Verified && r.RemovedAt == nil && !r.TakenAt.After(at) {
			return r, true, nil
		}
	}
	return BackupRecord{}, false, nil
}
