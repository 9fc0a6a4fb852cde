package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/themis-maintenance/themis/driver/assess"
)

// quoteIdent quotes a SQLite identifier: wrapped in double quotes, inner
// double quotes doubled. Every identifier put into SQL text goes through it;
// values are always bound as parameters.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// relation is a b-tree of the main database: a table or an index.
type relation struct {
	Name  string `json:"name"`
	Table string `json:"table"`
	Type  string `json:"type"` // "table" or "index"
}

// internal reports whether the relation belongs to SQLite itself
// (sqlite_sequence, sqlite_stat1, sqlite_autoindex_* and the like).
func (rel relation) internal() bool { return strings.HasPrefix(rel.Name, "sqlite_") }

// listRelations returns the tables and indexes that own b-trees (virtual
// tables and views have none), tables first, each group by name.
func listRelations(ctx context.Context, db *sql.DB) ([]relation, error) {
	rows, err := db.QueryContext(ctx, `SELECT name, tbl_name, type FROM sqlite_schema
		WHERE type IN ('table', 'index') AND rootpage > 0
		ORDER BY type = 'index', name`)
	if err != nil {
		return nil, fmt.Errorf("list relations: %w", err)
	}
	defer rows.Close()
	var out []relation
	for rows.Next() {
		var rel relation
		if err := rows.Scan(&rel.Name, &rel.Table, &rel.Type); err != nil {
			return nil, fmt.Errorf("list relations: %w", err)
		}
		out = append(out, rel)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list relations: %w", err)
	}
	return out, nil
}

// userTables returns the names of the application's tables (not SQLite's own).
func userTables(rels []relation) []string {
	var out []string
	for _, rel := range rels {
		if rel.Type == "table" && !rel.internal() {
			out = append(out, rel.Name)
		}
	}
	return out
}

// allTables returns every table with a b-tree, SQLite's own included.
func allTables(rels []relation) []string {
	var out []string
	for _, rel := range rels {
		if rel.Type == "table" {
			out = append(out, rel.Name)
		}
	}
	return out
}

// indexNames returns every index, automatic (UNIQUE/PRIMARY KEY) ones included.
func indexNames(rels []relation) []string {
	var out []string
	for _, rel := range rels {
		if rel.Type == "index" {
			out = append(out, rel.Name)
		}
	}
	return out
}

// loopCheckpoint is the checkpoint of a per-relation loop: the relations
// done, in order, and what each produced. A retried attempt skips Done.
type loopCheckpoint[T any] struct {
	Done    []string     `json:"done"`
	Results map[string]T `json:"results,omitempty"`
}

func (cp *loopCheckpoint[T]) isDone(name string) bool {
	for _, n := range cp.Done {
		if n == name {
			return true
		}
	}
	return false
}

func (cp *loopCheckpoint[T]) add(name string, v T) {
	if cp.Results == nil {
		cp.Results = map[string]T{}
	}
	cp.Done = append(cp.Done, name)
	cp.Results[name] = v
}

// snapshot returns a copy that later add calls do not change, safe to hand
// to a heartbeat that is encoded asynchronously.
func (cp *loopCheckpoint[T]) snapshot() loopCheckpoint[T] {
	out := loopCheckpoint[T]{Done: append([]string(nil), cp.Done...), Results: make(map[string]T, len(cp.Results))}
	for k, v := range cp.Results {
		out.Results[k] = v
	}
	return out
}

// loop runs step for every name not yet in cp, in order. Before each step it
// sleeps the step delay and checks ctx; while a step runs the heartbeat is
// repeated on a timer; after each it records the result in cp and
// heartbeats once with pct in [from, to] and the checkpoint wrap returns
// (cp itself when wrap is nil). verb names the step in the progress note.
func loop[T any](ctx context.Context, r *run, names []string, cp *loopCheckpoint[T], from, to float64,
	verb string, wrap func(loopCheckpoint[T]) any, step func(ctx context.Context, name string) (T, error)) error {
	return unitLoop(ctx, r, names, cp, from, to, verb, wrap, nil, step)
}

// unitLoop is loop whose steps are units of work bounded by budget (nil:
// unbounded): a step the budget does not admit is left (see unitBudget),
// and a step interrupted at the budget's hard stop is left with the rest
// instead of failing the task.
func unitLoop[T any](ctx context.Context, r *run, names []string, cp *loopCheckpoint[T], from, to float64,
	verb string, wrap func(loopCheckpoint[T]) any, budget *unitBudget, step func(ctx context.Context, name string) (T, error)) error {
	if wrap == nil {
		wrap = func(c loopCheckpoint[T]) any { return c }
	}
	for i, name := range names {
		if budget != nil && budget.stopped {
			break
		}
		if cp.isDone(name) {
			continue
		}
		if err := r.pause(ctx); err != nil {
			return err
		}
		if budget != nil && !budget.admit(name, notDone(cp, names[i:])) {
			continue
		}
		pct := from + (to-from)*float64(i)/float64(len(names))
		unitCtx, cancel := ctx, context.CancelFunc(func() {})
		if budget != nil {
			unitCtx, cancel = budget.unitContext(ctx)
		}
		var v T
		err := r.during(pct, fmt.Sprintf("%s %s", verb, name), wrap(cp.snapshot()), func() error {
			var err error
			v, err = step(unitCtx, name)
			return err
		})
		cancel()
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			if budget != nil && budget.hardStopped(ctx, unitCtx, name, notDone(cp, names[i:])) {
				continue
			}
			return err
		}
		cp.add(name, v)
		pct = from + (to-from)*float64(i+1)/float64(len(names))
		r.progress(pct, fmt.Sprintf("%s %s (%d/%d)", verb, name, i+1, len(names)), wrap(cp.snapshot()))
	}
	return ctx.Err()
}

// notDone returns the names cp does not list as done.
func notDone[T any](cp *loopCheckpoint[T], names []string) []string {
	var out []string
	for _, n := range names {
		if !cp.isDone(n) {
			out = append(out, n)
		}
	}
	return out
}

// countRows returns the number of rows of table.
func countRows(ctx context.Context, db *sql.DB, table string) (int64, error) {
	var n int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+quoteIdent(table)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count rows of %s: %w", table, err)
	}
	return n, nil
}

// pragmaInt reads an integer-valued PRAGMA (page_count, freelist_count...).
func pragmaInt(ctx context.Context, db *sql.DB, name string) (int64, error) {
	var n int64
	if err := db.QueryRowContext(ctx, `PRAGMA `+name).Scan(&n); err != nil {
		return 0, fmt.Errorf("pragma %s: %w", name, err)
	}
	return n, nil
}

// msSince is the time since start in milliseconds, as a float.
func msSince(start time.Time) float64 {
	return float64(time.Since(start).Microseconds()) / 1000
}

// Report formatting is shared with the other drivers (package assess);
// these are its short local names.

func humanBytes(n int64) string { return assess.BytesHuman(n) }

func round1(f float64) float64 { return assess.Round1(f) }
