package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// maxReported bounds the problem messages kept in errors and details.
const maxReported = 100

// tableCheck is what checking one table found.
type tableCheck struct {
	Problems    []string `json:"problems,omitempty"`
	ForeignKeys []string `json:"foreign_keys,omitempty"`
}

// consistencyCheck runs PRAGMA quick_check and foreign_key_check table by
// table (resumable, one heartbeat per table, each table a unit of the
// budget), then quick_check of sqlite_schema, which also verifies the
// freelist. quick_check skips the slow index-content comparison that
// full_checkdb does. Tables the previous run left come first, then those
// whose last good check is oldest (driver.UnitHistory), so a database too
// big for one window is covered over several.
func consistencyCheck(ctx context.Context, r *run) (driver.Result, error) {
	rels, err := listRelations(ctx, r.db)
	if err != nil {
		return driver.Result{}, err
	}
	tables, rotated := oldestCheckedFirst(ctx, r, allTables(rels))
	tables = r.budget.order(tables)
	var cp loopCheckpoint[tableCheck]
	resumed := driver.DecodeCheckpoint(r.req.Checkpoint, &cp)
	err = unitLoop(ctx, r, tables, &cp, 0, 90, "quick_check", nil, r.budget, func(ctx context.Context, table string) (tableCheck, error) {
		var tc tableCheck
		err := r.timed(ctx, "quick_check "+table, func(ctx context.Context) error {
			var err error
			if tc.Problems, err = integrityPragma(ctx, r, "quick_check", table); err != nil {
				return err
			}
			tc.ForeignKeys, _, err = foreignKeyCheck(ctx, r, table)
			return err
		})
		return tc, err
	})
	if err != nil {
		return driver.Result{}, err
	}
	var schemaProblems []string
	schemaChecked := len(r.budget.left) == 0
	if schemaChecked {
		r.progress(90, "quick_check of the schema and freelist", cp.snapshot())
		schemaProblems, err = integrityPragma(ctx, r, "quick_check", "sqlite_schema")
		if err != nil {
			return driver.Result{}, err
		}
	}

	var problems, fks []string
	var involved []string
	for _, t := range tables {
		tc := cp.Results[t]
		problems = append(problems, tc.Problems...)
		fks = append(fks, tc.ForeignKeys...)
		if len(tc.Problems) > 0 || len(tc.ForeignKeys) > 0 {
			involved = append(involved, t)
		}
	}
	problems = append(problems, schemaProblems...)
	roots, _ := rootPages(ctx, r.db)
	involved = mergeNames(involved, relationsIn(problems, roots), fkRelations(fks))
	details := map[string]any{
		"tables_checked": len(cp.Done),
		"check":          "quick_check + foreign_key_check",
		"resumed":        resumed,
		"schema_checked": schemaChecked,
		"order":          tables,
		"rotated":        rotated,
	}
	if ign := r.ignoredOptions(map[string]string{"parallelism": oneReader}); ign != nil {
		details["ignored_options"] = ign
	}
	if err := integrityFailure("consistency_check", problems, fks, involved); err != nil {
		return driver.Result{}, err
	}
	res := driver.Result{
		Summary: fmt.Sprintf("quick_check and foreign_key_check passed on %d tables and their indexes; schema and freelist ok", len(cp.Done)),
		Details: details,
	}
	switch {
	case r.req.DryRun:
		res.Summary = dryRunSummary("run quick_check and foreign_key_check on %d tables and their indexes", len(cp.Done))
		if schemaChecked {
			res.Summary += ", then quick_check of the schema and freelist"
		}
	case !schemaChecked:
		res.Summary = fmt.Sprintf("quick_check and foreign_key_check passed on %d tables and their indexes; schema and freelist not checked", len(cp.Done))
	}
	r.budget.report(&res, "tables")
	return res, nil
}

// oldestCheckedFirst orders tables by their last good consistency check,
// never-checked first (then by name), when the history keeps the command
// log (driver.UnitHistory); rotated says whether it did.
func oldestCheckedFirst(ctx context.Context, r *run, tables []string) ([]string, bool) {
	uh, ok := r.req.History.(driver.UnitHistory)
	if !ok {
		return tables, false
	}
	last, err := uh.LastGoodChecks(ctx, r.target().Name, []domain.TaskType{domain.TaskConsistencyCheck})
	if err != nil || len(last) == 0 {
		return tables, false
	}
	out := append([]string(nil), tables...)
	sort.SliceStable(out, func(i, j int) bool { return last[out[i]].Before(last[out[j]]) })
	return out, true
}

// fullCheckDB runs PRAGMA integrity_check over the whole file (b-tree
// structure, index contents against their tables, UNIQUE/NOT NULL/CHECK
// constraints, page accounting) and PRAGMA foreign_key_check. It is one
// statement, so progress is re-sent on a timer while it runs; the whole
// database is its one unit of the budget.
func fullCheckDB(ctx context.Context, r *run) (driver.Result, error) {
	roots, _ := rootPages(ctx, r.db) // best effort: the schema itself may be damaged
	r.progress(1, "integrity_check of the whole database", nil)
	var problems, fks []string
	var fkTotal int
	stopped, err := r.whole(ctx, func(ctx context.Context) error {
		err := r.during(1, "integrity_check of the whole database", nil, func() error {
			return r.timed(ctx, "integrity_check", func(ctx context.Context) error {
				var err error
				problems, err = integrityPragma(ctx, r, "integrity_check", "")
				return err
			})
		})
		if err != nil {
			return err
		}
		if err := r.pause(ctx); err != nil {
			return err
		}
		r.progress(80, "foreign_key_check", nil)
		return r.during(80, "foreign_key_check", nil, func() error {
			var err error
			fks, fkTotal, err = foreignKeyCheck(ctx, r, "")
			return err
		})
	})
	if err != nil {
		return driver.Result{}, err
	}
	if stopped {
		return r.budget.notStarted("integrity_check"), nil
	}
	involved := mergeNames(relationsIn(problems, roots), fkRelations(fks))
	if err := integrityFailure("full_checkdb", problems, fks, involved); err != nil {
		return driver.Result{}, err
	}
	details := map[string]any{
		"relations_checked":      len(roots),
		"check":                  "integrity_check + foreign_key_check",
		"foreign_key_violations": fkTotal,
	}
	if ign := r.ignoredOptions(map[string]string{"parallelism": "integrity_check is one statement over the whole file"}); ign != nil {
		details["ignored_options"] = ign
	}
	summary := fmt.Sprintf("integrity_check ok (%d b-trees: tables, indexes and the schema, plus page accounting) and no foreign key violations", len(roots))
	if r.req.DryRun {
		summary = dryRunSummary("run PRAGMA integrity_check over the whole database (%d b-trees) and PRAGMA foreign_key_check", len(roots))
	}
	return driver.Result{Summary: summary, Details: details}, nil
}

// integrityFailure returns the permanent IntegrityViolation error for what a
// check found, or nil when it found nothing.
func integrityFailure(task string, problems, fks, involved []string) error {
	if len(problems) == 0 && len(fks) == 0 {
		return nil
	}
	all := append(append([]string(nil), problems...), fks...)
	shown := all
	if len(shown) > 5 {
		shown = shown[:5]
	}
	where := "the database"
	if len(involved) > 0 {
		where = strings.Join(involved, ", ")
	}
	more := ""
	if len(all) > len(shown) {
		more = fmt.Sprintf(" (and %d more)", len(all)-len(shown))
	}
	return driver.Permanentf(driver.KindIntegrityViolation, "%s found %d integrity problem(s) and %d foreign key violation(s) in %s: %s%s",
		task, len(problems), len(fks), where, strings.Join(shown, "; "), more)
}

// integrityPragma runs PRAGMA integrity_check or quick_check of r's task,
// over the whole file (table "") or one table and its indexes, and returns
// the problems reported (none when SQLite answers "ok"). In a dry run it is
// planned, not run, and reports none.
func integrityPragma(ctx context.Context, r *run, pragma, table string) ([]string, error) {
	st := driver.PlannedStatement{Object: table, Statement: "PRAGMA " + pragma, Reason: "full_checkdb checks the whole database"}
	if table != "" {
		st.Statement += "(" + quoteIdent(table) + ")"
		st.Reason = "consistency_check checks every table and its indexes"
	}
	var out []string
	err := r.maintain(ctx, st, func(ctx context.Context, stmt string) error {
		var err error
		out, err = readIntegrityPragma(ctx, r.db, stmt)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", pragma, table, err)
	}
	return out, nil
}

// checkPragma runs an integrity_check or quick_check statement on db (not
// a task's: the drill's preflight, a backup's copy) and returns the
// problems reported.
func checkPragma(ctx context.Context, db *sql.DB, pragma, table string) ([]string, error) {
	stmt := "PRAGMA " + pragma
	if table != "" {
		stmt += "(" + quoteIdent(table) + ")"
	}
	out, err := readIntegrityPragma(ctx, db, stmt)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", pragma, table, err)
	}
	return out, nil
}

func readIntegrityPragma(ctx context.Context, db *sql.DB, stmt string) ([]string, error) {
	rows, err := db.QueryContext(ctx, stmt)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var msg string
		if err := rows.Scan(&msg); err != nil {
			return nil, err
		}
		for _, line := range strings.Split(msg, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || line == "ok" || strings.HasPrefix(line, "*** in database") {
				continue
			}
			if len(out) < maxReported {
				out = append(out, line)
			}
		}
	}
	return out, rows.Err()
}

// foreignKeyCheck runs PRAGMA foreign_key_check of r's task on table (all
// tables when ""); it returns up to maxReported violations and their total
// count. In a dry run it is planned, not run, and reports none.
func foreignKeyCheck(ctx context.Context, r *run, table string) ([]string, int, error) {
	st := driver.PlannedStatement{Object: table, Statement: "PRAGMA foreign_key_check", Reason: "full_checkdb checks every foreign key"}
	if table != "" {
		st.Statement += "(" + quoteIdent(table) + ")"
		st.Reason = "consistency_check checks the foreign keys of every table"
	}
	var out []string
	total := 0
	err := r.maintain(ctx, st, func(ctx context.Context, stmt string) error {
		rows, err := r.db.QueryContext(ctx, stmt)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var child, parent string
			var rowid sql.NullInt64
			var fkid int
			if err := rows.Scan(&child, &rowid, &parent, &fkid); err != nil {
				return err
			}
			total++
			if len(out) < maxReported {
				row := "a row"
				if rowid.Valid {
					row = "rowid " + strconv.FormatInt(rowid.Int64, 10)
				}
				out = append(out, fmt.Sprintf("%s %s references a missing row of %s (foreign key %d)", child, row, parent, fkid))
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, fmt.Errorf("foreign_key_check %s: %w", table, err)
	}
	return out, total, nil
}

// rootPages maps root page numbers to relation names, to name the b-trees
// ("Tree 7 page 12 ...") in integrity_check messages.
func rootPages(ctx context.Context, db *sql.DB) (map[int64]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT rootpage, name FROM sqlite_schema WHERE rootpage > 0`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]string{1: "sqlite_schema"}
	for rows.Next() {
		var p int64
		var n string
		if err := rows.Scan(&p, &n); err != nil {
			return out, err
		}
		out[p] = n
	}
	return out, rows.Err()
}

var (
	reIndexMsg = regexp.MustCompile(`\bindex (\S+)`)              // row N missing from index X; wrong # of entries in index X
	reTreeMsg  = regexp.MustCompile(`\bTree (\d+) page`)          // Tree 7 page 12 cell 3: ...
	reNullMsg  = regexp.MustCompile(`NULL value in ([^.\s]+)\.`)  // NULL value in t.c
	reCheckMsg = regexp.MustCompile(`constraint failed in (\S+)`) // CHECK constraint failed in t
	reFKMsg    = regexp.MustCompile(`^(\S+) .* of (\S+) \(foreign key`)
)

// relationsIn extracts the table and index names that integrity_check
// messages mention.
func relationsIn(problems []string, roots map[int64]string) []string {
	seen := map[string]bool{}
	for _, p := range problems {
		for _, m := range reIndexMsg.FindAllStringSubmatch(p, -1) {
			seen[m[1]] = true
		}
		for _, re := range []*regexp.Regexp{reNullMsg, reCheckMsg} {
			if m := re.FindStringSubmatch(p); m != nil {
				seen[m[1]] = true
			}
		}
		for _, m := range reTreeMsg.FindAllStringSubmatch(p, -1) {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			if name, ok := roots[n]; ok {
				seen[name] = true
			} else {
				seen["b-tree rooted at page "+m[1]] = true
			}
		}
	}
	return sortedKeys(seen)
}

// fkRelations extracts child and parent table names from foreignKeyCheck
// messages.
func fkRelations(fks []string) []string {
	seen := map[string]bool{}
	for _, f := range fks {
		if m := reFKMsg.FindStringSubmatch(f); m != nil {
			seen[m[1]], seen[m[2]] = true, true
		}
	}
	return sortedKeys(seen)
}

func mergeNames(lists ...[]string) []string {
	seen := map[string]bool{}
	for _, l := range lists {
		for _, n := range l {
			seen[n] = true
		}
	}
	return sortedKeys(seen)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
