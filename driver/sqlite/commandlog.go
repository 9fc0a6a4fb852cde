package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"reflect"
	"strings"
	"time"

	msqlite "modernc.org/sqlite"

	"github.com/themis-maintenance/themis/driver/commandlog"
)

// The command log of SQLite targets: every statement a task sends to the
// target goes through the connections opened here, which report it to the
// Recorder in the statement's context (package driver/commandlog), as the
// PostgreSQL driver's pgx tracer does. The object of a statement is the one
// the task put into the context (commandlog.WithObject: the table or index
// a maintenance statement works on); catalog reads name none.

// openRecorded opens dsn (a modernc DSN) with every statement reported to
// the command log of its context, stamped with target.
func openRecorded(dsn, target string) (*sql.DB, error) {
	base, err := msqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(recordingConnector{Connector: base, target: target}), nil
}

type recordingConnector struct {
	driver.Connector
	target string
}

func (c recordingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: conn, target: c.target}, nil
}

// recordingConn forwards the optional interfaces every modernc connection
// implements (msqlite.NewConnector names them), reporting statements.
type recordingConn struct {
	driver.Conn
	target string
}

var (
	_ driver.ConnBeginTx        = (*recordingConn)(nil)
	_ driver.ConnPrepareContext = (*recordingConn)(nil)
	_ driver.ExecerContext      = (*recordingConn)(nil)
	_ driver.QueryerContext     = (*recordingConn)(nil)
	_ driver.Pinger             = (*recordingConn)(nil)
	_ driver.SessionResetter    = (*recordingConn)(nil)
	_ driver.Validator          = (*recordingConn)(nil)
)

// Unwrap returns the modernc connection (msqlite.Limit looks through it).
func (c *recordingConn) Unwrap() driver.Conn { return c.Conn }

func (c *recordingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *recordingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	s, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &recordingStmt{Stmt: s, query: query, target: c.target}, nil
}

func (c *recordingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	start := time.Now()
	res, err := c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
	recordExec(ctx, c.target, query, start, res, err)
	return res, err
}

func (c *recordingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	start := time.Now()
	rows, err := c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
	if err != nil {
		record(ctx, c.target, query, start, 0, err)
		return nil, err
	}
	return &recordingRows{Rows: rows, ctx: ctx, target: c.target, query: query, start: start}, nil
}

func (c *recordingConn) Ping(ctx context.Context) error { return c.Conn.(driver.Pinger).Ping(ctx) }

func (c *recordingConn) ResetSession(ctx context.Context) error {
	return c.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *recordingConn) IsValid() bool { return c.Conn.(driver.Validator).IsValid() }

// recordingStmt reports the executions of a prepared statement.
type recordingStmt struct {
	driver.Stmt
	query, target string
}

var (
	_ driver.StmtExecContext  = (*recordingStmt)(nil)
	_ driver.StmtQueryContext = (*recordingStmt)(nil)
)

func (s *recordingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	start := time.Now()
	res, err := s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
	recordExec(ctx, s.target, s.query, start, res, err)
	return res, err
}

func (s *recordingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	start := time.Now()
	rows, err := s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		record(ctx, s.target, s.query, start, 0, err)
		return nil, err
	}
	return &recordingRows{Rows: rows, ctx: ctx, target: s.target, query: s.query, start: start}, nil
}

// recordingRows reports a query when its rows are closed: SQLite computes
// rows as they are read (an integrity_check runs while its rows are), so the
// statement ends then. Its rows affected are the rows it returned.
type recordingRows struct {
	driver.Rows
	ctx           context.Context
	target, query string
	start         time.Time
	n             int64
	err           error
	done          bool
}

func (r *recordingRows) Next(dest []driver.Value) error {
	err := r.Rows.Next(dest)
	switch {
	case err == nil:
		r.n++
	case !errors.Is(err, io.EOF):
		r.err = err
	}
	return err
}

func (r *recordingRows) Close() error {
	err := r.Rows.Close()
	if !r.done {
		r.done = true
		record(r.ctx, r.target, r.query, r.start, r.n, r.err)
	}
	return err
}

// The column-type interfaces of modernc's rows, forwarded.

func (r *recordingRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *recordingRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *recordingRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *recordingRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *recordingRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

// recordExec reports an executed statement. SQLite counts changed rows for
// INSERT, UPDATE and DELETE only (sqlite3_changes keeps the previous
// count across other statements), so only those report rows affected.
func recordExec(ctx context.Context, target, query string, start time.Time, res driver.Result, err error) {
	var n int64
	if err == nil && res != nil {
		switch sqlOperation(query) {
		case "INSERT", "UPDATE", "DELETE", "REPLACE":
			n, _ = res.RowsAffected()
		}
	}
	record(ctx, target, query, start, n, err)
}

// record reports one finished statement to the command log of ctx, if any.
func record(ctx context.Context, target, query string, start time.Time, rows int64, err error) {
	rec := commandlog.FromContext(ctx)
	if rec == nil {
		return
	}
	c := commandlog.Command{
		Target: target, Object: commandlog.ObjectFrom(ctx), Operation: sqlOperation(query), Statement: strings.TrimSpace(query),
		StartMs: start.UnixMilli(), EndMs: time.Now().UnixMilli(), RowsAffected: rows,
	}
	if err != nil {
		c.Error = err.Error()
	}
	rec.Record(ctx, c)
}

// sqlOperation is the statement's leading keyword, upper-cased (SELECT,
// VACUUM, ANALYZE, REINDEX, BEGIN ...); CREATE, DROP and ALTER with their
// object kind ("CREATE TABLE"); PRAGMA with the pragma's name as written,
// without schema and argument ("PRAGMA wal_checkpoint", "PRAGMA page_count").
func sqlOperation(query string) string {
	query = strings.TrimSpace(query)
	for strings.HasPrefix(query, "--") { // leading line comments
		_, rest, _ := strings.Cut(query, "\n")
		query = strings.TrimSpace(rest)
	}
	fields := strings.Fields(query)
	if len(fields) == 0 {
		return "UNKNOWN"
	}
	op := strings.ToUpper(strings.Trim(fields[0], "(;"))
	if len(fields) < 2 {
		return op
	}
	switch op {
	case "CREATE", "DROP", "ALTER":
		op += " " + strings.ToUpper(fields[1])
	case "PRAGMA":
		name := fields[1]
		if i := strings.IndexAny(name, "(=;"); i >= 0 {
			name = name[:i]
		}
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:]
		}
		op += " " + strings.ToLower(name)
	}
	return op
}
