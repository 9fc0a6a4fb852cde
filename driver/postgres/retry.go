package postgres

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/themis-maintenance/themis/domain"
)

// replacedAttempt is what a retried attempt did to the attempt it
// replaces, reported in the result's details as "previous_attempts".
type replacedAttempt struct {
	// Terminated lists the backends of earlier attempts that were still
	// there (pid, attempt, state and the statement's first words).
	Terminated []replacedBackend `json:"terminated"`
	// DroppedIndexes are the REINDEX CONCURRENTLY leftovers dropped.
	DroppedIndexes []string `json:"dropped_indexes,omitempty"`
	WaitedMs       int64    `json:"waited_ms"`
}

type replacedBackend struct {
	PID     int64  `json:"pid"`
	Attempt int    `json:"attempt"`
	State   string `json:"state"`
	Query   string `json:"query,omitempty"`
}

// reindexTasks run REINDEX CONCURRENTLY, whose interruption leaves invalid
// _ccnew copies behind.
var reindexTasks = map[domain.TaskType]bool{
	domain.TaskIndexRebuild:    true,
	domain.TaskIndexReorganize: true,
	domain.TaskVectorReindex:   true,
}

// backendGoneTimeout bounds the wait for terminated backends to exit.
const backendGoneTimeout = 30 * time.Second

// replacePreviousAttempts prepares a retried attempt (Attempt > 1): the
// backends whose application_name names an earlier attempt of the same
// job and task (a worker that died, or lost its heartbeat, mid-statement)
// are terminated and waited for, and for the REINDEX tasks the invalid
// _ccnew/_ccold indexes they leave are dropped. The work itself then
// resumes from the heartbeat checkpoint as usual. nil when there was
// nothing to do.
func (r *run) replacePreviousAttempts(ctx context.Context) (*replacedAttempt, error) {
	if r.req.Attempt <= 1 || r.req.JobID == "" {
		return nil, nil
	}
	prefix := sessionPrefix(r.req.JobID, r.req.Task)
	// This worker may have run the earlier attempt itself (its heartbeat
	// timed out, then it picked up the retry): its idle pooled
	// connections still carry that attempt's name until they are handed
	// out again, but run nothing. They are not the earlier attempt's work.
	own := r.idlePoolPIDs(ctx)
	rows, err := r.pool.Query(ctx, `
		SELECT pid::int8, application_name, coalesce(state, ''), left(coalesce(query, ''), 80)
		FROM pg_stat_activity
		WHERE left(application_name, length($1)) = $1 AND pid <> pg_backend_pid() AND NOT (pid = ANY($2::int8[]))`, prefix, own)
	if err != nil {
		return nil, classify(ctx, err, "look for the backends of earlier attempts")
	}
	var old []replacedBackend
	for rows.Next() {
		var b replacedBackend
		var name string
		if err := rows.Scan(&b.PID, &name, &b.State, &b.Query); err != nil {
			rows.Close()
			return nil, classify(ctx, err, "look for the backends of earlier attempts")
		}
		if n, ok := attemptOf(name, prefix); ok && n < r.req.Attempt {
			b.Attempt = n
			old = append(old, b)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, classify(ctx, err, "look for the backends of earlier attempts")
	}
	out := &replacedAttempt{Terminated: old}
	sort.Slice(old, func(i, j int) bool { return old[i].PID < old[j].PID })
	if len(old) > 0 {
		pids := make([]int64, len(old))
		for i, b := range old {
			pids[i] = b.PID
		}
		r.progress(0, fmt.Sprintf("terminating %d backend(s) of the previous attempt", len(old)), nil)
		if _, err := r.pool.Exec(ctx, `SELECT pg_terminate_backend(pid::int) FROM unnest($1::int8[]) AS pid`, pids); err != nil {
			return nil, classify(ctx, err, "terminate the backends of earlier attempts")
		}
		start := time.Now()
		wctx, cancel := context.WithTimeout(ctx, backendGoneTimeout)
		defer cancel()
		for {
			var left int64
			err := r.pool.QueryRow(wctx, `
				SELECT count(*) FROM pg_stat_activity
				WHERE pid = ANY($1::int8[]) AND left(application_name, length($2)) = $2`, pids, prefix).Scan(&left)
			if err == nil && left == 0 {
				break
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if wctx.Err() != nil {
				return nil, fmt.Errorf("%d backend(s) of an earlier attempt still running %s after pg_terminate_backend", left, backendGoneTimeout)
			}
			if err != nil {
				return nil, classify(ctx, err, "wait for the backends of earlier attempts to exit")
			}
			select {
			case <-wctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
		out.WaitedMs = time.Since(start).Milliseconds()
	}
	if reindexTasks[r.req.Task] && !r.srv.InRecovery {
		to, err := r.timeoutOpts()
		if err != nil {
			return nil, err
		}
		dropped, err := r.dropAllLeftovers(ctx, to)
		out.DroppedIndexes = dropped
		if err != nil {
			return nil, fmt.Errorf("drop the REINDEX CONCURRENTLY leftovers of an earlier attempt: %w", err)
		}
	}
	if len(out.Terminated) == 0 && len(out.DroppedIndexes) == 0 {
		return nil, nil
	}
	return out, nil
}

// idlePoolPIDs returns the backend pids of the idle connections of this
// driver's pool for the target.
func (r *run) idlePoolPIDs(ctx context.Context) []int64 {
	conns := r.pool.AcquireAllIdle(ctx)
	pids := make([]int64, 0, len(conns))
	for _, c := range conns {
		pids = append(pids, int64(c.Conn().PgConn().PID()))
		c.Release()
	}
	return pids
}

// dropAllLeftovers drops every invalid _ccnew/_ccold index (a REINDEX
// CONCURRENTLY interrupted) outside the system schemas, except on tables
// with an index build in progress (someone else's REINDEX, whose copy is
// invalid until it finishes). Lock waits are retried until the clean-up
// time runs out.
func (r *run) dropAllLeftovers(ctx context.Context, to sessionSettings) ([]string, error) {
	all, err := r.listIndexes(ctx, false)
	if err != nil {
		return nil, classify(ctx, err, "list indexes")
	}
	building, err := r.tablesBeingIndexed(ctx)
	if err != nil {
		return nil, err
	}
	cctx, cancel := r.cleanupContext(ctx)
	defer cancel()
	var leftovers []rel
	for _, ix := range all {
		if !ix.Valid && leftoverName.MatchString(ix.Name) && !building[ix.Table.OID] {
			leftovers = append(leftovers, ix.rel)
		}
	}
	// REINDEX TABLE CONCURRENTLY rebuilds the table's TOAST index too, so
	// an interrupted one can leave a _ccnew copy in pg_toast.
	toast, err := r.toastLeftovers(ctx, building)
	if err != nil {
		return nil, err
	}
	leftovers = append(leftovers, toast...)
	var dropped []string
	for _, x := range leftovers {
		if err := r.dropIndexConcurrently(cctx, x, to, true); err != nil {
			if ctx.Err() != nil {
				return dropped, ctx.Err()
			}
			return dropped, fmt.Errorf("drop %s: %w", x, err)
		}
		dropped = append(dropped, x.String())
	}
	sort.Strings(dropped)
	return dropped, nil
}

// toastLeftovers returns the invalid REINDEX CONCURRENTLY leftovers on the
// TOAST tables of user tables, except those of tables in building.
func (r *run) toastLeftovers(ctx context.Context, building map[uint32]bool) ([]rel, error) {
	rows, err := r.pool.Query(ctx, `
		SELECT c.oid::int8, n.nspname, c.relname, t.oid::int8
		FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_class t ON t.reltoastrelid = i.indrelid
		JOIN pg_namespace tn ON tn.oid = t.relnamespace
		WHERE NOT i.indisvalid AND n.nspname = 'pg_toast'
		  AND tn.nspname NOT IN ('pg_catalog', 'information_schema') AND tn.nspname NOT LIKE 'pg\_toast%' AND tn.nspname NOT LIKE 'pg\_temp%'`)
	if err != nil {
		return nil, classify(ctx, err, "list the invalid TOAST indexes")
	}
	defer rows.Close()
	var out []rel
	for rows.Next() {
		var x rel
		var oid, owner int64
		if err := rows.Scan(&oid, &x.Schema, &x.Name, &owner); err != nil {
			return nil, classify(ctx, err, "list the invalid TOAST indexes")
		}
		x.OID = uint32(oid)
		if leftoverName.MatchString(x.Name) && !building[uint32(owner)] {
			out = append(out, x)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, classify(ctx, err, "list the invalid TOAST indexes")
	}
	return out, nil
}

// tablesBeingIndexed returns the tables with a CREATE INDEX or REINDEX in
// progress (pg_stat_progress_create_index).
func (r *run) tablesBeingIndexed(ctx context.Context) (map[uint32]bool, error) {
	building := map[uint32]bool{}
	rows, err := r.pool.Query(ctx, `SELECT relid::int8 FROM pg_stat_progress_create_index`)
	if err != nil {
		return nil, classify(ctx, err, "read pg_stat_progress_create_index")
	}
	defer rows.Close()
	for rows.Next() {
		var oid int64
		if err := rows.Scan(&oid); err != nil {
			return nil, classify(ctx, err, "read pg_stat_progress_create_index")
		}
		building[uint32(oid)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, classify(ctx, err, "read pg_stat_progress_create_index")
	}
	return building, nil
}
