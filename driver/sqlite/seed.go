package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// demoSchema is the demo database: a small shop with foreign keys and the
// indexes an application would have.
const demoSchema = `
CREATE TABLE customers (
	id         INTEGER PRIMARY KEY,
	email      TEXT NOT NULL UNIQUE,
	name       TEXT NOT NULL,
	country    TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX idx_customers_country ON customers (country);
CREATE TABLE orders (
	id          INTEGER PRIMARY KEY,
	customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
	status      TEXT NOT NULL CHECK (status IN ('new', 'paid', 'shipped', 'cancelled')),
	total_cents INTEGER NOT NULL,
	created_at  INTEGER NOT NULL
);
CREATE INDEX idx_orders_customer ON orders (customer_id);
CREATE INDEX idx_orders_status_created ON orders (status, created_at);
CREATE TABLE order_items (
	id          INTEGER PRIMARY KEY,
	order_id    INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
	sku         TEXT NOT NULL,
	quantity    INTEGER NOT NULL CHECK (quantity > 0),
	price_cents INTEGER NOT NULL
);
CREATE INDEX idx_order_items_order ON order_items (order_id);
CREATE INDEX idx_order_items_sku ON order_items (sku);
CREATE TABLE events (
	id         INTEGER PRIMARY KEY,
	kind       TEXT NOT NULL,
	subject    TEXT NOT NULL,
	payload    TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX idx_events_kind_created ON events (kind, created_at);
CREATE INDEX idx_events_subject ON events (subject);
`

// Demo sizes: about 22,000 rows before the deletes, 18,000 after.
const (
	demoCustomers = 1_000
	demoOrders    = 4_000
	demoEvents    = 8_000
)

// SeedDemo creates the demo database at path: customers, orders,
// order_items and events with indexes and foreign keys, about 20,000 rows,
// then deletes every other event and the cancelled orders (with their items)
// so that fragmentation monitoring, compaction and reindexing have real
// work to find. It is idempotent: a file that already has tables is left as
// it is. The database is put in WAL mode.
func SeedDemo(ctx context.Context, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("seed demo: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("seed demo: %w", err)
	}
	db, err := sql.Open("sqlite", fileURI(abs, "rwc", DefaultBusyTimeout)+"&_foreign_keys=1&_journal_mode=WAL")
	if err != nil {
		return fmt.Errorf("seed demo: open: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // foreign_keys and the transaction stay on one connection
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table'`).Scan(&tables); err != nil {
		return fmt.Errorf("seed demo: read schema: %w", err)
	}
	if tables > 0 {
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("seed demo: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if err := seedRows(ctx, tx); err != nil {
		return fmt.Errorf("seed demo: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("seed demo: commit: %w", err)
	}
	// Deletes in their own transaction, after the data is laid out, leave
	// half-empty pages and free pages behind, as an application would.
	for _, stmt := range []string{
		`DELETE FROM events WHERE id % 2 = 0`,
		`DELETE FROM orders WHERE status = 'cancelled'`,
		`PRAGMA wal_checkpoint(TRUNCATE)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("seed demo: %s: %w", stmt, err)
		}
	}
	return nil
}

// hashExpr is SQL for a deterministic pseudo-random non-negative integer
// derived from expr: the demo data is generated inside SQLite, by a few
// INSERT … SELECT statements, and is the same on every run.
func hashExpr(expr string, salt int) string {
	return fmt.Sprintf("(((%s) * 2654435761 + %d) %% 2147483647)", expr, 97+salt*40503)
}

func seedRows(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, demoSchema); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	seq := func(n int) string {
		return fmt.Sprintf("WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < %d) ", n)
	}
	h := hashExpr
	stmts := []struct{ name, sql string }{
		{"customers", seq(demoCustomers) + fmt.Sprintf(`
			INSERT INTO customers (id, email, name, country, created_at)
			SELECT i, printf('customer%%04d@example.com', i), printf('Customer %%04d', i),
				substr('DEFRUSGBNLSEJPBRINCA', 1 + 2 * (%s %% 10), 2), %d + i * 3600
			FROM seq`, h("i", 1), start)},
		// Status weights: new 1, paid 2, shipped 3, cancelled 1 (of 7).
		{"orders", seq(demoOrders) + fmt.Sprintf(`
			INSERT INTO orders (id, customer_id, status, total_cents, created_at)
			SELECT i, 1 + %s %% %d,
				CASE %s %% 7 WHEN 0 THEN 'new' WHEN 1 THEN 'paid' WHEN 2 THEN 'paid'
					WHEN 6 THEN 'cancelled' ELSE 'shipped' END,
				0, %d + i * 900
			FROM seq`, h("i", 2), demoCustomers, h("i", 3), start)},
		// 1–4 items per order, about 10,000 in all.
		{"order_items", seq(demoOrders) + fmt.Sprintf(`, k(n) AS (VALUES (1), (2), (3), (4))
			INSERT INTO order_items (order_id, sku, quantity, price_cents)
			SELECT i, printf('SKU-%%05d', %s %% 2000), 1 + %s %% 3, 100 + %s %% 20000
			FROM seq JOIN k ON n <= 1 + %s %% 4
			ORDER BY i, n`, h("i * 4 + n", 4), h("i * 4 + n", 5), h("i * 4 + n", 6), h("i", 7))},
		{"order totals", `UPDATE orders SET total_cents =
			(SELECT coalesce(sum(quantity * price_cents), 0) FROM order_items WHERE order_id = orders.id)`},
		{"events", seq(demoEvents) + fmt.Sprintf(`
			INSERT INTO events (id, kind, subject, payload, created_at)
			SELECT i, kind, printf('customer:%%d', 1 + %s %% %d),
				printf('{"kind":"%%s","session":"%%08x%%08x","path":"/shop/item/%%d","agent":"Mozilla/5.0 (demo)"}',
					kind, %s, %s, %s %% 5000),
				%d + i * 60
			FROM (SELECT i, CASE %s %% 6 WHEN 0 THEN 'login' WHEN 1 THEN 'logout' WHEN 2 THEN 'view'
				WHEN 3 THEN 'search' WHEN 4 THEN 'cart_add' ELSE 'checkout' END AS kind FROM seq)`,
			h("i", 8), demoCustomers, h("i", 9), h("i", 10), h("i", 11), start, h("i", 12))},
	}
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st.sql); err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
	}
	return nil
}
