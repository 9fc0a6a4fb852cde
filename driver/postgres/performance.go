package postgres

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// statement is one row of pg_stat_statements.
type statement struct {
	QueryID       int64   `json:"queryid"`
	Query         string  `json:"query"`
	Calls         int64   `json:"calls"`
	TotalMs       float64 `json:"total_exec_time_ms"`
	MeanMs        float64 `json:"mean_exec_time_ms"`
	Rows          int64   `json:"rows"`
	SharedHit     int64   `json:"shared_blks_hit"`
	SharedRead    int64   `json:"shared_blks_read"`
	TempWritten   int64   `json:"temp_blks_written"`
	CacheHitRatio float64 `json:"cache_hit_ratio"`
}

// backend is one session of pg_stat_activity.
type backend struct {
	PID             int32   `json:"pid"`
	User            string  `json:"user"`
	Application     string  `json:"application_name"`
	State           string  `json:"state"`
	WaitEventType   string  `json:"wait_event_type,omitempty"`
	WaitEvent       string  `json:"wait_event,omitempty"`
	XactAgeSeconds  float64 `json:"xact_age_seconds"`
	QueryAgeSeconds float64 `json:"query_age_seconds"`
	BlockedBy       []int32 `json:"blocked_by,omitempty"`
	Query           string  `json:"query"`
}

// blockingChain is a root blocker and every session waiting on it,
// directly or through others.
type blockingChain struct {
	Root    backend `json:"root"`
	Waiters []int32 `json:"waiters"`
	Depth   int     `json:"depth"`
}

// performanceAnalysis reports the top statements by total execution time
// from pg_stat_statements (when it can be had), lock waits with their
// blocking chains (pg_blocking_pids), and transactions open longer than
// long_txn_seconds. Statement texts are truncated and their literals
// replaced by '?' so that no value (a password in ALTER ROLE, say) reaches
// results. Read-only; no locks.
func performanceAnalysis(ctx context.Context, r *run) (driver.Result, error) {
	topN, err := intOpt(r.opts(), "top_n")
	if err != nil {
		return driver.Result{}, err
	}
	longTxn, err := intOpt(r.opts(), "long_txn_seconds")
	if err != nil {
		return driver.Result{}, err
	}
	details := map[string]any{"top_n": topN, "long_txn_seconds": longTxn}
	var alerts []domain.Alert
	var notes []string

	stmts, why, err := topStatements(ctx, r, topN)
	if err != nil {
		return driver.Result{}, err
	}
	if why != "" {
		details["pg_stat_statements"] = why
		notes = append(notes, why)
	} else {
		details["pg_stat_statements"] = "used"
	}
	details["top_statements"] = stmts
	r.progress(40, fmt.Sprintf("%d top statements", len(stmts)), nil)

	sessions, err := activity(ctx, r)
	if err != nil {
		return driver.Result{}, err
	}
	byPID := map[int32]backend{}
	for _, b := range sessions {
		byPID[b.PID] = b
	}
	var waiting []backend
	var long []backend
	for _, b := range sessions {
		if len(b.BlockedBy) > 0 {
			waiting = append(waiting, b)
		}
		if b.XactAgeSeconds >= float64(longTxn) {
			long = append(long, b)
		}
	}
	chains := blockingChains(byPID)
	details["lock_waits"] = waiting
	details["blocking_chains"] = chains
	details["long_transactions"] = long
	for _, c := range chains {
		alerts = append(alerts, domain.Alert{Level: domain.AlertWarning, Subject: fmt.Sprintf("pid %d", c.Root.PID),
			Message: fmt.Sprintf("session %d (%s, %s, %s) blocks %d session(s), chain depth %d",
				c.Root.PID, c.Root.User, c.Root.Application, c.Root.State, len(c.Waiters), c.Depth)})
	}
	for _, b := range long {
		level := domain.AlertWarning
		if b.State == "idle in transaction" || b.State == "idle in transaction (aborted)" {
			level = domain.AlertHigh // holds locks and the xmin horizon while doing nothing
		}
		alerts = append(alerts, domain.Alert{Level: level, Subject: fmt.Sprintf("pid %d", b.PID),
			Message: fmt.Sprintf("transaction of session %d (%s, %s) open for %.0f s, state %s", b.PID, b.User, b.Application, b.XactAgeSeconds, b.State)})
	}
	summary := fmt.Sprintf("%d top statements, %d session(s) waiting on locks in %d blocking chain(s), %d transaction(s) open > %d s",
		len(stmts), len(waiting), len(chains), len(long), longTxn)
	if len(notes) > 0 {
		summary += "; " + strings.Join(notes, "; ")
	}
	return driver.Result{Summary: summary, Details: details, Alerts: alerts}, nil
}

// topStatements reads pg_stat_statements of this database; why says why it
// could not (library not preloaded, extension not creatable).
func topStatements(ctx context.Context, r *run, n int64) ([]statement, string, error) {
	var preload string
	if err := r.pool.QueryRow(ctx, `SELECT current_setting('shared_preload_libraries')`).Scan(&preload); err != nil {
		return nil, "", classify(ctx, err, "read shared_preload_libraries")
	}
	if !strings.Contains(preload, "pg_stat_statements") {
		return nil, "pg_stat_statements is not in shared_preload_libraries; top statements unavailable", nil
	}
	schema, why, err := r.ensureExtension(ctx, "pg_stat_statements")
	if err != nil || schema == "" {
		if why != "" {
			why += "; top statements left out (the rest of the analysis uses pg_stat_* views only)"
		}
		return nil, why, err
	}
	rows, err := r.pool.Query(ctx, `
		SELECT coalesce(s.queryid, 0), s.query, s.calls, s.total_exec_time, s.mean_exec_time, s.rows,
		       s.shared_blks_hit, s.shared_blks_read, s.temp_blks_written
		FROM `+fn(schema, "pg_stat_statements")+` s
		WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY s.total_exec_time DESC
		LIMIT $1`, n)
	if err != nil {
		return nil, "", classify(ctx, err, "read pg_stat_statements")
	}
	defer rows.Close()
	var out []statement
	for rows.Next() {
		var s statement
		if err := rows.Scan(&s.QueryID, &s.Query, &s.Calls, &s.TotalMs, &s.MeanMs, &s.Rows, &s.SharedHit, &s.SharedRead, &s.TempWritten); err != nil {
			return nil, "", classify(ctx, err, "read pg_stat_statements")
		}
		s.Query = redactSQL(s.Query, 500)
		s.TotalMs, s.MeanMs = round3(s.TotalMs), round3(s.MeanMs)
		if s.SharedHit+s.SharedRead > 0 {
			s.CacheHitRatio = round3(float64(s.SharedHit) / float64(s.SharedHit+s.SharedRead))
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, "", classify(ctx, err, "read pg_stat_statements")
	}
	return out, "", nil
}

// activity lists client sessions other than this one, with what blocks them.
func activity(ctx context.Context, r *run) ([]backend, error) {
	rows, err := r.pool.Query(ctx, `
		SELECT pid, coalesce(usename::text, ''), coalesce(application_name, ''), coalesce(state, ''),
		       coalesce(wait_event_type, ''), coalesce(wait_event, ''),
		       coalesce(extract(epoch FROM clock_timestamp() - xact_start), 0)::float8,
		       coalesce(extract(epoch FROM clock_timestamp() - query_start), 0)::float8,
		       pg_blocking_pids(pid), coalesce(query, '')
		FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
		ORDER BY pid`)
	if err != nil {
		return nil, classify(ctx, err, "read pg_stat_activity")
	}
	defer rows.Close()
	var out []backend
	for rows.Next() {
		var b backend
		if err := rows.Scan(&b.PID, &b.User, &b.Application, &b.State, &b.WaitEventType, &b.WaitEvent,
			&b.XactAgeSeconds, &b.QueryAgeSeconds, &b.BlockedBy, &b.Query); err != nil {
			return nil, classify(ctx, err, "read pg_stat_activity")
		}
		b.Query = redactSQL(b.Query, 200)
		b.XactAgeSeconds, b.QueryAgeSeconds = round3(b.XactAgeSeconds), round3(b.QueryAgeSeconds)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(ctx, err, "read pg_stat_activity")
	}
	return out, nil
}

// blockingChains groups waiting sessions under the sessions at the root of
// their wait graph (blockers that wait on nobody).
func blockingChains(byPID map[int32]backend) []blockingChain {
	roots := map[int32]*blockingChain{}
	for pid, b := range byPID {
		if len(b.BlockedBy) == 0 {
			continue
		}
		// Walk every path up to the roots (breadth-first, cycle-safe).
		seen := map[int32]bool{pid: true}
		frontier := []int32{pid}
		for depth := 1; len(frontier) > 0; depth++ {
			var next []int32
			for _, p := range frontier {
				for _, up := range byPID[p].BlockedBy {
					if seen[up] {
						continue
					}
					seen[up] = true
					ub, known := byPID[up]
					if !known || len(ub.BlockedBy) == 0 {
						c := roots[up]
						if c == nil {
							root := ub
							if !known {
								root = backend{PID: up, State: "not a client session"}
							}
							c = &blockingChain{Root: root}
							roots[up] = c
						}
						c.Waiters = append(c.Waiters, pid)
						c.Depth = max(c.Depth, depth)
						continue
					}
					next = append(next, up)
				}
			}
			frontier = next
		}
	}
	out := make([]blockingChain, 0, len(roots))
	for _, c := range roots {
		sort.Slice(c.Waiters, func(i, j int) bool { return c.Waiters[i] < c.Waiters[j] })
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool {
		return len(out[i].Waiters) > len(out[j].Waiters) || len(out[i].Waiters) == len(out[j].Waiters) && out[i].Root.PID < out[j].Root.PID
	})
	return out
}

var (
	dollarQuoted = regexp.MustCompile(`(?s)\$([A-Za-z_][A-Za-z0-9_]*)?\$.*?\$([A-Za-z_][A-Za-z0-9_]*)?\$`)
	quoted       = regexp.MustCompile(`(?s)[EeBbXxUu]?&?'(?:[^'\\]|''|\\.)*'`)
	spaces       = regexp.MustCompile(`\s+`)
)

// redactSQL replaces string literals (quoted and dollar-quoted) with '?',
// folds whitespace and truncates to n runes.
func redactSQL(q string, n int) string {
	q = dollarQuoted.ReplaceAllString(q, "'?'")
	q = quoted.ReplaceAllString(q, "'?'")
	q = strings.TrimSpace(spaces.ReplaceAllString(q, " "))
	if rs := []rune(q); len(rs) > n {
		q = string(rs[:n]) + "…"
	}
	return q
}
