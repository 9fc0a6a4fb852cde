-- Idempotent activity writes (one job record per job, one backup record per
-- file), job records filterable by schedule, and the audit log.

-- +goose Up
CREATE UNIQUE INDEX task_results_job_record ON task_results (job_id) WHERE task = 'job';
ALTER TABLE task_results ADD COLUMN schedule_id TEXT NOT NULL DEFAULT '';
CREATE INDEX task_results_jobs ON task_results (task, started_at_ms);
CREATE INDEX task_results_by_finish ON task_results (finished_at_ms);

CREATE UNIQUE INDEX backups_by_path ON backups (target, path);

CREATE TABLE audit_events (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	time_ns    BIGINT NOT NULL,
	principal  TEXT NOT NULL,
	action     TEXT NOT NULL,
	outcome    TEXT NOT NULL,
	event_json TEXT NOT NULL
);
CREATE INDEX audit_events_by_time ON audit_events (time_ns);

-- Keys of sample batches recorded with RecordSamplesOnce.
CREATE TABLE sample_batches (
	batch_key TEXT PRIMARY KEY,
	at_ms     BIGINT NOT NULL
);
