-- Idempotent activity writes (one job record per job, one backup record per
-- file), job records filterable by schedule, and the audit log.

-- +goose Up
DELETE FROM task_results WHERE task = 'job'
	AND id NOT IN (SELECT max(id) FROM task_results WHERE task = 'job' GROUP BY job_id);
CREATE UNIQUE INDEX task_results_job_record ON task_results (job_id) WHERE task = 'job';
ALTER TABLE task_results ADD COLUMN schedule_id TEXT NOT NULL DEFAULT '';
UPDATE task_results SET schedule_id = COALESCE(json_extract(details_json, '$.schedule_id'), '')
	WHERE task = 'job' AND json_valid(details_json);
CREATE INDEX task_results_jobs ON task_results (task, started_at_ms);
CREATE INDEX task_results_by_finish ON task_results (finished_at_ms);

DELETE FROM backups WHERE id NOT IN (SELECT max(id) FROM backups GROUP BY target, path);
CREATE UNIQUE INDEX backups_by_path ON backups (target, path);

CREATE TABLE audit_events (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	time_ns    INTEGER NOT NULL,
	principal  TEXT NOT NULL,
	action     TEXT NOT NULL,
	outcome    TEXT NOT NULL,
	event_json TEXT NOT NULL
);
CREATE INDEX audit_events_by_time ON audit_events (time_ns);

-- Keys of sample batches recorded with RecordSamplesOnce.
CREATE TABLE sample_batches (
	batch_key TEXT PRIMARY KEY,
	at_ms     INTEGER NOT NULL
);
