package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/themis-maintenance/themis/driver"
)

// busyTimeout is how long a statement waits for another writer's lock.
const busyTimeout = 10 * time.Second

// Store is the SQLite history store. It implements driver.History and is safe
// for concurrent use by many goroutines (and by several processes sharing the
// file: SQLite serialises writers, readers run alongside them in WAL mode).
type Store struct {
	db *sql.DB
}

var _ driver.History = (*Store)(nil)

// Open opens (creating if needed) the history database at path, sets WAL mode
// and a busy timeout, and applies the schema migrations it has not applied
// yet. The parent directory is created when missing.
func Open(path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("history: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("history: create directory: %w", err)
	}
	u := url.URL{Scheme: "file", Path: abs}
	q := url.Values{}
	q.Add("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Add("_journal_mode", "WAL")
	q.Add("_synchronous", "NORMAL")
	q.Add("_foreign_keys", "1")
	// Write transactions take the write lock at BEGIN, so two writers wait
	// on busy_timeout instead of failing with SQLITE_BUSY on lock upgrade.
	q.Add("_txlock", "immediate")
	db, err := sql.Open("sqlite", u.String()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("history: open: %w", err)
	}
	db.SetMaxOpenConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{db: db}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("history: %w", err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks that the store answers (health probes).
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// migrations are applied in order; each runs once, recorded in
// schema_migrations. Never edit a released migration: append a new one.
var migrations = []string{
	// 1: samples, baselines, backups.
	`CREATE TABLE IF NOT EXISTS samples (
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
		id           INTEGER PRIMARY KEY,
		target       TEXT NOT NULL,
		path         TEXT NOT NULL,
		method       TEXT NOT NULL,
		taken_at_ms  INTEGER NOT NULL,
		verified     INTEGER NOT NULL,
		bytes        INTEGER NOT NULL,
		details_json TEXT NOT NULL DEFAULT '{}'
	);
	CREATE INDEX IF NOT EXISTS backups_by_target ON backups (target, verified, taken_at_ms);`,
	// 2: task results and drill reports.
	`CREATE TABLE IF NOT EXISTS task_results (
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
	CREATE INDEX IF NOT EXISTS drill_reports_by_time ON drill_reports (created_at_ms);`,
	// 3: backups whose file was deleted (a DR drill's own backup, removed by
	// its clean-up) stay on record but are no longer the latest backup.
	`ALTER TABLE backups ADD COLUMN removed_at_ms INTEGER NOT NULL DEFAULT 0;`,
}

func (s *Store) migrate(ctx context.Context) error {
	// The first statement may have to switch the file to WAL; do it before
	// any transaction so it takes effect.
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version       INTEGER PRIMARY KEY,
		applied_at_ms INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for i, stmt := range migrations {
		version := i + 1
		if err := s.inTx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?, ?)`,
				version, time.Now().UnixMilli())
			return err
		}); err != nil {
			return fmt.Errorf("migration %d: %w", version, err)
		}
	}
	return nil
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits it, or
// rolls it back when fn fails.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMs(v int64) time.Time { return time.UnixMilli(v).UTC() }
