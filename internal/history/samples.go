package history

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/themis-maintenance/themis/driver"
)

// RecordSamples appends measurements in one transaction. Samples with a zero
// time are stamped now; NaN and infinite values are refused.
//
// Samples are not deduplicated: each call is a measurement, and a retried
// activity that measures again records what it measured then, which is what
// a trend wants. A caller that must not record one batch twice (the same
// measurement replayed) uses RecordSamplesOnce.
func (s *Store) RecordSamples(ctx context.Context, samples ...driver.Sample) error {
	return s.recordSamples(ctx, "", samples)
}

// RecordSamplesOnce is RecordSamples with an idempotency key: a batch whose
// key was recorded before is ignored (and is not an error). Keys are kept as
// long as samples are (Prune removes them with the samples' cutoff). An
// empty key records unconditionally.
func (s *Store) RecordSamplesOnce(ctx context.Context, key string, samples ...driver.Sample) error {
	return s.recordSamples(ctx, key, samples)
}

func (s *Store) recordSamples(ctx context.Context, key string, samples []driver.Sample) error {
	if len(samples) == 0 {
		return nil
	}
	now := time.Now()
	for _, sm := range samples {
		if sm.Target == "" || sm.Metric == "" {
			return fmt.Errorf("history: sample needs a target and a metric (got %q, %q)", sm.Target, sm.Metric)
		}
		if math.IsNaN(sm.Value) || math.IsInf(sm.Value, 0) {
			return fmt.Errorf("history: sample %s/%s: value %v is not finite", sm.Target, sm.Metric, sm.Value)
		}
	}
	err := s.inTx(ctx, func(tx tx) error {
		if key != "" {
			res, err := tx.exec(ctx, `INSERT INTO sample_batches (batch_key, at_ms) VALUES (?, ?)
				ON CONFLICT (batch_key) DO NOTHING`, key, ms(now))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return err // recorded before
			}
		}
		stmt, err := tx.prepare(ctx, `INSERT INTO samples (target, metric, at_ms, value) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, sm := range samples {
			at := sm.At
			if at.IsZero() {
				at = now
			}
			if _, err := stmt.ExecContext(ctx, sm.Target, sm.Metric, ms(at), sm.Value); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("history: record samples: %w", err)
	}
	return nil
}

// sampleOrder is the column that orders samples taken in one millisecond
// in insertion order.
func (s *Store) sampleOrder() string {
	if s.dialect == DriverPostgres {
		return "id"
	}
	return "rowid"
}

// Samples returns target's samples of metric taken at or after since, oldest
// first.
func (s *Store) Samples(ctx context.Context, target, metric string, since time.Time) ([]driver.Sample, error) {
	rows, err := s.query(ctx, `SELECT at_ms, value FROM samples
		WHERE target = ? AND metric = ? AND at_ms >= ? ORDER BY at_ms, `+s.sampleOrder(), target, metric, ms(since))
	if err != nil {
		return nil, fmt.Errorf("history: samples: %w", err)
	}
	defer rows.Close()
	var out []driver.Sample
	for rows.Next() {
		var at int64
		var v float64
		if err := rows.Scan(&at, &v); err != nil {
			return nil, fmt.Errorf("history: samples: %w", err)
		}
		out = append(out, driver.Sample{Target: target, Metric: metric, At: fromMs(at), Value: v})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: samples: %w", err)
	}
	return out, nil
}

// PruneSamples deletes samples taken before cutoff and returns how many went.
func (s *Store) PruneSamples(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.exec(ctx, `DELETE FROM samples WHERE at_ms < ?`, ms(cutoff))
	if err != nil {
		return 0, fmt.Errorf("history: prune samples: %w", err)
	}
	return res.RowsAffected()
}

// Baseline returns target's stored baseline (probe name → ms); the map is
// empty, not nil, when none was saved.
func (s *Store) Baseline(ctx context.Context, target string) (map[string]float64, error) {
	rows, err := s.query(ctx, `SELECT probe, value_ms FROM baselines WHERE target = ?`, target)
	if err != nil {
		return nil, fmt.Errorf("history: baseline: %w", err)
	}
	defer rows.Close()
	out := map[string]float64{}
	for rows.Next() {
		var probe string
		var v float64
		if err := rows.Scan(&probe, &v); err != nil {
			return nil, fmt.Errorf("history: baseline: %w", err)
		}
		out[probe] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: baseline: %w", err)
	}
	return out, nil
}

// SaveBaseline replaces target's baseline with values, atomically.
func (s *Store) SaveBaseline(ctx context.Context, target string, values map[string]float64) error {
	for probe, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("history: baseline %s/%s: value %v is not finite", target, probe, v)
		}
	}
	now := ms(time.Now())
	err := s.inTx(ctx, func(tx tx) error {
		if s.dialect == DriverPostgres {
			// Serialise savers of one target: without it two concurrent
			// replacements could merge (each deletes only the rows it sees).
			if _, err := tx.exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('themis.baseline:' || ?, 0))`, target); err != nil {
				return err
			}
		}
		if _, err := tx.exec(ctx, `DELETE FROM baselines WHERE target = ?`, target); err != nil {
			return err
		}
		for probe, v := range values {
			if _, err := tx.exec(ctx, `INSERT INTO baselines (target, probe, value_ms, updated_at_ms) VALUES (?, ?, ?, ?)`,
				target, probe, v, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("history: save baseline: %w", err)
	}
	return nil
}

// RecordBackup stores a backup record (verified or not). There is one record
// per (Target, Path): recording the same path again (a retried activity, or
// a new backup written over a removed one's path) replaces the record and
// clears its removal mark.
func (s *Store) RecordBackup(ctx context.Context, rec driver.BackupRecord) error {
	details, err := marshalDetails(rec.Details)
	if err != nil {
		return fmt.Errorf("history: record backup: %w", err)
	}
	taken := rec.TakenAt
	if taken.IsZero() {
		taken = time.Now()
	}
	_, err = s.exec(ctx, `INSERT INTO backups (target, path, method, taken_at_ms, verified, bytes, details_json, removed_at_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, 0)
		ON CONFLICT (target, path) DO UPDATE SET method = excluded.method, taken_at_ms = excluded.taken_at_ms,
			verified = excluded.verified, bytes = excluded.bytes, details_json = excluded.details_json,
			removed_at_ms = 0`, rec.Target, rec.Path, rec.Method, ms(taken), rec.Verified, rec.Bytes, details)
	if err != nil {
		return fmt.Errorf("history: record backup: %w", err)
	}
	return nil
}

// MarkBackupRemoved records that the file of target's backup at path was
// deleted at the time at: the record stays, but it is no longer a backup
// LatestBackup returns. Marking a path with no record is not an error.
func (s *Store) MarkBackupRemoved(ctx context.Context, target, path string, at time.Time) error {
	if _, err := s.exec(ctx, `UPDATE backups SET removed_at_ms = ? WHERE target = ? AND path = ? AND removed_at_ms = 0`,
		ms(at), target, path); err != nil {
		return fmt.Errorf("history: mark backup %s removed: %w", path, err)
	}
	return nil
}

// LatestBackup returns target's newest verified backup whose file has not
// been removed; ok is false when there is none.
func (s *Store) LatestBackup(ctx context.Context, target string) (driver.BackupRecord, bool, error) {
	recs, err := s.backups(ctx, target, true, true, 1)
	if err != nil || len(recs) == 0 {
		return driver.BackupRecord{}, false, err
	}
	return recs[0], true, nil
}

// Backups returns target's backup records, newest first, at most limit
// (0 = 100), removed ones included (RemovedAt set); verifiedOnly leaves out
// backups that failed verification.
func (s *Store) Backups(ctx context.Context, target string, verifiedOnly bool, limit int) ([]driver.BackupRecord, error) {
	return s.backups(ctx, target, verifiedOnly, false, limit)
}

func (s *Store) backups(ctx context.Context, target string, verifiedOnly, presentOnly bool, limit int) ([]driver.BackupRecord, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.query(ctx, `SELECT path, method, taken_at_ms, verified, bytes, details_json, removed_at_ms FROM backups
		WHERE target = ? AND (verified OR NOT ?) AND (removed_at_ms = 0 OR NOT ?)
		ORDER BY taken_at_ms DESC, id DESC LIMIT ?`, target, verifiedOnly, presentOnly, limit)
	if err != nil {
		return nil, fmt.Errorf("history: backups: %w", err)
	}
	defer rows.Close()
	var out []driver.BackupRecord
	for rows.Next() {
		rec := driver.BackupRecord{Target: target}
		var taken, removed int64
		var details string
		if err := rows.Scan(&rec.Path, &rec.Method, &taken, &rec.Verified, &rec.Bytes, &details, &removed); err != nil {
			return nil, fmt.Errorf("history: backups: %w", err)
		}
		rec.TakenAt = fromMs(taken)
		if removed != 0 {
			at := fromMs(removed)
			rec.RemovedAt = &at
		}
		rec.Details = unmarshalDetails(details)
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: backups: %w", err)
	}
	return out, nil
}

func marshalDetails(d map[string]any) (string, error) {
	if d == nil {
		return "{}", nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("encode details: %w", err)
	}
	return string(b), nil
}

// unmarshalDetails decodes stored details; a row that does not decode (it
// was written by hand) yields an empty map rather than failing a listing.
func unmarshalDetails(s string) map[string]any {
	out := map[string]any{}
	_ = json.Unmarshal([]byte(s), &out)
	return out
}
