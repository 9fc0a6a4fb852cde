package postgres

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/commandlog"
)

// finding is one corruption report.
type finding struct {
	Relation string `json:"relation"`
	Kind     string `json:"kind"` // table or index
	Check    string `json:"check"`
	Problem  string `json:"problem"`
}

// integrityRun walks relations with amcheck functions on parallel
// sessions, checkpointing each relation.
type integrityRun struct {
	r       *run
	amcheck string // amcheck's schema
	to      sessionSettings
	par     int
	tr      *tracker[finding]
	mu      sync.Mutex // guards locked, skipped, checked, planned, left
	locked  []string
	skipped []string
	checked int
	planned int
	left    []leftCheck
	// rotation says in which order relations were checked.
	rotation string
}

func newIntegrityRun(ctx context.Context, r *run) (*integrityRun, error) {
	to, par, err := r.sessionOpts()
	if err != nil {
		return nil, err
	}
	schema, why, err := r.ensureExtension(ctx, "amcheck")
	if err != nil {
		return nil, err
	}
	if s, ok := r.extensionPlanned("amcheck"); ok && schema == "" {
		schema = s // a dry run: the checks are planned as a real run sends them
	}
	if schema == "" {
		// A check that cannot check must not report success.
		return nil, driver.Permanentf(driver.KindMisconfigured, "%s needs amcheck and has no fallback (a check that cannot check never reports success): %s", r.req.Task, why)
	}
	return &integrityRun{r: r, amcheck: schema, to: to, par: par}, nil
}

// relCheck is one amcheck call on one relation.
type relCheck struct {
	key, kind, check, sql string
	oid                   uint32
	size                  int64
	setReturning          bool
}

// run checks every item not done yet on ir.par sessions. When the history
// store keeps the command log, relations go by their last good check
// (consistency_check or full_checkdb), never checked first, so that over
// several windows that each check only part of a large database every
// relation gets its turn; otherwise, and between equals, largest first so
// that no worker is left with a big relation at the end.
func (ir *integrityRun) run(ctx context.Context, checks []relCheck) error {
	todo := make([]relCheck, 0, len(checks))
	for _, c := range checks {
		if !ir.tr.isDone(ir.key(c.kind, c.key)) {
			todo = append(todo, c)
		}
	}
	last, err := ir.r.lastGoodChecks(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		ir.rotation = "largest first (the last good checks could not be read: " + err.Error() + ")"
		last = nil
	} else if last != nil {
		ir.rotation = "oldest last good check first"
	}
	sort.SliceStable(todo, func(i, j int) bool {
		if last != nil {
			a, b := last[todo[i].key], last[todo[j].key]
			if !a.Equal(b) {
				return a.Before(b)
			}
		}
		return todo[i].size > todo[j].size
	})
	u := units[relCheck]{
		key: func(c relCheck) string { return c.key },
		left: func(c relCheck, why string) {
			ir.mu.Lock()
			ir.left = append(ir.left, leftCheck{Relation: c.key, Kind: c.kind, Skipped: why})
			ir.mu.Unlock()
			ir.tr.heartbeat("left " + c.key + ": " + why)
		},
	}
	return forEachSession(ctx, ir.r, ir.par, ir.to, todo, u, func(ctx context.Context, s *session, c relCheck) error {
		// The command log names the relation, which the statement only
		// passes as an argument: the rotation reads it back.
		ctx = commandlog.WithObject(ctx, c.key)
		reason, figures := c.check+" of every "+c.kind, map[string]any{"kind": c.kind, "size_bytes": c.size}
		if last != nil {
			if at, ok := last[c.key]; ok {
				reason += "; last good check " + at.UTC().Format(time.RFC3339)
				figures["last_good_check"] = at.UTC().Format(time.RFC3339)
			} else {
				reason += "; never checked"
			}
		}
		ctx = withPlanNote(ctx, reason, figures)
		return ir.check(ctx, s, c)
	})
}

// leftCheck is a relation the budget left unchecked.
type leftCheck struct {
	Relation string `json:"relation"`
	Kind     string `json:"kind"`
	Skipped  string `json:"skipped"`
}

// check runs one amcheck call on s and records what it found. A corruption
// error becomes a finding; rows returned by a set-returning check
// (verify_heapam) are findings too.
func (ir *integrityRun) check(ctx context.Context, s *session, c relCheck) error {
	var found []finding
	args := []any{int64(c.oid)}
	if ir.r.dry() {
		if err := s.exec(ctx, c.sql, args...); err != nil {
			return err
		}
		ir.mu.Lock()
		ir.planned++
		ir.mu.Unlock()
		ir.tr.finish(ir.key(c.kind, c.key), nil, "planned "+c.check+" "+c.key)
		return nil
	}
	err := ir.tr.during(c.check+" "+c.key, func() error {
		if !c.setReturning {
			return s.exec(ctx, c.sql, args...)
		}
		return s.query(ctx, c.sql, args, func(rows pgx.Rows) error {
			var blk, off, att *int64
			var msg string
			if err := rows.Scan(&blk, &off, &att, &msg); err != nil {
				return err
			}
			where := ""
			if blk != nil {
				where = fmt.Sprintf(" (block %d", *blk)
				if off != nil {
					where += fmt.Sprintf(", offset %d", *off)
				}
				if att != nil {
					where += fmt.Sprintf(", attribute %d", *att)
				}
				where += ")"
			}
			found = append(found, finding{Relation: c.key, Kind: c.kind, Check: c.check, Problem: msg + where})
			return nil
		})
	})
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return ctx.Err()
	case isCode(err, pgerrcode.DataCorrupted, pgerrcode.IndexCorrupted):
		found = append(found, finding{Relation: c.key, Kind: c.kind, Check: c.check, Problem: pgMessage(err)})
	case isGone(err):
		ir.mu.Lock()
		ir.skipped = append(ir.skipped, c.key+" (dropped)")
		ir.mu.Unlock()
		ir.tr.finish(ir.key(c.kind, c.key), nil, "skipped "+c.key)
		return nil
	case isLockTimeout(err):
		ir.mu.Lock()
		ir.locked = append(ir.locked, c.key)
		ir.mu.Unlock()
		ir.tr.heartbeat(c.key + ": lock not available; left for a retry")
		return nil
	default:
		return classify(ctx, err, "%s %s", c.check, c.key)
	}
	ir.mu.Lock()
	ir.checked++
	ir.mu.Unlock()
	var last *finding
	for i := range found {
		last = &found[i]
		if i < len(found)-1 {
			ir.tr.mu.Lock()
			ir.tr.cp.Results = append(ir.tr.cp.Results, found[i])
			ir.tr.mu.Unlock()
		}
	}
	note := c.check + " " + c.key + ": ok"
	if last != nil {
		note = c.check + " " + c.key + ": CORRUPTION"
	}
	ir.tr.finish(ir.key(c.kind, c.key), last, note)
	return nil
}

func (ir *integrityRun) key(kind, name string) string { return kind + ":" + name }

// outcome turns the findings into the task's result or error: corruption is
// a permanent IntegrityViolation naming the relations; relations whose lock
// was not granted make a retryable error (the rest is checkpointed).
func (ir *integrityRun) outcome(what string, total int, details map[string]any) (driver.Result, error) {
	findings := ir.tr.results()
	if len(findings) > 0 {
		byRel := map[string][]string{}
		var rels []string
		for _, f := range findings {
			if _, ok := byRel[f.Relation]; !ok {
				rels = append(rels, f.Relation)
			}
			byRel[f.Relation] = append(byRel[f.Relation], f.Problem)
		}
		sort.Strings(rels)
		parts := make([]string, 0, len(rels))
		for _, rel := range rels {
			probs := byRel[rel]
			p := probs[0]
			if len(probs) > 1 {
				p += fmt.Sprintf(" (+%d more)", len(probs)-1)
			}
			parts = append(parts, rel+": "+p)
		}
		if len(parts) > 10 {
			parts = append(parts[:10], fmt.Sprintf("and %d more relations", len(parts)-10))
		}
		return driver.Result{}, driver.Permanentf(driver.KindIntegrityViolation,
			"%s found corruption in %d relation(s): %s", what, len(rels), strings.Join(parts, "; "))
	}
	if len(ir.locked) > 0 {
		sort.Strings(ir.locked)
		return driver.Result{}, fmt.Errorf("%s: %d relation(s) not checked, lock not available within lock_timeout (%d ms): %s; a retry checks only these",
			what, len(ir.locked), ir.to.LockMs, joinNames(ir.locked, 10))
	}
	sort.Strings(ir.skipped)
	details["relations_checked"] = ir.checked + ir.tr.resumed
	details["resumed"] = ir.tr.resumed
	details["statement_timeout_ms"] = ir.to.StatementMs
	details["lock_timeout_ms"] = ir.to.LockMs
	details["parallelism"] = ir.par
	details["amcheck_schema"] = ir.amcheck
	if len(ir.skipped) > 0 {
		details["skipped"] = ir.skipped
	}
	if ir.rotation != "" {
		details["order"] = ir.rotation
	}
	summary := fmt.Sprintf("%s: no corruption in %d relations", what, total)
	if len(ir.left) > 0 {
		details["left"] = ir.left
		summary = fmt.Sprintf("%s: no corruption in the %d relations checked of %d", what, ir.checked+ir.tr.resumed, total)
	}
	if ir.r.dry() {
		summary = drySummary("check", ir.planned, total, "relations")
	}
	return driver.Result{Summary: summary, Details: details}, nil
}

// checkableIndexes returns the valid btree indexes amcheck can read (on a
// standby unlogged relations have no storage).
func (r *run) checkableIndexes(ctx context.Context) ([]index, error) {
	all, err := r.listIndexes(ctx, true)
	if err != nil {
		return nil, err
	}
	var out []index
	for _, ix := range all {
		if ix.AccessMethod != "btree" || !ix.Valid || !ix.Ready || (r.srv.InRecovery && ix.Unlogged) {
			continue
		}
		out = append(out, ix)
	}
	return out, nil
}

// consistencyCheck: amcheck bt_index_check on every valid btree index,
// catalog indexes included, on parallelism sessions (default 2), largest
// index first, one heartbeat and checkpoint per index. Locks:
// ACCESS SHARE on the index and its table (reads and writes go on).
func consistencyCheck(ctx context.Context, r *run) (driver.Result, error) {
	ir, err := newIntegrityRun(ctx, r)
	if err != nil {
		return driver.Result{}, err
	}
	indexes, err := r.checkableIndexes(ctx)
	if err != nil {
		return driver.Result{}, err
	}
	keys := make([]string, len(indexes))
	for i, ix := range indexes {
		keys[i] = ir.key("index", ix.String())
	}
	ir.tr = newTracker[finding](r, keys)
	sql := "SELECT " + fn(ir.amcheck, "bt_index_check") + "(index => $1::oid::regclass)"
	checks := make([]relCheck, len(indexes))
	for i, ix := range indexes {
		checks[i] = relCheck{key: ix.String(), kind: "index", check: "bt_index_check", sql: sql, oid: ix.OID, size: ix.SizeBytes}
	}
	if err := ir.run(ctx, checks); err != nil {
		return driver.Result{}, err
	}
	return ir.outcome("bt_index_check", len(indexes), map[string]any{"indexes": len(indexes), "check": "bt_index_check"})
}

// fullCheckDB: verify_heapam on every table, catalogs and TOAST included
// (PostgreSQL 14+), then every btree index with heapallindexed (every heap
// tuple must have its index entry): bt_index_parent_check on a primary,
// which also verifies parent/child page relationships, and bt_index_check on
// a standby (parent_check cannot run during recovery). Locks: ACCESS SHARE
// for verify_heapam and bt_index_check; bt_index_parent_check takes SHARE on
// the table, which blocks writes to that table while its index is checked;
// lock_timeout keeps the check from queueing behind (and in front of) writers.
// Tables and indexes are checked on parallelism sessions (default 2),
// largest first.
func fullCheckDB(ctx context.Context, r *run) (driver.Result, error) {
	ir, err := newIntegrityRun(ctx, r)
	if err != nil {
		return driver.Result{}, err
	}
	var tables []table
	heapNote := ""
	if r.atLeast(14) {
		var hasHeap bool
		if err := r.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = 'verify_heapam')`, ir.amcheck).Scan(&hasHeap); err != nil {
			return driver.Result{}, classify(ctx, err, "look up verify_heapam")
		}
		if _, planned := r.extensionPlanned("amcheck"); planned {
			hasHeap = true // created by a real run, at the server's version
		}
		if hasHeap {
			if tables, err = r.listTablesIn(ctx, true); err != nil {
				return driver.Result{}, err
			}
		} else {
			heapNote = "heap not checked: the installed amcheck predates verify_heapam (ALTER EXTENSION amcheck UPDATE)"
		}
	} else {
		heapNote = "heap not checked: verify_heapam needs PostgreSQL 14 or later"
	}
	var checkable []table
	for _, t := range tables {
		if !(r.srv.InRecovery && t.Unlogged) {
			checkable = append(checkable, t)
		}
	}
	indexes, err := r.checkableIndexes(ctx)
	if err != nil {
		return driver.Result{}, err
	}
	keys := make([]string, 0, len(checkable)+len(indexes))
	for _, t := range checkable {
		keys = append(keys, ir.key("table", t.String()))
	}
	for _, ix := range indexes {
		keys = append(keys, ir.key("index", ix.String()))
	}
	ir.tr = newTracker[finding](r, keys)
	heapSQL := "SELECT blkno, offnum::int8, attnum::int8, msg FROM " + fn(ir.amcheck, "verify_heapam") +
		"(relation => $1::oid::regclass, check_toast => true, on_error_stop => false) LIMIT 100"
	idxCheck := "bt_index_parent_check"
	if r.srv.InRecovery {
		idxCheck = "bt_index_check"
	}
	idxSQL := "SELECT " + fn(ir.amcheck, idxCheck) + "(index => $1::oid::regclass, heapallindexed => true)"
	// Tables and indexes go in one queue, largest first: a table's heap
	// and its indexes may be checked at the same time (ACCESS SHARE and
	// SHARE do not conflict).
	checks := make([]relCheck, 0, len(keys))
	for _, t := range checkable {
		checks = append(checks, relCheck{key: t.String(), kind: "table", check: "verify_heapam", sql: heapSQL, oid: t.OID, size: t.SizeBytes, setReturning: true})
	}
	for _, ix := range indexes {
		checks = append(checks, relCheck{key: ix.String(), kind: "index", check: idxCheck + "(heapallindexed)", sql: idxSQL, oid: ix.OID, size: ix.SizeBytes})
	}
	if err := ir.run(ctx, checks); err != nil {
		return driver.Result{}, err
	}
	details := map[string]any{"tables": len(checkable), "indexes": len(indexes), "index_check": idxCheck + "(heapallindexed => true)"}
	if heapNote != "" {
		details["heap_check"] = heapNote
	} else {
		details["heap_check"] = "verify_heapam(check_toast => true)"
	}
	res, err := ir.outcome("full_checkdb", len(checkable)+len(indexes), details)
	if err == nil && heapNote != "" {
		res.Summary += "; " + heapNote
	}
	return res, err
}
