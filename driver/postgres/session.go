package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// session is one pool connection with the task's lock_timeout and
// statement_timeout set on it. Lock-taking statements run only on sessions.
// release resets the settings before the connection goes back to the pool.
type session struct {
	r    *run
	conn *pgxpool.Conn
	pid  uint32
	// cost: vacuum_cost_delay and vacuum_cost_limit were set; parallel:
	// max_parallel_maintenance_workers was (both are reset on release).
	cost, parallel bool
}

// session acquires a connection and applies the task's settings to it
// (timeouts, and the pacing of VACUUM and maintenance workers). The values come from
// validated integers (timeoutOpts), so formatting them is safe; SET takes no
// bind parameters.
func (r *run) session(ctx context.Context, t sessionSettings) (*session, error) {
	c, err := r.pool.Acquire(ctx)
	if err != nil {
		return nil, classify(ctx, err, "acquire a connection")
	}
	sets := []string{fmt.Sprintf("SET lock_timeout = %d", t.LockMs), fmt.Sprintf("SET statement_timeout = %d", t.StatementMs)}
	if t.CostDelayMs > 0 {
		sets = append(sets, fmt.Sprintf("SET vacuum_cost_delay = %g", t.CostDelayMs), fmt.Sprintf("SET vacuum_cost_limit = %d", t.CostLimit))
	}
	if t.SetParallel {
		sets = append(sets, fmt.Sprintf("SET max_parallel_maintenance_workers = %d", t.ParallelWorkers))
	}
	var set string
	for _, set = range sets {
		if _, err = c.Exec(ctx, set); err != nil {
			break
		}
	}
	if err == nil {
		return &session{r: r, conn: c, pid: c.Conn().PgConn().PID(), cost: t.CostDelayMs > 0, parallel: t.SetParallel}, nil
	}
	c.Release()
	return nil, classify(ctx, err, "%s", set)
}

// exec runs one statement (utility statements: no arguments, so pgx uses the
// simple protocol and no transaction wraps it). The error is returned raw for
// the caller to classify, except that a cancelled ctx yields ctx.Err().
// Statements run with exec are the task's work: in a dry run it records sql
// in the plan (plan.go) and sends nothing.
func (s *session) exec(ctx context.Context, sql string, args ...any) error {
	if s.r.dry() {
		s.r.planStatement(ctx, sql)
		return ctx.Err()
	}
	_, err := s.conn.Exec(ctx, sql, args...)
	return s.after(ctx, err)
}

// queryRow scans one row.
func (s *session) queryRow(ctx context.Context, sql string, args []any, dest ...any) error {
	err := s.conn.QueryRow(ctx, sql, args...).Scan(dest...)
	return s.after(ctx, err)
}

// query runs sql, a set-returning check that is the task's work, and calls
// each for every row; in a dry run it records sql in the plan instead.
func (s *session) query(ctx context.Context, sql string, args []any, each func(pgx.Rows) error) error {
	if s.r.dry() {
		s.r.planStatement(ctx, sql)
		return ctx.Err()
	}
	rows, err := s.conn.Query(ctx, sql, args...)
	if err != nil {
		return s.after(ctx, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			rows.Close()
			return s.after(ctx, err)
		}
	}
	rows.Close()
	return s.after(ctx, rows.Err())
}

// after handles cancellation. pgx sends the server a cancel request as soon
// as ctx is done (newCancelHandler), so the statement stops server-side and
// the connection stays usable. If the server did not answer in time pgx
// closes the socket instead, and the backend might still be running the
// statement: then the backend is cancelled by pid from another connection.
func (s *session) after(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() == nil {
		return err
	}
	if s.conn.Conn().IsClosed() {
		s.r.cancelBackend(s.pid)
	}
	return ctx.Err()
}

// cancelBackend cancels whatever backend pid is running, from a separate
// connection. Only called for pids whose connection we have closed, so the
// pid belongs to no session of ours any more.
func (r *run) cancelBackend(pid uint32) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = r.pool.Exec(ctx, `SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND state <> 'idle'`, int64(pid))
}

// release resets the session's settings and returns the connection to the
// pool; a connection that cannot be reset is closed instead.
func (s *session) release() {
	if s.conn.Conn().IsClosed() {
		s.conn.Release()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resets := []string{"RESET lock_timeout", "RESET statement_timeout"}
	if s.cost {
		resets = append(resets, "RESET vacuum_cost_delay", "RESET vacuum_cost_limit")
	}
	if s.parallel {
		resets = append(resets, "RESET max_parallel_maintenance_workers")
	}
	var err error
	for _, q := range resets {
		if _, err = s.conn.Exec(ctx, q); err != nil {
			break
		}
	}
	if err == nil && s.conn.Conn().PgConn().TxStatus() == 'I' {
		s.conn.Release()
		return
	}
	_ = s.conn.Hijack().Close(ctx)
}
