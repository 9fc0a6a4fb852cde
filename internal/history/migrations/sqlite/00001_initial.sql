-- The schema of the history store as the hand-rolled migrations (versions
-- 1..3 in schema_migrations) left it. Every statement is IF NOT EXISTS, so a
-- file made by that code (adopted first by legacyMigrate) passes through
-- unchanged.

-- +goose Up
CREATE TABLE IF NOT EXISTS samples (
	target TEXT NOT NULL,
	metric TEXT NOT NULL,
	at_ms  INTEGER NOT NULL,
	value  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_by_metric ON samples (target, metric, at_ms);
CREATE TABLE IF NOT EXISTS baselines (
	target        TEXT NOT NULL,
	probe         TEXT NOT NULL,
	value_ms      REAL NOT NULL,
	updated_at_ms INTEGER NOT NULL,
	PRIMARY KEY (target, probe)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS backups (
	id            INTEGER PRIMARY KEY,
	target        TEXT NOT NULL,
	path          TEXT NOT NULL,
	method        TEXT NOT NULL,
	taken_at_ms   INTEGER NOT NULL,
	verified      INTEGER NOT NULL,
	bytes         INTEGER NOT NULL,
	details_json  TEXT NOT NULL DEFAULT '{}',
	removed_at_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS backups_by_target ON backups (target, verified, taken_at_ms);
CREATE TABLE IF NOT EXISTS task_results (
	id             INTEGER PRIMARY KEY,
	job_id         TEXT NOT NULL,
	target         TEXT NOT NULL,
	task           TEXT NOT NULL,
	state          TEXT NOT NULL,
	started_at_ms  INTEGER NOT NULL,
	finished_at_ms INTEGER NOT NULL,
	summary        TEXT NOT NULL,
	details_json   TEXT NOT NULL DEFAULT '{}',
	error          TEXT NOT NULL DEFAULT '',
	UNIQUE (job_id, task, started_at_ms)
);
CREATE INDEX IF NOT EXISTS task_results_by_target ON task_results (target, finished_at_ms);
CREATE TABLE IF NOT EXISTS drill_reports (
	id            TEXT PRIMARY KEY,
	target        TEXT NOT NULL,
	report_json   TEXT NOT NULL,
	created_at_ms INTEGER NOT NULL,
	updated_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS drill_reports_by_time ON drill_reports (created_at_ms);
