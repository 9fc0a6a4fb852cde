-- Manual pauses of maintenance on a target (POST /targets/{name}/throttle):
-- every worker's pacer reads them, so a pause set once holds everywhere.

-- +goose Up
CREATE TABLE target_throttles (
	target        TEXT PRIMARY KEY,
	until_ms      BIGINT NOT NULL,
	reason        TEXT NOT NULL DEFAULT '',
	created_by    TEXT NOT NULL DEFAULT '',
	created_at_ms BIGINT NOT NULL
);

-- +goose Down
DROP TABLE target_throttles;
