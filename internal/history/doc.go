// Package history is the durable store behind driver.History: size and row
// samples for trends, per-target performance baselines, backup records, the
// results of finished tasks and the records of whole jobs, disaster-recovery
// drill reports, and (for audit.StoreLog) the audit log. Trends, baselines,
// job records and drill reports survive worker restarts and Temporal's
// retention.
//
// Two drivers keep it, behind one Store type and one set of queries
// (written with "?" placeholders and rebound to $n for PostgreSQL):
//
//   - Open: an embedded SQLite file (modernc.org/sqlite, pure Go), the
//     default, in WAL mode with a busy timeout. Processes sharing the file
//     serialise their schema migrations on an flock of "<file>.migrate-lock".
//   - OpenPostgres: a PostgreSQL database (pgx v5 through database/sql),
//     shared by every worker and API replica. Migrations run under a session
//     advisory lock.
//
// The schema is versioned by goose (github.com/pressly/goose/v3): embedded
// SQL files per dialect (migrations/sqlite, migrations/postgres) with the
// same version numbers, applied at Open, recorded in VersionTable. A SQLite
// file made by the hand-rolled migrations of earlier releases
// (schema_migrations, versions 1..3) is adopted as it is: its schema is
// goose's version 1.
//
// Rows written by activities are idempotent on retry: a task result is
// unique per (job, task, start), a job record (task "job") per job, a backup
// record per (target, path), a drill report per id; RecordSamplesOnce takes
// an idempotency key for a batch of samples. Prune and RunRetention apply
// retention. Times are stored as Unix milliseconds (UTC), matching the _ms
// fields of the API; audit events keep nanoseconds.
package history
