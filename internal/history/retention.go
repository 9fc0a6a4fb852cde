package history

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// PruneResult counts the rows Prune deleted.
type PruneResult struct {
	Samples      int64 `json:"samples"`
	SampleKeys   int64 `json:"sample_keys"`
	TaskResults  int64 `json:"task_results"` // job records included
	DrillReports int64 `json:"drill_reports"`
	Backups      int64 `json:"backups"`
	Commands     int64 `json:"commands"`
}

// Prune applies retention. A zero cutoff leaves its kind of rows alone.
//
//   - Samples taken before sampleCutoff go (and the RecordSamplesOnce keys
//     recorded before it).
//   - Task results and job records (task "job") of tasks and jobs that
//     finished before jobCutoff go, and so do command-log rows of
//     statements that finished before it.
//   - Drill reports last updated before jobCutoff go, except the newest
//     report of each target, which is kept whatever its age: it is the
//     evidence that the target's backups were last shown to restore.
//   - Backup records whose file was removed (MarkBackupRemoved) before
//     jobCutoff go, except the newest verified record of each target.
//     Records of backups whose file is still there are never pruned: they
//     are how backup pruning finds the files.
//
// Audit events are not touched: how long the audit log is kept is a
// compliance decision, not a history setting.
//
// Prune is safe to run from several processes at once (each deletes what
// the others have not).
func (s *Store) Prune(ctx context.Context, sampleCutoff, jobCutoff time.Time) (PruneResult, error) {
	var r PruneResult
	del := func(n *int64, what, query string, cutoff time.Time) error {
		res, err := s.exec(ctx, query, ms(cutoff))
		if err != nil {
			return fmt.Errorf("history: prune %s: %w", what, err)
		}
		*n, err = res.RowsAffected()
		if err != nil {
			return fmt.Errorf("history: prune %s: %w", what, err)
		}
		return nil
	}
	if !sampleCutoff.IsZero() {
		if err := del(&r.Samples, "samples", `DELETE FROM samples WHERE at_ms < ?`, sampleCutoff); err != nil {
			return r, err
		}
		if err := del(&r.SampleKeys, "sample keys", `DELETE FROM sample_batches WHERE at_ms < ?`, sampleCutoff); err != nil {
			return r, err
		}
	}
	if jobCutoff.IsZero() {
		return r, nil
	}
	if err := del(&r.TaskResults, "task results", `DELETE FROM task_results WHERE finished_at_ms < ?`, jobCutoff); err != nil {
		return r, err
	}
	if err := del(&r.Commands, "commands", `DELETE FROM commands WHERE finished_at_ms < ?`, jobCutoff); err != nil {
		return r, err
	}
	if err := del(&r.DrillReports, "drill reports", `DELETE FROM drill_reports WHERE updated_at_ms < ?
		AND EXISTS (SELECT 1 FROM drill_reports n WHERE n.target = drill_reports.target
			AND (n.created_at_ms > drill_reports.created_at_ms
				OR (n.created_at_ms = drill_reports.created_at_ms AND n.id > drill_reports.id)))`, jobCutoff); err != nil {
		return r, err
	}
	if err := del(&r.Backups, "backup records", `DELETE FROM backups WHERE removed_at_ms <> 0 AND removed_at_ms < ?
		AND NOT (verified AND NOT EXISTS (SELECT 1 FROM backups n WHERE n.target = backups.target AND n.verified
			AND (n.taken_at_ms > backups.taken_at_ms OR (n.taken_at_ms = backups.taken_at_ms AND n.id > backups.id))))`, jobCutoff); err != nil {
		return r, err
	}
	return r, nil
}

// RunRetention prunes the store now and then every interval (default one
// hour) until ctx ends, keeping samples for sampleRetention and job and task
// records, drill reports and removed backups' records for jobRetention (see
// Prune); a retention <= 0 keeps those rows for ever. Failures are logged
// and retried at the next tick. The daemon runs it in a goroutine; every
// worker may run it, since Prune from several processes is harmless.
func (s *Store) RunRetention(ctx context.Context, sampleRetention, jobRetention, every time.Duration) {
	if every <= 0 {
		every = time.Hour
	}
	log := slog.Default().With("component", "history.retention")
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		now := time.Now()
		var sampleCutoff, jobCutoff time.Time
		if sampleRetention > 0 {
			sampleCutoff = now.Add(-sampleRetention)
		}
		if jobRetention > 0 {
			jobCutoff = now.Add(-jobRetention)
		}
		if !sampleCutoff.IsZero() || !jobCutoff.IsZero() {
			r, err := s.Prune(ctx, sampleCutoff, jobCutoff)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				log.Warn("history retention failed; retrying at the next tick", "error", err)
			case r != PruneResult{}:
				log.Info("history retention pruned rows", "samples", r.Samples, "task_results", r.TaskResults,
					"drill_reports", r.DrillReports, "backups", r.Backups, "commands", r.Commands)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
