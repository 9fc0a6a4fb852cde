package history

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// The schema is versioned by goose (github.com/pressly/goose/v3): one
// directory of SQL files per dialect, with the same version numbers meaning
// the same schema on both. Never edit a released migration: add a file.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// VersionTable is the table in which goose records the applied versions.
const VersionTable = "themis_history_versions"

// migrationLockID is the PostgreSQL advisory lock taken while migrating (so
// that workers and API replicas starting together apply each version once).
const migrationLockID int64 = 0x7468656d6973_01 // "themis", 1

// migrate brings the schema up to date. On SQLite the caller holds the
// file's migration lock.
func (s *Store) migrate(ctx context.Context) error {
	var (
		dir     string
		dialect goose.Dialect
		opts    = []goose.ProviderOption{
			goose.WithTableName(VersionTable),
			goose.WithDisableGlobalRegistry(true),
		}
	)
	switch s.dialect {
	case DriverSQLite:
		dir, dialect = "migrations/sqlite", goose.DialectSQLite3
		// The first statement may switch the file to WAL; do it before any
		// transaction so that it takes effect.
		if _, err := s.db.ExecContext(ctx, `PRAGMA journal_mode = WAL`); err != nil {
			return fmt.Errorf("set WAL mode: %w", err)
		}
		if err := s.adoptLegacy(ctx); err != nil {
			return err
		}
	case DriverPostgres:
		dir, dialect = "migrations/postgres", goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID),
			lock.WithLockTimeout(2, 150)) // retry every 2s for 5 minutes
		if err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	default:
		return fmt.Errorf("unknown driver %q", s.dialect)
	}
	fsys, err := fs.Sub(migrationFiles, dir)
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(dialect, s.db, fsys, opts...)
	if err != nil {
		return fmt.Errorf("schema migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("schema migrations: %w", err)
	}
	return nil
}

// SchemaVersion returns the newest schema version applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int64, error) {
	var v sql.NullInt64
	err := s.queryRow(ctx, `SELECT max(version_id) FROM `+VersionTable+` WHERE is_applied = ?`, true).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("history: schema version: %w", err)
	}
	return v.Int64, nil
}

// legacyMigrations are the hand-rolled migrations the store used before
// goose, recorded in schema_migrations. They are kept only to finish a file
// that an older release left part way (adoptLegacy); goose's version 1 is
// the schema they end in. Never change them.
var legacyMigrations = []string{
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

// adoptLegacy finishes the hand-rolled migrations of a SQLite file made by
// an older release (one that has a schema_migrations table), so that the
// file is exactly goose's version 1 before goose runs. A new file, or one
// already complete, is left alone. schema_migrations itself is kept, so an
// older release can still open the file.
func (s *Store) adoptLegacy(ctx context.Context) error {
	var n int
	if err := s.db.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return fmt.Errorf("look for schema_migrations: %w", err)
	}
	if n == 0 {
		return nil
	}
	return legacyMigrate(ctx, s.db, legacyMigrations)
}

// legacyMigrate is the migration code of the releases before goose,
// unchanged: each version runs once, in its own transaction, recorded in
// schema_migrations.
func legacyMigrate(ctx context.Context, db *sql.DB, migrations []string) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version       INTEGER PRIMARY KEY,
		applied_at_ms INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for i, stmt := range migrations {
		version := i + 1
		if err := func() error {
			t, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer func() { _ = t.Rollback() }()
			var n int
			if err := t.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := t.ExecContext(ctx, stmt); err != nil {
				return err
			}
			if _, err := t.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?, ?)`,
				version, time.Now().UnixMilli()); err != nil {
				return err
			}
			return t.Commit()
		}(); err != nil {
			return fmt.Errorf("legacy migration %d: %w", version, err)
		}
	}
	return nil
}

var errLockTimeout = errors.New("timed out waiting for another process migrating the history file")
