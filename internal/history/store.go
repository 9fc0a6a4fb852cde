package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/themis-maintenance/themis/driver"
)

// busyTimeout is how long a SQLite statement waits for another writer's lock.
const busyTimeout = 10 * time.Second

// Drivers a Store runs on (Store.Driver).
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Store is the history store. It implements driver.History and is safe for
// concurrent use by many goroutines, and by several processes sharing the
// database: SQLite serialises writers of one file (readers run alongside them
// in WAL mode); on PostgreSQL any number of workers and API replicas share
// one database.
//
// Both drivers run the same queries: they are written with "?" placeholders,
// which rebind turns into $1, $2, … for PostgreSQL.
type Store struct {
	db      *sql.DB
	dialect string
}

var _ driver.History = (*Store)(nil)
var _ driver.UnitHistory = (*Store)(nil)

// Open opens (creating if needed) the SQLite history database at path, sets
// WAL mode and a busy timeout, and applies the schema migrations it has not
// applied yet. The parent directory is created when missing. A file made by
// the earlier hand-rolled migrations (table schema_migrations) is adopted as
// it is.
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
	s := &Store{db: db, dialect: DriverSQLite}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	unlock, err := lockFile(ctx, abs+".migrate-lock")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("history: %w", err)
	}
	defer unlock()
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("history: %w", err)
	}
	return s, nil
}

// OpenPostgres connects to the PostgreSQL history database named by dsn (a
// libpq keyword/value string or a postgres:// URL, as pgx reads them) and
// applies the schema migrations it has not applied yet. Several processes
// may start at once: migrations run under a session advisory lock. The
// tables live in the first schema of the connection's search_path.
func OpenPostgres(ctx context.Context, dsn string) (*Store, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, errors.New("history: empty PostgreSQL dsn")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN; keep the password out of logs.
		return nil, errors.New("history: malformed PostgreSQL dsn")
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "themis-history"
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(10)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{db: db, dialect: DriverPostgres}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("history: connect to PostgreSQL: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("history: %w", err)
	}
	return s, nil
}

// Driver returns DriverSQLite or DriverPostgres.
func (s *Store) Driver() string { return s.dialect }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks that the store answers (health probes).
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// rebind rewrites the "?" placeholders of query for the store's driver. A
// "?" inside a quoted string literal or identifier is left alone.
func (s *Store) rebind(query string) string {
	if s.dialect != DriverPostgres {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.db.ExecContext(ctx, s.rebind(query), args...)
}

func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.db.QueryContext(ctx, s.rebind(query), args...)
}

func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.db.QueryRowContext(ctx, s.rebind(query), args...)
}

// tx is a transaction that rebinds its queries like the Store does.
type tx struct {
	*sql.Tx
	s *Store
}

func (t tx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.ExecContext(ctx, t.s.rebind(query), args...)
}

func (t tx) prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	return t.PrepareContext(ctx, t.s.rebind(query))
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE on SQLite) and
// commits it, or rolls it back when fn fails.
func (s *Store) inTx(ctx context.Context, fn func(tx) error) error {
	t, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx{Tx: t, s: s}); err != nil {
		_ = t.Rollback()
		return err
	}
	return t.Commit()
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMs(v int64) time.Time { return time.UnixMilli(v).UTC() }
