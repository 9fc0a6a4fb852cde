package postgres

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/driver"
)

// takeBackup takes a backup into a new timestamped directory and returns it
// with its marker (state taken, source row counts filled in).
func (r *run) takeBackup(ctx context.Context, env backupEnv) (string, backupMeta, error) {
	t := r.target()
	root := backupRoot(t)
	if err := os.MkdirAll(t.BackupDir, 0o755); err != nil {
		return "", backupMeta{}, driver.Permanent(driver.KindMisconfigured, fmt.Errorf("backup_dir: %w", err))
	}
	if err := env.user.MkdirOwned(root, 0o750); err != nil {
		return "", backupMeta{}, driver.Permanent(driver.KindMisconfigured, fmt.Errorf("backup_dir: %w", err))
	}
	started := time.Now().UTC()
	dir := filepath.Join(root, started.Format("20060102T150405.000Z")+"-"+env.methodN)
	if err := env.user.MkdirOwned(dir, 0o750); err != nil {
		return "", backupMeta{}, fmt.Errorf("create backup directory: %w", err)
	}
	meta := backupMeta{Target: t.Name, Method: env.methodN, State: backupInProgress, StartedAt: started,
		Database: r.srv.Database, ServerVersionNum: r.srv.VersionNum}
	err := r.pool.QueryRow(ctx, `
		SELECT (SELECT rolname FROM pg_roles WHERE oid = 10),
		       (SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()),
		       current_setting('max_prepared_transactions')::int`).Scan(&meta.Superuser, &meta.Encoding, &meta.MaxPrepared)
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", meta, classify(ctx, err, "read source settings")
	}
	if err := writeMeta(dir, meta); err != nil {
		_ = os.RemoveAll(dir)
		return "", meta, err
	}
	stopTouch := touchEvery(markerTouch, filepath.Join(dir, backupMarker))
	defer stopTouch()
	ok := false
	defer func() {
		if !ok {
			// A partial backup is worthless; remove it (even when cancelled).
			_ = os.RemoveAll(dir)
		}
	}()
	if env.methodN == methodDump {
		if err := r.dumpWithCounts(ctx, env, dir, &meta); err != nil {
			return "", meta, err
		}
	} else {
		if err := r.basebackupWithCounts(ctx, env, dir, &meta); err != nil {
			return "", meta, err
		}
	}
	meta.State, meta.TakenAt = backupTaken, time.Now().UTC()
	if err := writeMeta(dir, meta); err != nil {
		return "", meta, err
	}
	ok = true
	return dir, meta, nil
}

// countedTable is a table whose rows backup verification compares.
type countedTable struct {
	rel
	Physical bool // included in a physical backup (not unlogged)
	Logical  bool // its rows restored by pg_restore (not a materialised view)
}

// countableTables lists user tables whose rows a restore must reproduce:
// not extension members (pg_dump leaves their data out); unlogged tables are
// marked (physical backups carry none of their rows), materialised views too
// (pg_restore refreshes them from the restored tables).
func countableTables(ctx context.Context, q func(ctx context.Context, sql string, args ...any) (pgx.Rows, error)) ([]countedTable, error) {
	rows, err := q(ctx, `
		SELECT n.nspname, c.relname, c.relpersistence <> 'u', c.relkind = 'r'
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'
		  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
		ORDER BY n.nspname, c.relname`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []countedTable
	for rows.Next() {
		var t countedTable
		if err := rows.Scan(&t.Schema, &t.Name, &t.Physical, &t.Logical); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// countRows counts each table's rows inside tx.
func countRows(ctx context.Context, tx pgx.Tx, tables []countedTable, include func(countedTable) bool) (map[string]int64, error) {
	out := map[string]int64{}
	for _, t := range tables {
		if !include(t) {
			continue
		}
		var n int64
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+t.ident()).Scan(&n); err != nil {
			if isGone(err) {
				continue
			}
			return nil, fmt.Errorf("count %s: %w", t, err)
		}
		out[t.String()] = n
	}
	return out, nil
}

// dumpWithCounts exports a snapshot from a REPEATABLE READ transaction,
// counts every table's rows in it, and runs pg_dump --snapshot with it, so
// the counts describe exactly what the dump contains.
func (r *run) dumpWithCounts(ctx context.Context, env backupEnv, dir string, meta *backupMeta) error {
	to, err := r.timeoutOpts()
	if err != nil {
		return err
	}
	s, err := r.session(ctx, to)
	if err != nil {
		return err
	}
	defer s.release()
	tx, err := s.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return classify(ctx, err, "begin snapshot transaction")
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var snapshot string
	if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&snapshot); err != nil {
		return classify(ctx, err, "pg_export_snapshot")
	}
	tables, err := countableTables(ctx, tx.Query)
	if err != nil {
		return classify(ctx, err, "list tables")
	}
	r.progress(5, fmt.Sprintf("counting rows of %d tables in the dump's snapshot", len(tables)), nil)
	counts, err := countRows(ctx, tx, tables, func(t countedTable) bool { return t.Logical })
	if err != nil {
		return classify(ctx, err, "count source rows")
	}
	meta.SourceCounts, meta.ExactCounts = counts, true
	args := []string{"--format=custom", "--file=" + filepath.Join(dir, dumpFile), "--snapshot=" + snapshot,
		"--no-password", "--lock-wait-timeout=" + strconv.FormatInt(to.LockMs, 10)}
	err = r.during(10, "pg_dump running", nil, func() error {
		_, err := env.source.Run(ctx, "pg_dump", args...)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("pg_dump: %w", err)
	}
	return nil
}

// basebackupWithCounts runs pg_basebackup (tablespaces mapped into the
// backup directory), checks it with pg_verifybackup, then counts the source
// rows. Because the backup and the counts are not one snapshot, each table
// may differ by as many rows as were inserted or deleted between the start
// of the backup and the end of the count (from pg_stat_user_tables); on a
// quiet database the counts must match exactly.
func (r *run) basebackupWithCounts(ctx context.Context, env backupEnv, dir string, meta *backupMeta) error {
	changes := func() (map[string]int64, error) {
		rows, err := r.pool.Query(ctx, `SELECT schemaname || '.' || relname, n_tup_ins + n_tup_del FROM pg_stat_user_tables`)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := map[string]int64{}
		for rows.Next() {
			var k string
			var v int64
			if err := rows.Scan(&k, &v); err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, rows.Err()
	}
	before, err := changes()
	if err != nil {
		return classify(ctx, err, "read table change counters")
	}
	mappings, err := tablespaceMappings(ctx, r.pool.Query, filepath.Join(dir, "tblspc"))
	if err != nil {
		return classify(ctx, err, "list tablespaces")
	}
	if len(mappings) > 0 {
		if err := env.user.MkdirOwned(filepath.Join(dir, "tblspc"), 0o700); err != nil {
			return err
		}
	}
	data := filepath.Join(dir, basebackupSubdir)
	args := append([]string{"-D", data, "-X", "stream", "--checkpoint=fast", "--no-password",
		"--label=themis-" + safeName(r.req.JobID)}, mappings...)
	err = r.during(5, "pg_basebackup running", nil, func() error {
		_, err := env.source.RunGroup(ctx, "pg_basebackup", args...)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("pg_basebackup: %w", err)
	}
	if hasVerifyBackup(env, data) {
		r.progress(30, "pg_verifybackup", nil)
		if _, err := env.local.Run(ctx, "pg_verifybackup", data); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return driver.Permanent(driver.KindVerificationFailed, fmt.Errorf("pg_verifybackup: %w", err))
		}
	}
	r.progress(35, "counting source rows", nil)
	tx, err := r.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return classify(ctx, err, "begin count transaction")
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	tables, err := countableTables(ctx, tx.Query)
	if err != nil {
		return classify(ctx, err, "list tables")
	}
	counts, err := countRows(ctx, tx, tables, func(t countedTable) bool { return t.Physical })
	if err != nil {
		return classify(ctx, err, "count source rows")
	}
	_ = tx.Rollback(ctx)
	meta.SourceCounts = counts
	if r.srv.InRecovery {
		// Replayed changes are not counted in a standby's statistics, so the
		// window's changes are unknown: compare, but only report differences.
		meta.ExactCounts = false
		return nil
	}
	// Statistics reach shared memory up to a second after a transaction ends.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(countSettleDelay):
	}
	after, err := changes()
	if err != nil {
		return classify(ctx, err, "read table change counters")
	}
	meta.Tolerance = map[string]int64{}
	meta.ExactCounts = true
	for k := range counts {
		if d := after[k] - before[k]; d > 0 {
			meta.Tolerance[k] = d
		}
	}
	return nil
}

// hasVerifyBackup reports whether pg_verifybackup can check the base
// backup in data: the binary is in the bin dir and the backup has a
// manifest (pg_basebackup of PostgreSQL 13 and later writes one).
func hasVerifyBackup(env backupEnv, data string) bool {
	if _, err := os.Stat(filepath.Join(env.binDir, "pg_verifybackup")); err != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(data, "backup_manifest"))
	return err == nil
}
