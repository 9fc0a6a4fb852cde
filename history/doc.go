// Package history is the durable store behind driver.History: size and row
// samples for trends, per-target performance baselines, backup records, the
// results of finished tasks, and disaster-recovery drill reports. It keeps
// them in one SQLite file (modernc.org/sqlite, pure Go) so that trends,
// baselines and drill reports survive worker restarts.
//
// Open creates the file and its schema (migrations are versioned and
// idempotent, so any number of processes may open the same file), puts it in
// WAL mode with a busy timeout, and returns a Store that is safe for
// concurrent use. Times are stored as Unix milliseconds (UTC), matching the
// _ms fields of the API.
package history
