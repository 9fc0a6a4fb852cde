package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
)

// Backup methods.
const (
	methodNative      = "native"
	methodBasebackup  = "pg_basebackup"
	methodDump        = "pg_dump"
	basebackupSubdir  = "data"
	dumpFile          = "dump.pgdump"
	countSettleDelay  = 1500 * time.Millisecond
	defaultKeepBackup = 3 // unused: keep_backups defaults in domain/catalog.go
)

// backupCheckpoint lets a retried attempt verify a backup an earlier attempt
// took instead of taking another.
type backupCheckpoint struct {
	Path  string `json:"path"`
	Stage string `json:"stage"`
}

// backupEnv is what a backup run needs from the local machine.
type backupEnv struct {
	binDir  string
	major   int
	user    *pgbin.User
	source  pgbin.Runner // libpq environment of the target
	local   pgbin.Runner // no libpq environment
	srcEnv  []string
	methodN string // method actually used
}

// backupVerification takes a backup into Target.BackupDir with pg_basebackup
// (method native or pg_basebackup: a physical copy, checked with
// pg_verifybackup) or pg_dump (custom format, from an exported snapshot in
// which the source rows are counted), restores it into a throwaway instance
// on a private Unix socket under Target.ScratchDir (basebackup: a copy of
// the backup started with its own minimal configuration, archiving off;
// pg_dump: initdb + pg_restore), verifies it (amcheck on every btree index
// with heapallindexed and verify_heapam on every table, and row counts per
// table against the source), tears the instance down, records the backup in
// the history store and prunes older backups to keep_backups (default 3).
// A backup that does not verify is a permanent VerificationFailed error.
// Source locks: pg_basebackup takes none; pg_dump and the row counts take
// ACCESS SHARE on every table (DDL waits until they finish).
func backupVerification(ctx context.Context, r *run) (driver.Result, error) {
	t := r.target()
	method, err := enumOpt(r.opts(), "method")
	if err != nil {
		return driver.Result{}, err
	}
	keep, err := intOpt(r.opts(), "keep_backups")
	if err != nil {
		return driver.Result{}, err
	}
	if t.BackupDir == "" {
		return driver.Result{}, driver.Permanentf(driver.KindMisconfigured, "target %s: backup_verification needs backup_dir", t.Name)
	}
	env, err := r.backupEnv(ctx, method)
	if err != nil {
		return driver.Result{}, err
	}
	// The drill's preflight: the restore's scratch directory must be
	// reachable by the server's OS user and have room, checked before the
	// backup is taken.
	sc, err := r.scratchPreflight(ctx, env.user, "backup_verification's restore")
	if err != nil {
		return driver.Result{}, err
	}
	r.progress(0, "preflight: "+sc.space(), nil)

	var dir string
	var meta backupMeta
	var cp backupCheckpoint
	if driver.DecodeCheckpoint(r.req.Checkpoint, &cp) && cp.Stage == backupTaken && filepath.Dir(cp.Path) == backupRoot(t) {
		if m, err := readMeta(cp.Path); err == nil && m.State == backupTaken && m.Method == env.methodN {
			dir, meta = cp.Path, m
			r.progress(50, "resuming: verifying the backup taken by the previous attempt", cp)
		}
	}
	if dir == "" {
		if dir, meta, err = r.takeBackup(ctx, env); err != nil {
			return driver.Result{}, err
		}
	}
	cp = backupCheckpoint{Path: dir, Stage: backupTaken}
	r.progress(50, "backup taken; restoring into a scratch instance", cp)

	report, verr := r.restoreAndVerify(ctx, env, dir, meta)
	if ctx.Err() != nil {
		return driver.Result{}, ctx.Err()
	}
	bytes := dirSize(dir)
	rec := driver.BackupRecord{
		Target: t.Name, Path: dir, Method: env.methodN, TakenAt: meta.TakenAt, Bytes: bytes,
		Details: map[string]any{
			"database": meta.Database, "server_version_num": meta.ServerVersionNum, "superuser": meta.Superuser,
			"requested_method": method, "job_id": r.req.JobID,
		},
	}
	if env.methodN == methodDump {
		rec.Details["dump_file"], rec.Details["format"] = filepath.Join(dir, dumpFile), "custom"
	} else {
		rec.Details["data_dir"], rec.Details["format"] = filepath.Join(dir, basebackupSubdir), "plain"
	}
	if verr != nil && permanentKind(verr) != driver.KindVerificationFailed {
		// The restore machinery failed (disk, ports, a transient error), not
		// the backup: keep it "taken" so a retry verifies it again.
		return driver.Result{}, verr
	}
	if verr != nil {
		meta.State, meta.Error = backupFailed, verr.Error()
		_ = writeMeta(dir, meta)
		if r.req.History != nil {
			rec.Details["error"] = verr.Error()
			_ = r.req.History.RecordBackup(context.WithoutCancel(ctx), rec)
		}
		return driver.Result{}, verr
	}
	meta.State = backupVerified
	if err := writeMeta(dir, meta); err != nil {
		return driver.Result{}, fmt.Errorf("update backup marker: %w", err)
	}
	rec.Verified = true
	for k, v := range report {
		rec.Details[k] = v
	}
	details := map[string]any{
		"path": dir, "method": env.methodN, "requested_method": method, "bytes": bytes,
		"taken_at": meta.TakenAt.Format(time.RFC3339), "keep_backups": keep,
	}
	for k, v := range report {
		details[k] = v
	}
	if r.req.History != nil {
		if err := r.req.History.RecordBackup(ctx, rec); err != nil {
			return driver.Result{}, fmt.Errorf("record backup in the history store: %w", err)
		}
	} else {
		details["history"] = "no history store configured; backup not recorded"
	}
	pruned, err := pruneBackups(backupRoot(t), int(keep))
	if err != nil {
		details["prune_error"] = err.Error()
	}
	details["pruned"] = pruned
	return driver.Result{
		Summary: fmt.Sprintf("%s backup of %s (%s) restored and verified: %v tables with matching row counts, %v indexes checked with amcheck",
			env.methodN, meta.Database, bytesHuman(bytes), report["tables_compared"], report["indexes_checked"]),
		Details: details,
	}, nil
}

// backupEnv locates binaries of the server's major version and the OS user
// to run them as.
func (r *run) backupEnv(ctx context.Context, method string) (backupEnv, error) {
	t := r.target()
	serverMajor := r.srv.VersionNum / 10000
	binDir, err := pgbin.FindBinDir(t.BinDir, serverMajor)
	if err != nil {
		return backupEnv{}, driver.Permanent(driver.KindMisconfigured, fmt.Errorf("target %s: %w", t.Name, err))
	}
	major, err := pgbin.MajorVersion(ctx, binDir)
	if err != nil {
		return backupEnv{}, driver.Permanent(driver.KindMisconfigured, err)
	}
	user, err := pgbin.ResolveUser(t.OSUser)
	if err != nil {
		return backupEnv{}, driver.Permanent(driver.KindMisconfigured, err)
	}
	env := backupEnv{binDir: binDir, major: major, user: user, methodN: methodBasebackup}
	if method == methodDump {
		env.methodN = methodDump
		if major < serverMajor {
			return backupEnv{}, driver.Permanentf(driver.KindMisconfigured,
				"target %s: pg_dump in %s is version %d, older than the server (%d); set bin_dir", t.Name, binDir, major, serverMajor)
		}
	} else if major != serverMajor {
		return backupEnv{}, driver.Permanentf(driver.KindMisconfigured,
			"target %s: a physical backup of a version %d server must be restored with version %d binaries, found %d in %s; set bin_dir",
			t.Name, serverMajor, serverMajor, major, binDir)
	}
	srcEnv, err := pgbin.LibpqEnv(t.DSN, "")
	if err != nil {
		return backupEnv{}, driver.Permanentf(driver.KindMisconfigured, "target %s: connection string: %v", t.Name, err)
	}
	env.srcEnv = srcEnv
	env.source = pgbin.Runner{BinDir: binDir, User: user, Env: append(srcEnv, "PGAPPNAME="+r.appName())}
	env.local = pgbin.Runner{BinDir: binDir, User: user}
	return env, nil
}

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
	if _, err := os.Stat(filepath.Join(env.binDir, "pg_verifybackup")); err == nil {
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

// restoreAndVerify restores the backup in dir into a scratch instance,
// verifies it, and always tears the instance down. It returns the report or
// a VerificationFailed error (or another error when the restore machinery
// itself failed).
func (r *run) restoreAndVerify(ctx context.Context, env backupEnv, dir string, meta backupMeta) (map[string]any, error) {
	t := r.target()
	scratch, err := filepath.Abs(scratchRoot(t))
	if err != nil {
		return nil, driver.Permanent(driver.KindMisconfigured, fmt.Errorf("scratch_dir: %w", err))
	}
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return nil, driver.Permanent(driver.KindMisconfigured, fmt.Errorf("scratch_dir: %w", err))
	}
	work, err := os.MkdirTemp(scratch, scratchPrefix)
	if err != nil {
		return nil, driver.Permanent(driver.KindMisconfigured, fmt.Errorf("scratch_dir: %w", err))
	}
	// The socket lives in a short private directory: socket paths are
	// limited to about 100 bytes, and only root and the server's account
	// may connect to the copy (it holds production data).
	sock, err := os.MkdirTemp("", "thm-")
	if err != nil {
		_ = os.RemoveAll(work)
		return nil, err
	}
	inst := &pgbin.Instance{Runner: env.local, DataDir: filepath.Join(work, "data"), LogFile: filepath.Join(work, "server.log"), Host: sock}
	defer func() {
		cctx, cancel := r.cleanupContext(ctx)
		defer cancel()
		_, _ = stopScratchServer(cctx, &env.local, inst.DataDir)
		_ = os.RemoveAll(work)
		_ = os.RemoveAll(sock)
	}()
	if err := os.WriteFile(filepath.Join(work, scratchMarker), []byte(`{"backup":`+strconv.Quote(dir)+`}`), 0o640); err != nil {
		return nil, err
	}
	stopTouch := touchEvery(markerTouch, filepath.Join(work, scratchMarker))
	defer stopTouch()
	for _, d := range []string{work, sock} {
		if err := env.user.MkdirOwned(d, 0o700); err != nil {
			return nil, err
		}
	}
	conf := scratchConf{SocketDir: sock, MaxPrepared: meta.MaxPrepared}
	superuser, db := meta.Superuser, meta.Database
	r.progress(55, "preparing the scratch instance", backupCheckpoint{Path: dir, Stage: backupTaken})
	if meta.Method == methodDump {
		if err := pgbin.Initdb(ctx, env.local, inst.DataDir, pgbin.InitdbOptions{Superuser: "postgres"}); err != nil {
			return nil, fmt.Errorf("initdb for restore: %w", err)
		}
		superuser = "postgres"
	} else {
		if err := copyTree(ctx, filepath.Join(dir, basebackupSubdir), inst.DataDir, env.user); err != nil {
			return nil, fmt.Errorf("copy backup into scratch: %w", err)
		}
		removeRecoveryFiles(inst.DataDir)
		if err := relinkTablespaces(ctx, inst.DataDir, work, env.user); err != nil {
			return nil, err
		}
	}
	r.progress(60, "starting the scratch instance", nil)
	restoreStart := time.Now()
	port, err := startScratch(ctx, inst, conf, env.user)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, driver.Permanent(driver.KindVerificationFailed, fmt.Errorf("restored instance does not start: %w", err))
	}
	localDSN := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable application_name=%s",
		quoteKV(sock), port, quoteKV(superuser), quoteKV(db), ApplicationName)
	if meta.Method == methodDump {
		if err := r.restoreDump(ctx, env, dir, meta, sock, port); err != nil {
			return nil, err
		}
	}
	restoreMs := time.Since(restoreStart).Milliseconds()
	r.progress(75, "verifying the restored copy", nil)
	report, err := verifyRestored(ctx, r, localDSN, meta)
	if err != nil {
		if b, rerr := os.ReadFile(inst.LogFile); rerr == nil && ctx.Err() == nil && !strings.Contains(err.Error(), "does not verify") {
			err = fmt.Errorf("%w; scratch server log: %s", err, pgbin.Tail(string(b), 8))
		}
		return nil, err
	}
	report["restore_ms"] = restoreMs
	return report, nil
}

func writeOwned(path, content string, owner *pgbin.User) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	if owner != nil {
		return os.Chown(path, int(owner.UID), int(owner.GID))
	}
	return nil
}

var encodingName = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// restoreDump creates the database (the source's encoding, C locale) in the
// scratch instance and pg_restores the dump into it, stopping at the first
// error. Owners and privileges are not restored: the roles do not exist.
func (r *run) restoreDump(ctx context.Context, env backupEnv, dir string, meta backupMeta, sock string, port int) error {
	adminDSN := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", quoteKV(sock), port)
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return fmt.Errorf("connect to the scratch instance: %w", err)
	}
	defer conn.Close(context.Background())
	enc := meta.Encoding
	if !encodingName.MatchString(enc) {
		enc = "UTF8"
	}
	create := "CREATE DATABASE " + pgx.Identifier{meta.Database}.Sanitize() + " TEMPLATE template0 ENCODING '" + enc + "' LC_COLLATE 'C' LC_CTYPE 'C'"
	if meta.Database != "postgres" {
		if _, err := conn.Exec(ctx, create); err != nil {
			return fmt.Errorf("create database in the scratch instance: %w", err)
		}
	}
	runner := env.local
	runner.Env = []string{"PGHOST=" + sock, "PGPORT=" + strconv.Itoa(port), "PGUSER=postgres", "PGDATABASE=" + meta.Database}
	err = r.during(65, "pg_restore running", backupCheckpoint{Path: dir, Stage: backupTaken}, func() error {
		_, err := runner.Run(ctx, "pg_restore", "--no-owner", "--no-acl", "--exit-on-error", "--no-password",
			"--dbname="+meta.Database, filepath.Join(dir, dumpFile))
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return driver.Permanent(driver.KindVerificationFailed, fmt.Errorf("pg_restore: %w", err))
	}
	return nil
}

// permanentKind returns the kind of a *driver.PermanentError, or "".
func permanentKind(err error) string {
	var pe *driver.PermanentError
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return ""
}

// quoteKV quotes a keyword/value connection-string value.
func quoteKV(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}

// verifyRestored checks the restored database: amcheck (bt_index_check with
// heapallindexed on every btree index, verify_heapam on every table where
// available) and row counts against the source's.
func verifyRestored(ctx context.Context, r *run, dsn string, meta backupMeta) (map[string]any, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, driver.Permanent(driver.KindVerificationFailed, fmt.Errorf("connect to the restored database %s: %w", meta.Database, err))
	}
	defer conn.Close(context.Background())
	report := map[string]any{}
	checked, problems, err := amcheckRestored(ctx, conn)
	if err != nil {
		return nil, err
	}
	if checked.Unavailable != "" {
		report["amcheck"] = checked.Unavailable
	}
	report["indexes_checked"] = checked.Indexes
	report["tables_heap_checked"] = checked.Tables
	r.progress(90, "comparing row counts", nil)

	names := make([]string, 0, len(meta.SourceCounts))
	for k := range meta.SourceCounts {
		names = append(names, k)
	}
	sort.Strings(names)
	var differences []string
	compared := 0
	for _, name := range names {
		want := meta.SourceCounts[name]
		schema, table, _ := strings.Cut(name, ".")
		var got int64
		err := conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, table}.Sanitize()).Scan(&got)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			problems = append(problems, fmt.Sprintf("table %s: missing from the restore (%s)", name, pgMessage(err)))
			continue
		}
		compared++
		diff := got - want
		if diff < 0 {
			diff = -diff
		}
		if diff == 0 {
			continue
		}
		msg := fmt.Sprintf("table %s: %d rows restored, %d in the source", name, got, want)
		switch {
		case !meta.ExactCounts:
			differences = append(differences, msg+" (changed during the backup; standby source)")
		case diff <= meta.Tolerance[name]:
			differences = append(differences, msg+fmt.Sprintf(" (within the %d rows changed during the backup)", meta.Tolerance[name]))
		default:
			problems = append(problems, msg)
		}
	}
	report["tables_compared"] = compared
	report["exact_counts"] = meta.ExactCounts
	if len(differences) > 0 {
		report["count_differences_explained"] = differences
	}
	if len(problems) > 0 {
		report["problems"] = problems
		sort.Strings(problems)
		return nil, driver.Permanentf(driver.KindVerificationFailed, "backup of %s does not verify: %d problem(s): %s",
			meta.Database, len(problems), joinNames(problems, 5))
	}
	return report, nil
}
