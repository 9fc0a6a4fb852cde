-- The units of work (tables, indexes) a task left undone when its budget ran
-- out (the window closed, or the schedule's time limit): the next run of the
-- same schedule starts with them, whichever worker runs it. A task that ran
-- without leaving any clears its row.

-- +goose Up
CREATE TABLE carried_units (
	schedule_id   TEXT NOT NULL,
	target        TEXT NOT NULL,
	task          TEXT NOT NULL,
	units         TEXT NOT NULL,
	stopped_by    TEXT NOT NULL DEFAULT '',
	job_id        TEXT NOT NULL,
	updated_at_ms BIGINT NOT NULL,
	PRIMARY KEY (schedule_id, target, task)
);

-- +goose Down
DROP TABLE carried_units;
