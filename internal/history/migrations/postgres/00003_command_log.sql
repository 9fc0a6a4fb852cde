-- The command log: every statement a task ran on a target.

-- +goose Up
CREATE TABLE commands (
	id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	job_id         TEXT NOT NULL,
	schedule_id    TEXT NOT NULL DEFAULT '',
	target         TEXT NOT NULL,
	task           TEXT NOT NULL,
	attempt        BIGINT NOT NULL DEFAULT 0,
	object         TEXT NOT NULL DEFAULT '',
	operation      TEXT NOT NULL DEFAULT '',
	statement      TEXT NOT NULL,
	started_at_ms  BIGINT NOT NULL,
	finished_at_ms BIGINT NOT NULL,
	duration_ms    BIGINT NOT NULL,
	rows_affected  BIGINT NOT NULL DEFAULT 0,
	throttled_ms   BIGINT NOT NULL DEFAULT 0,
	error          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX commands_by_job ON commands (job_id, id);
CREATE INDEX commands_by_target ON commands (target, object, id);
CREATE INDEX commands_by_start ON commands (started_at_ms);

-- +goose Down
DROP TABLE commands;
