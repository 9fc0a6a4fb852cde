package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
)

// rel names a table or index. Its String form (schema.name, unquoted) is what
// results and checkpoints carry; ident is the only form that enters SQL.
type rel struct {
	OID    uint32 `json:"-"`
	Schema string `json:"schema"`
	Name   string `json:"name"`
}

func (r rel) ident() string  { return pgx.Identifier{r.Schema, r.Name}.Sanitize() }
func (r rel) String() string { return r.Schema + "." + r.Name }

// systemSchemaFilter excludes catalogs, TOAST and other sessions' temporary
// schemas; n is the pg_namespace alias.
const systemSchemaFilter = `n.nspname NOT IN ('pg_catalog', 'information_schema')
	AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'`

// table is a user table with the statistics the tasks select on.
type table struct {
	rel
	SizeBytes       int64
	LiveTup         int64
	DeadTup         int64
	XIDAge          int64
	ModSinceAnalyze int64
	Analyzed        bool
	Unlogged        bool
}

// Listings never call pg_relation_size and friends: those take an ACCESS
// SHARE lock and would block behind any exclusive lock. Sizes here come from
// pg_class.relpages (as of the last VACUUM, ANALYZE or CREATE INDEX), -1 when
// the relation was never vacuumed or analysed; work that needs the exact
// size reads it on a session with lock_timeout.

// listTables returns ordinary tables and materialised views outside the
// system schemas (partitioned parents have no storage of their own; their
// partitions are listed), ordered by OID.
func (r *run) listTables(ctx context.Context) ([]table, error) { return r.listTablesIn(ctx, false) }

// listTablesIn is listTables, with catalog tables too when withCatalog.
func (r *run) listTablesIn(ctx context.Context, withCatalog bool) ([]table, error) {
	filter := systemSchemaFilter
	if withCatalog {
		filter = "n.nspname !~ '^pg_temp_' AND n.nspname !~ '^pg_toast'"
	}
	rows, err := r.pool.Query(ctx, `
		SELECT c.oid::int8, n.nspname, c.relname,
		       CASE WHEN c.reltuples < 0 THEN -1
		            ELSE (c.relpages::int8 + coalesce(tc.relpages, 0)) * current_setting('block_size')::int8 END,
		       coalesce(s.n_live_tup, 0), coalesce(s.n_dead_tup, 0),
		       greatest(CASE WHEN c.relfrozenxid::text::int8 = 0 THEN 0 ELSE age(c.relfrozenxid) END,
		                CASE WHEN tc.oid IS NULL OR tc.relfrozenxid::text::int8 = 0 THEN 0 ELSE age(tc.relfrozenxid) END),
		       coalesce(s.n_mod_since_analyze, 0),
		       s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL,
		       c.relpersistence = 'u'
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_class tc ON tc.oid = c.reltoastrelid
		LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
		WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't' AND `+filter+`
		ORDER BY c.oid`)
	if err != nil {
		return nil, classify(ctx, err, "list tables")
	}
	var out []table
	for rows.Next() {
		var t table
		var oid int64
		if err := rows.Scan(&oid, &t.Schema, &t.Name, &t.SizeBytes, &t.LiveTup, &t.DeadTup, &t.XIDAge, &t.ModSinceAnalyze, &t.Analyzed, &t.Unlogged); err != nil {
			rows.Close()
			return nil, classify(ctx, err, "list tables")
		}
		t.OID = uint32(oid)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(ctx, err, "list tables")
	}
	return out, nil
}

// index is an index with what the tasks need to choose and report it.
type index struct {
	rel
	Table        rel
	AccessMethod string
	SizeBytes    int64
	Valid        bool
	Ready        bool
	Unique       bool
	Primary      bool
	Exclusion    bool // backs an exclusion constraint (no concurrent rebuild)
	Catalog      bool // in a system schema
	Unlogged     bool
}

// listIndexes returns every index with storage in the database (catalog and
// TOAST indexes only when withCatalog), ordered by OID.
func (r *run) listIndexes(ctx context.Context, withCatalog bool) ([]index, error) {
	filter := "true"
	if !withCatalog {
		filter = systemSchemaFilter
	}
	rows, err := r.pool.Query(ctx, `
		SELECT c.oid::int8, n.nspname, c.relname, t.oid::int8, tn.nspname, t.relname, am.amname,
		       CASE WHEN c.reltuples < 0 THEN -1 ELSE c.relpages::int8 * current_setting('block_size')::int8 END, i.indisvalid, i.indisready, i.indisunique, i.indisprimary,
		       EXISTS (SELECT 1 FROM pg_constraint x WHERE x.conindid = c.oid AND x.contype = 'x'),
		       n.nspname IN ('pg_catalog', 'information_schema') OR n.nspname ~ '^pg_toast',
		       c.relpersistence = 'u'
		FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_class t ON t.oid = i.indrelid
		JOIN pg_namespace tn ON tn.oid = t.relnamespace
		JOIN pg_am am ON am.oid = c.relam
		WHERE c.relkind = 'i' AND c.relpersistence <> 't' AND n.nspname !~ '^pg_temp_' AND `+filter+`
		ORDER BY c.oid`)
	if err != nil {
		return nil, classify(ctx, err, "list indexes")
	}
	var out []index
	for rows.Next() {
		var ix index
		var oid, toid int64
		if err := rows.Scan(&oid, &ix.Schema, &ix.Name, &toid, &ix.Table.Schema, &ix.Table.Name, &ix.AccessMethod,
			&ix.SizeBytes, &ix.Valid, &ix.Ready, &ix.Unique, &ix.Primary, &ix.Exclusion, &ix.Catalog, &ix.Unlogged); err != nil {
			rows.Close()
			return nil, classify(ctx, err, "list indexes")
		}
		ix.OID, ix.Table.OID = uint32(oid), uint32(toid)
		out = append(out, ix)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(ctx, err, "list indexes")
	}
	return out, nil
}

// extensionSchema returns the schema extension name is installed in.
func (r *run) extensionSchema(ctx context.Context, name string) (string, bool, error) {
	var schema string
	err := r.pool.QueryRow(ctx, `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = $1`, name).Scan(&schema)
	if err == pgx.ErrNoRows {
		return "", false, nil
	}
	if err != nil {
		return "", false, classify(ctx, err, "look up extension %s", name)
	}
	return schema, true, nil
}

// ensureExtension returns the schema of extension name. When it is not
// installed it is created (CREATE EXTENSION IF NOT EXISTS ... SCHEMA, into
// the target's extension schema, created too) only when the target allows
// it (allow_create_extension); a routine task leaves a production
// database's schema alone otherwise. When it cannot be had (not allowed,
// not available on the server, no privilege, a read-only standby), schema
// is empty and why says so, naming the extension; err is reserved for
// cancellation and failures that are not about the extension.
func (r *run) ensureExtension(ctx context.Context, name string) (schema, why string, err error) {
	schema, ok, err := r.extensionSchema(ctx, name)
	if err != nil || ok {
		return schema, "", err
	}
	t := r.target()
	if !t.AllowCreateExtension {
		return "", fmt.Sprintf("extension %s is not installed and target %s does not allow creating it (allow_create_extension is off)", name, t.Name), nil
	}
	var available bool
	if err := r.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1)`, name).Scan(&available); err != nil {
		return "", "", classify(ctx, err, "look up extension %s", name)
	}
	if !available {
		return "", fmt.Sprintf("extension %s is not available on the server (install the contrib package)", name), nil
	}
	if r.srv.InRecovery {
		return "", fmt.Sprintf("extension %s is not installed and cannot be created on a standby", name), nil
	}
	into := t.ExtensionSchema
	if into == "" {
		into = defaultExtensionSchema
	}
	to, err := r.timeoutOpts()
	if err != nil {
		to = r.defaultTimeouts()
	}
	to.StatementMs = min(to.StatementMs, 60_000)
	s, err := r.session(ctx, to)
	if err != nil {
		return "", "", err
	}
	defer s.release()
	ctx = withPlanNote(ctx, fmt.Sprintf("extension %s is not installed and the target allows creating it", name), nil)
	for _, stmt := range []string{
		"CREATE SCHEMA IF NOT EXISTS " + pgx.Identifier{into}.Sanitize(),
		"CREATE EXTENSION IF NOT EXISTS " + pgx.Identifier{name}.Sanitize() + " SCHEMA " + pgx.Identifier{into}.Sanitize(),
	} {
		if err := s.exec(ctx, stmt); err != nil {
			if ctx.Err() != nil {
				return "", "", ctx.Err()
			}
			if isCode(err, pgerrcode.InsufficientPrivilege, pgerrcode.ReadOnlySQLTransaction, pgerrcode.UndefinedFile, pgerrcode.FeatureNotSupported) {
				return "", fmt.Sprintf("extension %s is not installed and could not be created in schema %s: %s", name, into, pgMessage(err)), nil
			}
			return "", "", classify(ctx, err, "create extension %s in schema %s", name, into)
		}
	}
	if r.dry() {
		// Planned, not created: what needs the extension is planned as
		// if it were there (extensionPlanned), what would read with it
		// reads without it.
		r.plan.mu.Lock()
		if r.plan.extensions == nil {
			r.plan.extensions = map[string]string{}
		}
		r.plan.extensions[name] = into
		r.plan.mu.Unlock()
		return "", fmt.Sprintf("dry run: extension %s is not installed; a real run creates it in schema %s first (planned)", name, into), nil
	}
	schema, ok, err = r.extensionSchema(ctx, name)
	if err != nil {
		return "", "", err
	}
	if !ok {
		return "", fmt.Sprintf("extension %s did not appear after CREATE EXTENSION", name), nil
	}
	return schema, "", nil
}

// defaultExtensionSchema is where extensions are created when the target
// allows it and names no schema (internal/config defaults it the same).
const defaultExtensionSchema = "themis_ext"

// fn returns the qualified, quoted name of function f of an extension
// installed in schema, so search_path cannot redirect the call.
func fn(schema, f string) string { return pgx.Identifier{schema, f}.Sanitize() }

// joinNames lists up to n relation names, then "and N more".
func joinNames(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}
