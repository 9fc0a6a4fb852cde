package postgres

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/themis-maintenance/themis/driver"
)

// planBackupVerification is backup_verification's dry run: after the same
// preflight as a real run, it plans the backup's command line (pg_basebackup
// or pg_dump, with the directory a run started now would use), its check
// with pg_verifybackup, the restore and verification steps and the pruning,
// and runs none of them.
func (r *run) planBackupVerification(ctx context.Context, env backupEnv, method string, keep int64) (driver.Result, error) {
	t := r.target()
	dir := filepath.Join(backupRoot(t), time.Now().UTC().Format("20060102T150405.000Z")+"-"+env.methodN)
	var tables []countedTable
	tables, err := countableTables(ctx, r.pool.Query)
	if err != nil {
		return driver.Result{}, classify(ctx, err, "list tables")
	}
	why := fmt.Sprintf("backup_verification takes a %s backup of %s (method %s)", env.methodN, r.srv.Database, method)
	add := func(stmt, reason string, figures map[string]any) {
		r.planStatement(withPlanNote(ctx, reason, figures), stmt)
	}
	var verify []string
	if env.methodN == methodDump {
		to, err := r.timeoutOpts()
		if err != nil {
			return driver.Result{}, err
		}
		args := []string{"--format=custom", "--file=" + filepath.Join(dir, dumpFile), "--snapshot=<exported snapshot>",
			"--no-password", "--lock-wait-timeout=" + strconv.FormatInt(to.LockMs, 10)}
		add("pg_dump "+strings.Join(args, " "), why+", in the snapshot in which the source rows are counted",
			map[string]any{"tables_counted": len(tables)})
		verify = append(verify, "initdb and pg_restore into a scratch instance under "+scratchRoot(t))
	} else {
		mappings, err := tablespaceMappings(ctx, r.pool.Query, filepath.Join(dir, "tblspc"))
		if err != nil {
			return driver.Result{}, classify(ctx, err, "list tablespaces")
		}
		data := filepath.Join(dir, basebackupSubdir)
		args := append([]string{"-D", data, "-X", "stream", "--checkpoint=fast", "--no-password",
			"--label=themis-" + safeName(r.req.JobID)}, mappings...)
		add("pg_basebackup "+strings.Join(args, " "), why, map[string]any{"tablespaces_mapped": len(mappings) / 2})
		add("pg_verifybackup "+data, "checks the backup against its manifest (when pg_verifybackup is installed)", nil)
		verify = append(verify, "copy the backup into a scratch instance under "+scratchRoot(t)+" and start it on a private socket")
	}
	verify = append(verify,
		"bt_index_check(heapallindexed => true) on every btree index and verify_heapam on every table of the restore",
		fmt.Sprintf("compare the row counts of %d tables with the source's", len(tables)))
	for _, v := range verify {
		add(v, "verification of the restored backup", nil)
	}
	if t.WALArchiveDir != "" {
		add("check the WAL chain in "+t.WALArchiveDir, "the target archives WAL", nil)
	}
	add(fmt.Sprintf("prune %s to the newest %d verified backups", backupRoot(t), keep), "keep_backups", map[string]any{"keep_backups": keep})
	return driver.Result{
		Summary: fmt.Sprintf("dry run: would take a %s backup into %s, restore and verify it (%d tables counted)", env.methodN, dir, len(tables)),
		Details: map[string]any{"method": env.methodN, "requested_method": method, "path": dir, "keep_backups": keep, "tables": len(tables)},
	}, nil
}
