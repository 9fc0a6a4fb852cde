package pgbench

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// relName is a schema-qualified relation.
type relName struct{ Schema, Name string }

func (r relName) String() string { return r.Schema + "." + r.Name }
func (r relName) ident() string  { return pgx.Identifier{r.Schema, r.Name}.Sanitize() }

// userSchemas mirrors the driver's filter of system schemas.
const userSchemas = `n.nspname NOT IN ('pg_catalog', 'information_schema')
	AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'`

// fingerprint identifies the restored state; every restore must match the
// snapshot's.
type fingerprint struct {
	Tables     int64
	DeadTuples int64
	HeapBytes  int64
	IndexBytes int64
	Indexes    int64
}

func readFingerprint(ctx context.Context, conn *pgx.Conn) (fingerprint, error) {
	var f fingerprint
	err := conn.QueryRow(ctx, `
		SELECT count(*), coalesce(sum(n_dead_tup), 0)::int8, coalesce(sum(pg_table_size(relid)), 0)::int8,
		       (SELECT coalesce(sum(pg_relation_size(indexrelid)), 0)::int8 FROM pg_stat_user_indexes),
		       (SELECT count(*) FROM pg_stat_user_indexes)
		FROM pg_stat_user_tables`).Scan(&f.Tables, &f.DeadTuples, &f.HeapBytes, &f.IndexBytes, &f.Indexes)
	return f, err
}

// expected is the work both sides of each pair must do, read once from the
// state that is snapshotted. The queries mirror the driver's selection.
type expected struct {
	fp fingerprint
	// vacuumTables: user tables with n_dead_tup >= 1 (mvcc_cleanup with
	// dead_tuple_threshold=1; no table is near the xid threshold).
	vacuumTables []relName
	// rebuildIndexes: valid btree indexes of 1 MiB or more outside the
	// system schemas, not backing exclusion constraints (index_rebuild with
	// high_threshold_pct=0), with their filenodes in the snapshot.
	rebuildIndexes []relName
	filenodes      []int64
	// rebuildTables are the tables of rebuildIndexes; tableIndexesExtra are
	// indexes reindexdb -t rebuilds on them beyond rebuildIndexes (TOAST
	// indexes always, and any user index under 1 MiB).
	rebuildTables     []relName
	extraToastIndexes int
	extraUserIndexes  []string
	extraBytes        int64
	smallestIndex     int64
}

func readExpected(ctx context.Context, conn *pgx.Conn) (expected, error) {
	var e expected
	var err error
	if e.fp, err = readFingerprint(ctx, conn); err != nil {
		return e, err
	}
	rows, err := conn.Query(ctx, `
		SELECT n.nspname, c.relname
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
		WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't' AND `+userSchemas+`
		  AND coalesce(s.n_dead_tup, 0) >= 1
		ORDER BY c.oid`)
	if err != nil {
		return e, err
	}
	e.vacuumTables, err = pgx.CollectRows(rows, pgx.RowToStructByPos[relName])
	if err != nil {
		return e, err
	}
	rows, err = conn.Query(ctx, `
		SELECT n.nspname, c.relname, tn.nspname, t.relname, pg_relation_filenode(c.oid)::int8
		FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
		JOIN pg_am am ON am.oid = c.relam
		WHERE c.relkind = 'i' AND c.relpersistence <> 't' AND `+userSchemas+`
		  AND am.amname = 'btree' AND i.indisvalid
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint x WHERE x.conindid = c.oid AND x.contype = 'x')
		  AND (c.reltuples < 0 OR c.relpages::int8 * current_setting('block_size')::int8 >= 1048576)
		  AND pg_relation_size(c.oid) >= 1048576
		ORDER BY c.oid`)
	if err != nil {
		return e, err
	}
	seen := map[relName]bool{}
	for rows.Next() {
		var ix, t relName
		var fn int64
		if err := rows.Scan(&ix.Schema, &ix.Name, &t.Schema, &t.Name, &fn); err != nil {
			rows.Close()
			return e, err
		}
		e.rebuildIndexes = append(e.rebuildIndexes, ix)
		e.filenodes = append(e.filenodes, fn)
		if !seen[t] {
			seen[t] = true
			e.rebuildTables = append(e.rebuildTables, t)
		}
	}
	if err := rows.Err(); err != nil {
		return e, err
	}
	// What REINDEX TABLE would rebuild on those tables beyond our set.
	inSet := map[string]bool{}
	for _, ix := range e.rebuildIndexes {
		inSet[ix.String()] = true
	}
	tables := make([]string, len(e.rebuildTables))
	for i, t := range e.rebuildTables {
		tables[i] = t.ident()
	}
	rows, err = conn.Query(ctx, `
		SELECT n.nspname || '.' || c.relname, n.nspname ~ '^pg_toast', pg_relation_size(c.oid)::int8
		FROM pg_class t
		JOIN pg_index i ON i.indrelid = t.oid OR i.indrelid = t.reltoastrelid
		JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE t.oid = ANY (SELECT to_regclass(x)::oid FROM unnest($1::text[]) AS x)`, tables)
	if err != nil {
		return e, err
	}
	for rows.Next() {
		var name string
		var toast bool
		var size int64
		if err := rows.Scan(&name, &toast, &size); err != nil {
			rows.Close()
			return e, err
		}
		switch {
		case inSet[name]:
		case toast:
			e.extraToastIndexes++
			e.extraBytes += size
		default:
			e.extraUserIndexes = append(e.extraUserIndexes, name)
			e.extraBytes += size
		}
	}
	if err := rows.Err(); err != nil {
		return e, err
	}
	sort.Strings(e.extraUserIndexes)
	err = conn.QueryRow(ctx, `SELECT coalesce(min(pg_relation_size(indexrelid)), 0)::int8 FROM pg_stat_user_indexes`).Scan(&e.smallestIndex)
	return e, err
}

// sideKind says how a side runs.
type sideKind int

const (
	sideOurs sideKind = iota
	sideNative
)

// side is one way of doing a pair's work.
type side struct {
	key  string // "ours" or "native"
	kind sideKind
	bin  string
	args []string
	// display is the command line as printed (long -t/-i lists abridged).
	display string
}

// pairDef is one comparison.
type pairDef struct {
	id      string
	task    domain.TaskType
	opts    domain.TaskOptions
	oursDoc string
	sides   []side // sides[0] is ours, sides[1] the native tool
	matched string
	// verify checks after a side that the work was done, and describes it.
	verify func(ctx context.Context, b *bench, s side, out sideOutput) (string, error)
}

// sideOutput is what a side returned.
type sideOutput struct {
	details  map[string]any // ours
	measured time.Duration  // ours: end of the measurement pass, if observed
	output   string         // native
}

// num reads a numeric detail (int in-process, float64 after JSON).
func num(d map[string]any, key string) (float64, bool) {
	switch v := d[key].(type) {
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

var amcheckProgress = regexp.MustCompile(`(\d+)/(\d+) relations \(100%\)`)

// amcheckRelations returns the relation total from pg_amcheck -P output.
func amcheckRelations(out string) (int, bool) {
	m := amcheckProgress.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return 0, false
	}
	n, err := strconv.Atoi(m[len(m)-1][2])
	return n, err == nil
}

// abridge renders a command with long repeated-flag lists shortened.
func abridge(bin string, args []string) string {
	var parts []string
	counts := map[string]int{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if (a == "-t" || a == "-i") && i+1 < len(args) {
			counts[a]++
			if counts[a] <= 1 {
				parts = append(parts, a, shellQuote(args[i+1]))
			} else if counts[a] == 2 {
				parts = append(parts, "…")
			}
			i++
			continue
		}
		parts = append(parts, shellQuote(a))
	}
	s := bin + " " + strings.Join(parts, " ")
	for _, f := range []string{"-t", "-i"} {
		if counts[f] > 1 {
			s += fmt.Sprintf(" (%d × %s)", counts[f], f)
		}
	}
	return s
}

// shellQuote quotes an argument for display when a shell would expand it.
func shellQuote(a string) string {
	if strings.ContainsAny(a, "*? '\"$") {
		return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return a
}

// toolMajor returns the major version of a client tool in binDir.
func toolMajor(ctx context.Context, r pgbin.Runner, name string) (int, error) {
	out, err := r.Run(ctx, name, "--version")
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`\(PostgreSQL\) (\d+)`).FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("%s --version: unrecognised output %q", name, strings.TrimSpace(out))
	}
	return strconv.Atoi(m[1])
}

// buildPairs defines the pairs cfg selects against the expected work.
func buildPairs(ctx context.Context, cfg Config, runner pgbin.Runner, e expected) ([]pairDef, error) {
	n := strconv.Itoa(cfg.Jobs)
	var out []pairDef
	if cfg.wants(PairMVCC) {
		args := []string{"-j", n, "--analyze", "-d", DBName}
		for _, t := range e.vacuumTables {
			args = append(args, "-t", t.ident())
		}
		p := pairDef{
			id: PairMVCC, task: domain.TaskMVCCCleanup,
			opts:    domain.TaskOptions{"parallelism": int64(cfg.Jobs), "dead_tuple_threshold": int64(1), "xid_age_threshold": int64(2_000_000_000)},
			oursDoc: fmt.Sprintf("mvcc_cleanup parallelism=%d dead_tuple_threshold=1 xid_age_threshold=2e9", cfg.Jobs),
			sides: []side{{key: "ours", kind: sideOurs},
				{key: "native", kind: sideNative, bin: "vacuumdb", args: args}},
			matched: fmt.Sprintf("same %d tables: every user table with a dead tuple (what ours selects at threshold 1), one vacuumdb -t each; both run VACUUM (ANALYZE) per table, largest table first on both sides",
				len(e.vacuumTables)),
		}
		p.verify = func(ctx context.Context, b *bench, s side, o sideOutput) (string, error) {
			var done int
			if err := b.query(ctx, func(conn *pgx.Conn) error {
				names := make([]string, len(e.vacuumTables))
				for i, t := range e.vacuumTables {
					names[i] = t.ident()
				}
				return conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_all_tables
					WHERE relid = ANY (SELECT to_regclass(x)::oid FROM unnest($1::text[]) AS x)
					  AND last_vacuum IS NOT NULL AND last_analyze IS NOT NULL`, names).Scan(&done)
			}); err != nil {
				return "", err
			}
			if done != len(e.vacuumTables) {
				return "", fmt.Errorf("%s: %d of %d tables were vacuumed and analysed", s.key, done, len(e.vacuumTables))
			}
			if s.kind == sideOurs {
				if v, _ := num(o.details, "tables_vacuumed"); int(v) != len(e.vacuumTables) {
					return "", fmt.Errorf("ours vacuumed %v tables, expected %d", o.details["tables_vacuumed"], len(e.vacuumTables))
				}
			}
			return fmt.Sprintf("%d/%d tables vacuumed+analysed", done, len(e.vacuumTables)), nil
		}
		out = append(out, p)
	}
	checkPair := func(id string, task domain.TaskType, nativeArgs []string, matched string, count func(d map[string]any) (int, bool)) pairDef {
		p := pairDef{id: id, task: task, opts: domain.TaskOptions{"parallelism": int64(cfg.Jobs)}, oursDoc: fmt.Sprintf("%s parallelism=%d", task, cfg.Jobs),
			sides: []side{{key: "ours", kind: sideOurs},
				{key: "native", kind: sideNative, bin: "pg_amcheck", args: append([]string{"-j", n}, nativeArgs...)}},
			matched: matched,
		}
		p.verify = func(ctx context.Context, b *bench, s side, o sideOutput) (string, error) {
			if s.kind == sideOurs {
				c, ok := count(o.details)
				if !ok {
					return "", fmt.Errorf("ours: no relation count in the result details")
				}
				return fmt.Sprintf("%d relations checked, no corruption", c), nil
			}
			c, ok := amcheckRelations(o.output)
			if !ok {
				return "", fmt.Errorf("%s: no final progress line in pg_amcheck's output: %s", s.key, pgbin.Tail(o.output, 3))
			}
			return fmt.Sprintf("%d relations checked, no corruption", c), nil
		}
		return p
	}
	if cfg.wants(PairFullCheck) {
		out = append(out, checkPair(PairFullCheck, domain.TaskFullCheckDB,
			[]string{"--heapallindexed", "--parent-check", "-P", DBName},
			"same checks: verify_heapam(check_toast) on every table, catalogs included, and bt_index_parent_check(heapallindexed) on every btree index, catalog and TOAST indexes included; pg_amcheck also runs verify_heapam on the TOAST tables themselves (ours reaches TOAST through check_toast), so its relation count is higher",
			func(d map[string]any) (int, bool) { v, ok := num(d, "relations_checked"); return int(v), ok }))
	}
	if cfg.wants(PairConsistency) {
		out = append(out, checkPair(PairConsistency, domain.TaskConsistencyCheck,
			[]string{"-i", "*", "-P", DBName},
			"same checks: bt_index_check (no heapallindexed) on every valid btree index, catalog and TOAST indexes included; pg_amcheck -i '*' selects indexes only, no heap checks",
			func(d map[string]any) (int, bool) { v, ok := num(d, "indexes"); return int(v), ok }))
	}
	if cfg.wants(PairRebuild) {
		major, err := toolMajor(ctx, runner, "reindexdb")
		if err != nil {
			return nil, err
		}
		args := []string{"--concurrently", "-j", n, "-d", DBName}
		var matched string
		if major >= 17 {
			for _, ix := range e.rebuildIndexes {
				args = append(args, "-i", ix.ident())
			}
			matched = fmt.Sprintf("same %d indexes (every btree index of 1 MiB or more), one reindexdb -i each (REINDEX INDEX CONCURRENTLY per index); ours issues one REINDEX TABLE CONCURRENTLY for a table all of whose indexes are chosen", len(e.rebuildIndexes))
		} else {
			for _, t := range e.rebuildTables {
				args = append(args, "-t", t.ident())
			}
			matched = fmt.Sprintf("reindexdb %d refuses -j with -i, so -t for the %d tables of our %d indexes (REINDEX TABLE CONCURRENTLY; ours issues the same statement for a table all of whose indexes are chosen, REINDEX INDEX CONCURRENTLY per index otherwise)",
				major, len(e.rebuildTables), len(e.rebuildIndexes))
			if len(e.extraUserIndexes) > 0 {
				matched += fmt.Sprintf("; MISMATCH: -t also rebuilds %d user index(es) under 1 MiB that ours skips: %s", len(e.extraUserIndexes), strings.Join(e.extraUserIndexes[:min(5, len(e.extraUserIndexes))], ", "))
			} else {
				matched += "; every user index of those tables is in our set"
			}
			if e.extraToastIndexes > 0 {
				matched += fmt.Sprintf("; -t also rebuilds their %d TOAST indexes (%s in all)", e.extraToastIndexes, HumanBytes(e.extraBytes))
			}
		}
		p := pairDef{
			id: PairRebuild, task: domain.TaskIndexRebuild,
			opts:    domain.TaskOptions{"parallelism": int64(cfg.Jobs), "high_threshold_pct": 0.0},
			oursDoc: fmt.Sprintf("index_rebuild parallelism=%d high_threshold_pct=0", cfg.Jobs),
			sides: []side{{key: "ours", kind: sideOurs},
				{key: "native", kind: sideNative, bin: "reindexdb", args: args}},
			matched: matched,
		}
		p.verify = func(ctx context.Context, b *bench, s side, o sideOutput) (string, error) {
			names := make([]string, len(e.rebuildIndexes))
			for i, ix := range e.rebuildIndexes {
				names[i] = ix.ident()
			}
			var changed int
			if err := b.query(ctx, func(conn *pgx.Conn) error {
				return conn.QueryRow(ctx, `SELECT count(*) FROM unnest($1::text[], $2::int8[]) AS x(name, fn)
					WHERE pg_relation_filenode(to_regclass(x.name)) <> x.fn`, names, e.filenodes).Scan(&changed)
			}); err != nil {
				return "", err
			}
			if changed != len(names) {
				return "", fmt.Errorf("%s: %d of %d indexes were rebuilt", s.key, changed, len(names))
			}
			if s.kind == sideOurs {
				if v, _ := num(o.details, "rebuilt"); int(v) != len(names) {
					return "", fmt.Errorf("ours rebuilt %v indexes, expected %d", o.details["rebuilt"], len(names))
				}
			}
			note := fmt.Sprintf("%d/%d indexes rebuilt", changed, len(names))
			if s.kind == sideOurs {
				tbl, _ := num(o.details, "reindex_table_statements")
				idx, _ := num(o.details, "reindex_index_statements")
				note += fmt.Sprintf(" (%d REINDEX TABLE, %d REINDEX INDEX)", int(tbl), int(idx))
			}
			if s.kind == sideOurs && o.measured > 0 {
				note += fmt.Sprintf(" (pgstatindex pass %.1fs)", o.measured.Seconds())
			}
			return note, nil
		}
		out = append(out, p)
	}
	for i := range out {
		for j := range out[i].sides {
			s := &out[i].sides[j]
			if s.kind == sideOurs {
				s.display = out[i].oursDoc
			} else {
				s.display = abridge(s.bin, s.args)
			}
		}
	}
	return out, nil
}

// runNative runs a native side and returns its wall time and output.
func runNative(ctx context.Context, r pgbin.Runner, s side) (time.Duration, string, error) {
	start := time.Now()
	out, err := r.Run(ctx, s.bin, s.args...)
	return time.Since(start), out, err
}

// clusterDSN is the benchmark database's connection string.
func clusterDSN(c *pgcluster.Cluster) string { return c.DSN(DBName) }
