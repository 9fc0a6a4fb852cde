package postgres

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
)

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
