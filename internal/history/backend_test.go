package history

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// The store's tests run against both drivers: a SQLite file and a database
// of a throwaway PostgreSQL cluster (one cluster per test binary, one fresh
// database per test). With -short the PostgreSQL variants are skipped.

var pg struct {
	once sync.Once
	c    *pgcluster.Cluster
	err  error
	n    atomic.Int64
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if pg.c != nil {
		if err := pg.c.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgcluster stop:", err)
		}
	}
	os.Exit(code)
}

// backend makes Stores on one database: open returns another Store (as
// another process would have) on the same database each time.
type backend struct {
	name string
	dial func() (*Store, error)
}

func (b backend) open(t *testing.T) *Store {
	t.Helper()
	s, err := b.dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func sqliteBackend(t *testing.T) backend {
	path := filepath.Join(t.TempDir(), "sub", "history.db")
	return backend{name: DriverSQLite, dial: func() (*Store, error) { return Open(path) }}
}

func postgresBackend(t *testing.T) backend {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no PostgreSQL variant")
	}
	pg.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		pg.c, pg.err = pgcluster.StartCluster(ctx, pgcluster.Options{})
	})
	if pg.err != nil {
		t.Fatalf("pgcluster: %v", pg.err)
	}
	db := fmt.Sprintf("history_%d", pg.n.Add(1))
	pg.c.Exec(t, "postgres", "CREATE DATABASE "+db)
	dsn := pg.c.DSN(db)
	return backend{name: DriverPostgres, dial: func() (*Store, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return OpenPostgres(ctx, dsn)
	}}
}

var allBackends = []struct {
	name string
	mk   func(*testing.T) backend
}{{DriverSQLite, sqliteBackend}, {DriverPostgres, postgresBackend}}

// forEachFreshBackend runs fn once per driver, each on a fresh database that
// no Store has opened yet.
func forEachFreshBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, v := range allBackends {
		t.Run(v.name, func(t *testing.T) { fn(t, v.mk(t)) })
	}
}

// forEachBackend runs fn once per driver, each on a fresh database.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend, s *Store)) {
	for _, v := range allBackends {
		t.Run(v.name, func(t *testing.T) {
			b := v.mk(t)
			s := b.open(t)
			if s.Driver() != b.name {
				t.Fatalf("driver %q, want %q", s.Driver(), b.name)
			}
			fn(t, b, s)
		})
	}
}
