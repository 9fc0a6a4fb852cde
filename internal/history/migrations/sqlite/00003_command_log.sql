-- The command log: every statement a task ran on a target.

-- +goose Up
CREATE TABLE commands (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	job_id         TEXT NOT NULL,
	schedule_id    TEXT NOT NULL DEFAULT '',
	target         TEXT NOT NULL,
	task           TEXT NOT NULL,
	attempt        INTEGER NOT NULL DEFAULT 0,
	object         TEXT NOT NULL DEFAULT '',
	operation      TEXT NOT NULL DEFAULT '',
	statement      TEXT NOT NULL,
	started_at_ms  INTEGER NOT NULL,
	finished_at_ms INTEGER NOT NULL,
	duration_ms    INTEGER NOT NULL,
	rows_affected  INTEGER NOT NULL DEFAULT 0,
	throttled_ms   INTEGER NOT NULL DEFAULT 0,
	error          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX commands_by_job ON commands (job_id, id);
CREATE INDEX commands_by_target ON commands (target, object, id);
CREATE INDEX commands_by_start ON commands (started_at_ms);

-- +goose Down
DROP TABLE commands;
