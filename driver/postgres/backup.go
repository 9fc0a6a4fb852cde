package postgres

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
)

// Backup methods.
const (
	methodNative     = "native"
	methodBasebackup = "pg_basebackup"
	methodDump       = "pg_dump"
	basebackupSubdir = "data"
	dumpFile         = "dump.pgdump"
	countSettleDelay = 1500 * time.Millisecond
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
	methodN string       // method actually used
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
	if r.dry() {
		return r.planBackupVerification(ctx, env, method, keep)
	}

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
	bytes := DirSize(dir)
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
		if hasVerifyBackup(env, filepath.Join(dir, basebackupSubdir)) {
			rec.Details["pg_verifybackup"] = "passed (backup_manifest)"
		}
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
	if v, ok := rec.Details["pg_verifybackup"]; ok {
		details["pg_verifybackup"] = v
	}
	summary := fmt.Sprintf("%s backup of %s (%s) restored and verified: %v tables with matching row counts, %v indexes checked with amcheck",
		env.methodN, meta.Database, bytesHuman(bytes), report["tables_compared"], report["indexes_checked"])
	var walErr error
	if t.WALArchiveDir != "" {
		r.progress(95, "checking the WAL chain in "+t.WALArchiveDir, nil)
		wc, err := r.walChain(ctx, t)
		if err != nil {
			return driver.Result{}, err
		}
		details["wal_chain"], rec.Details["wal_chain"] = wc, wc
		if wc.Status != "" {
			summary += "; " + wc.summary()
		}
		if wc.Status == walChainFailure {
			walErr = driver.Permanent(driver.KindVerificationFailed, fmt.Errorf("backup %s verified, but %s", dir, wc.summary()))
		}
	}
	if r.req.History != nil {
		if err := r.req.History.RecordBackup(ctx, rec); err != nil {
			return driver.Result{}, fmt.Errorf("record backup in the history store: %w", err)
		}
	} else {
		details["history"] = "no history store configured; backup not recorded"
	}
	if walErr != nil {
		return driver.Result{}, walErr
	}
	pruned, err := pruneBackups(backupRoot(t), int(keep))
	if err != nil {
		details["prune_error"] = err.Error()
	}
	details["pruned"] = pruned
	return driver.Result{Summary: summary, Details: details}, nil
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
	srcEnv, password, err := pgbin.LibpqConn(t.DSN, "")
	if err != nil {
		return backupEnv{}, driver.Permanentf(driver.KindMisconfigured, "target %s: connection string: %v", t.Name, err)
	}
	env.source = pgbin.Runner{BinDir: binDir, User: user, Env: append(srcEnv, "PGAPPNAME="+r.appName()), Password: password}
	env.local = pgbin.Runner{BinDir: binDir, User: user}
	return env, nil
}

// permanentKind returns the kind of a *driver.PermanentError, or "".
func permanentKind(err error) string {
	var pe *driver.PermanentError
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return ""
}
