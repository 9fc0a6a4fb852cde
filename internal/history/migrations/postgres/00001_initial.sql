-- The schema of the history store as of SQLite version 1 (the three
-- hand-rolled migrations), so that versions mean the same on both dialects.

-- +goose Up
CREATE TABLE samples (
	id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	target TEXT NOT NULL,
	metric TEXT NOT NULL,
	at_ms  BIGINT NOT NULL,
	value  DOUBLE PRECISION NOT NULL
);
CREATE INDEX samples_by_metric ON samples (target, metric, at_ms);
CREATE INDEX samples_by_time ON samples (at_ms);
CREATE TABLE baselines (
	target        TEXT NOT NULL,
	probe         TEXT NOT NULL,
	value_ms      DOUBLE PRECISION NOT NULL,
	updated_at_ms BIGINT NOT NULL,
	PRIMARY KEY (target, probe)
);
CREATE TABLE backups (
	id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	target        TEXT NOT NULL,
	path          TEXT NOT NULL,
	method        TEXT NOT NULL,
	taken_at_ms   BIGINT NOT NULL,
	verified      BOOLEAN NOT NULL,
	bytes         BIGINT NOT NULL,
	details_json  TEXT NOT NULL DEFAULT '{}',
	removed_at_ms BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX backups_by_target ON backups (target, verified, taken_at_ms);
CREATE TABLE task_results (
	id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	job_id         TEXT NOT NULL,
	target         TEXT NOT NULL,
	task           TEXT NOT NULL,
	state          TEXT NOT NULL,
	started_at_ms  BIGINT NOT NULL,
	finished_at_ms BIGINT NOT NULL,
	summary        TEXT NOT NULL,
	details_json   TEXT NOT NULL DEFAULT '{}',
	error          TEXT NOT NULL DEFAULT '',
	UNIQUE (job_id, task, started_at_ms)
);
CREATE INDEX task_results_by_target ON task_results (target, finished_at_ms);
CREATE TABLE drill_reports (
	id            TEXT PRIMARY KEY,
	target        TEXT NOT NULL,
	report_json   TEXT NOT NULL,
	created_at_ms BIGINT NOT NULL,
	updated_at_ms BIGINT NOT NULL
);
CREATE INDEX drill_reports_by_time ON drill_reports (created_at_ms);
