package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
)

// Scratch instances: throwaway servers started from a physical copy (or an
// initdb) under the target's scratch directory, shared by backup
// verification and the DR drill. They hold a copy of production data, so
// they listen on no TCP address at all: only on a Unix socket in a
// directory private to the server's OS account (mode 0700), which only
// that account and root can enter. Their configuration replaces the
// source's entirely: it may name production paths (data_directory,
// hba_file), archive or replication commands, listen addresses, or more
// memory than this machine has.

// scratchConf is the configuration of a scratch instance.
type scratchConf struct {
	Port int
	// SocketDir holds the Unix socket, the server's only listener. It must
	// be private to the server's OS account: pg_hba.conf trusts the socket.
	SocketDir string
	// MaxPrepared is the source's max_prepared_transactions (a restored copy
	// holding prepared transactions needs at least as many).
	MaxPrepared int
	// ClusterName shows in the server's process titles.
	ClusterName string
	// Recover starts the copy in archive recovery (recovery.signal) from
	// the WAL in its pg_wal only: no restore from an archive, no upstream.
	// Archive recovery ends with a promotion to a new timeline.
	Recover bool
	// StopAtConsistency ends that recovery (and promotes) as soon as the
	// copy is consistent, that is at the end of its base backup
	// (recovery_target = 'immediate'), instead of replaying every WAL
	// record present in pg_wal: a copy of a standby then holds what the
	// standby had replayed, not the WAL it had only received.
	StopAtConsistency bool
	// RestoreCommand, when set, lets that recovery read archived WAL
	// (backup_restore: a copy from the target's WAL archive, which the
	// scratch instance only reads: archive_mode stays off), following
	// timelines to the newest (recovery_target_timeline = latest).
	RestoreCommand string
	// RecoveryTargetTime, when set, ends the recovery (and promotes) before
	// the first transaction committed after it (recovery_target_time,
	// inclusive). Without it and without StopAtConsistency, recovery
	// replays every WAL record it can read.
	RecoveryTargetTime string
}

// settings are the postgresql.conf settings of c: no TCP listener, no
// archiving, no WAL senders, no upstream, no hot standby, no fsync.
func (c scratchConf) settings() map[string]string {
	s := map[string]string{
		"port": strconv.Itoa(c.Port), "listen_addresses": "", "unix_socket_directories": c.SocketDir,
		"max_connections": "20", "shared_buffers": "128MB", "max_wal_senders": "0",
		"wal_level": "replica", "archive_mode": "off", "hot_standby": "off", "fsync": "off",
		"logging_collector": "off", "log_destination": "stderr", "ssl": "off", "jit": "off",
		"max_prepared_transactions": strconv.Itoa(max(c.MaxPrepared, 0)),
	}
	if c.ClusterName != "" {
		s["cluster_name"] = c.ClusterName
	}
	if c.Recover {
		// No upstream; no archive unless RestoreCommand reads one.
		s["primary_conninfo"] = ""
		s["primary_slot_name"] = ""
		s["restore_command"] = "false"
		s["recovery_target_timeline"] = "current"
		if c.RestoreCommand != "" {
			s["restore_command"] = c.RestoreCommand
			s["recovery_target_timeline"] = "latest"
		}
		switch {
		case c.StopAtConsistency:
			s["recovery_target"] = "immediate"
			s["recovery_target_action"] = "promote"
		case c.RecoveryTargetTime != "":
			s["recovery_target_time"] = c.RecoveryTargetTime
			s["recovery_target_inclusive"] = "on"
			s["recovery_target_action"] = "promote"
		}
	}
	return s
}

// hba is the pg_hba.conf of c: trust on the Unix socket only, whose
// directory is private to the server's account (so only that account and
// root connect). No host entries (the server listens on no TCP address
// either) and no replication entries.
func (c scratchConf) hba() string {
	return "local all all trust\n"
}

// writeScratchConfig replaces the configuration files of the data directory
// data with c's, and leaves recovery.signal exactly when c asks for
// archive recovery (never standby.signal).
func writeScratchConfig(data string, c scratchConf, owner *pgbin.User) error {
	conf := filepath.Join(data, "postgresql.conf")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		return err
	}
	if err := pgbin.WriteSettings(conf, c.settings(), owner); err != nil {
		return err
	}
	files := []struct{ name, content string }{
		{"pg_hba.conf", c.hba()}, {"pg_ident.conf", ""}, {"postgresql.auto.conf", ""},
	}
	for _, f := range files {
		if err := writeOwned(filepath.Join(data, f.name), f.content, owner); err != nil {
			return err
		}
	}
	_ = os.Remove(filepath.Join(data, "standby.signal"))
	signal := filepath.Join(data, "recovery.signal")
	if c.Recover {
		return writeOwned(signal, "", owner)
	}
	if err := os.Remove(signal); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// startScratch configures and starts inst on a free port number (the number
// names the socket file), trying another when the one picked was taken in
// the meantime. inst.Host must be the socket directory. It returns the
// port.
func startScratch(ctx context.Context, inst *pgbin.Instance, c scratchConf, owner *pgbin.User) (int, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := pgbin.FreePort()
		if err != nil {
			return 0, err
		}
		c.Port, inst.Port = port, port
		if err := writeScratchConfig(inst.DataDir, c, owner); err != nil {
			return 0, err
		}
		if err := inst.Start(ctx); err != nil {
			lastErr = err
			if ctx.Err() == nil && (strings.Contains(err.Error(), "could not bind") || strings.Contains(err.Error(), "already in use")) {
				continue
			}
			return 0, err
		}
		return port, nil
	}
	return 0, lastErr
}

// recoveryTargetMissed is the server's message when archive recovery ran out
// of WAL before its recovery target. With recovery_target = 'immediate' it
// means the copy's WAL ends exactly where the copy becomes consistent (the
// target is checked before the next record, and there is none): recovery
// to the end of the WAL then gives the same state.
const recoveryTargetMissed = "recovery ended before configured recovery target was reached"

// logSays reports whether the server log at path contains msg.
func logSays(path, msg string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), msg)
}

// removeRecoveryFiles removes what would make a copied data directory a
// standby, or think a server still runs in it.
func removeRecoveryFiles(data string) {
	for _, f := range []string{"standby.signal", "recovery.signal", "postmaster.pid", "postmaster.opts"} {
		_ = os.Remove(filepath.Join(data, f))
	}
}

// relinkTablespaces points the tablespace links of a copied data directory
// at copies inside work instead of the backup's tablespace directories.
func relinkTablespaces(ctx context.Context, data, work string, owner *pgbin.User) error {
	links, _ := os.ReadDir(filepath.Join(data, "pg_tblspc"))
	for _, l := range links {
		p := filepath.Join(data, "pg_tblspc", l.Name())
		target, err := os.Readlink(p)
		if err != nil {
			continue
		}
		dst := filepath.Join(work, "tblspc", l.Name())
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		if err := copyTree(ctx, target, dst, owner); err != nil {
			return fmt.Errorf("copy tablespace %s: %w", l.Name(), err)
		}
		if err := os.Remove(p); err != nil {
			return err
		}
		if err := os.Symlink(dst, p); err != nil {
			return err
		}
		_ = owner.Chown(filepath.Join(work, "tblspc"))
	}
	return nil
}

// tablespaceMappings returns pg_basebackup --tablespace-mapping arguments
// that put every tablespace of the source q reads into dest/<oid>, so a
// plain-format copy never writes to the source's own tablespace paths (on
// the same machine those are production's). In-place tablespaces (relative
// locations, inside the data directory) need no mapping.
func tablespaceMappings(ctx context.Context, q func(context.Context, string, ...any) (pgx.Rows, error), dest string) ([]string, error) {
	rows, err := q(ctx, `SELECT oid::int8, pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global')`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var mappings []string
	for rows.Next() {
		var oid int64
		var loc string
		if err := rows.Scan(&oid, &loc); err != nil {
			return nil, err
		}
		if loc == "" || !filepath.IsAbs(loc) {
			continue
		}
		target := filepath.Join(dest, strconv.FormatInt(oid, 10))
		mappings = append(mappings, "--tablespace-mapping="+strings.ReplaceAll(loc, "=", `\=`)+"="+strings.ReplaceAll(target, "=", `\=`))
	}
	return mappings, rows.Err()
}

// Processes of a scratch data directory.

// serverBinaries are the programs whose processes clean-up may stop: a
// server (postmaster and its children), pg_ctl, and pg_basebackup with its
// forked WAL streamer.
var serverBinaries = map[string]bool{"postgres": true, "postmaster": true, "pg_ctl": true, "pg_basebackup": true}

// dirForms returns dir cleaned and absolute, and the same with symlinks
// resolved when that differs (/proc shows resolved paths).
func dirForms(dir string) []string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = filepath.Clean(dir)
	}
	forms := []string{abs}
	if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
		forms = append(forms, real)
	}
	return forms
}

func within(path string, forms []string) bool {
	for _, f := range forms {
		if path == f || strings.HasPrefix(path, f+"/") {
			return true
		}
	}
	return false
}

// procUses reports whether process pid is a PostgreSQL server binary
// working on dataDir: its executable is one of serverBinaries and its
// working directory lies in dataDir (a server chdirs into its data
// directory) or one of its arguments names dataDir (pg_ctl -D,
// pg_basebackup -D). Any doubt (an unreadable /proc entry) is "no".
func procUses(pid int, forms []string) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return false
	}
	if !serverBinaries[filepath.Base(strings.TrimSuffix(exe, " (deleted)"))] {
		return false
	}
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil && within(cwd, forms) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	for _, arg := range strings.Split(string(b), "\x00") {
		arg = strings.TrimPrefix(strings.TrimPrefix(arg, "--pgdata="), "-D")
		if arg != "" && within(filepath.Clean(arg), forms) {
			return true
		}
	}
	return false
}

// processesUsing lists the server-binary processes working on dataDir.
func processesUsing(dataDir string) []int {
	forms := dirForms(dataDir)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if procUses(pid, forms) {
			out = append(out, pid)
		}
	}
	return out
}

// postmasterPID returns the pid in dataDir's postmaster.pid, or 0.
func postmasterPID(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// waitGone waits up to d for every pid to exit; it reports whether they did.
func waitGone(ctx context.Context, pids []int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		left := false
		for _, p := range pids {
			if alive(p) {
				left = true
				break
			}
		}
		if !left {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopScratchServer stops everything running on the scratch data directory
// dataDir and reports what it did. With a runner it first asks pg_ctl for
// an immediate shutdown. Then the postmaster named in postmaster.pid gets
// SIGQUIT (immediate shutdown), but only when /proc shows it is a
// PostgreSQL process working on dataDir: a stale pid file whose pid now
// belongs to something else is left alone. Last, any server-binary process
// still working on dataDir (children of a killed postmaster, an orphaned
// pg_basebackup streamer) is killed. It fails when something survives.
func stopScratchServer(ctx context.Context, runner *pgbin.Runner, dataDir string) ([]string, error) {
	var did []string
	pm := postmasterPID(dataDir)
	forms := dirForms(dataDir)
	ours := pm > 0 && procUses(pm, forms)
	if ours && runner != nil {
		inst := &pgbin.Instance{Runner: *runner, DataDir: dataDir}
		stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := inst.Stop(stopCtx, "immediate")
		cancel()
		if err == nil && waitGone(ctx, []int{pm}, 5*time.Second) {
			did = append(did, fmt.Sprintf("stopped the server (pid %d) with pg_ctl stop -m immediate", pm))
			ours = false
		}
	}
	if ours && alive(pm) && procUses(pm, forms) {
		_ = syscall.Kill(pm, syscall.SIGQUIT)
		if !waitGone(ctx, []int{pm}, 5*time.Second) {
			_ = syscall.Kill(pm, syscall.SIGKILL)
			waitGone(ctx, []int{pm}, 5*time.Second)
		}
		did = append(did, fmt.Sprintf("killed the postmaster (pid %d)", pm))
	}
	for i := 0; i < 3; i++ {
		left := processesUsing(dataDir)
		if len(left) == 0 {
			return did, nil
		}
		if i == 0 {
			// A postmaster's children exit by themselves once it is gone.
			if waitGone(ctx, left, 2*time.Second) {
				continue
			}
		}
		for _, p := range left {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		waitGone(ctx, left, 5*time.Second)
		did = append(did, fmt.Sprintf("killed %d leftover process(es) %v", len(left), left))
	}
	if left := processesUsing(dataDir); len(left) > 0 {
		return did, fmt.Errorf("processes %v still use %s", left, dataDir)
	}
	return did, nil
}

// Verification of a restored copy.

// amcheckReport is what amcheckRestored checked.
type amcheckReport struct {
	Indexes, Tables int
	// Unavailable says why amcheck could not be used ("" when it was).
	Unavailable string
}

// amcheckRestored runs amcheck in the restored database conn (the
// extension is created there, never on the source): bt_index_check with
// heapallindexed on every valid btree index, and verify_heapam on every
// table where available (14+). Damage is returned as problems; an error
// means the checks could not run (or ctx ended).
func amcheckRestored(ctx context.Context, conn *pgx.Conn) (amcheckReport, []string, error) {
	var rep amcheckReport
	var problems []string
	amcheck := ""
	if _, err := conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS amcheck`); err != nil {
		if ctx.Err() != nil {
			return rep, nil, ctx.Err()
		}
		rep.Unavailable = "not available in the restored copy: " + pgMessage(err)
		return rep, nil, nil
	}
	if err := conn.QueryRow(ctx, `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'`).Scan(&amcheck); err != nil {
		return rep, nil, fmt.Errorf("look up amcheck in the restored copy: %w", err)
	}
	type item struct {
		oid  int64
		name string
	}
	list := func(sql string) ([]item, error) {
		rows, err := conn.Query(ctx, sql)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []item
		for rows.Next() {
			var it item
			if err := rows.Scan(&it.oid, &it.name); err != nil {
				return nil, err
			}
			out = append(out, it)
		}
		return out, rows.Err()
	}
	idx, err := list(`
		SELECT c.oid::int8, n.nspname || '.' || c.relname
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_am am ON am.oid = c.relam
		WHERE am.amname = 'btree' AND i.indisvalid AND i.indisready AND c.relpersistence = 'p'
		ORDER BY c.oid`)
	if err != nil {
		return rep, nil, fmt.Errorf("list restored indexes: %w", err)
	}
	for _, it := range idx {
		if _, err := conn.Exec(ctx, "SELECT "+fn(amcheck, "bt_index_check")+"(index => $1::oid::regclass, heapallindexed => true)", it.oid); err != nil {
			if ctx.Err() != nil {
				return rep, nil, ctx.Err()
			}
			problems = append(problems, fmt.Sprintf("index %s: %s", it.name, pgMessage(err)))
		}
		rep.Indexes++
	}
	var hasHeap bool
	_ = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'verify_heapam')`).Scan(&hasHeap)
	if !hasHeap {
		return rep, problems, nil
	}
	tabs, err := list(`
		SELECT c.oid::int8, n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'm', 't') AND c.relpersistence = 'p' ORDER BY c.oid`)
	if err != nil {
		return rep, nil, fmt.Errorf("list restored tables: %w", err)
	}
	for _, it := range tabs {
		var n int64
		err := conn.QueryRow(ctx, "SELECT count(*) FROM "+fn(amcheck, "verify_heapam")+"(relation => $1::oid::regclass, check_toast => false)", it.oid).Scan(&n)
		switch {
		case err != nil && ctx.Err() != nil:
			return rep, nil, ctx.Err()
		case err != nil:
			problems = append(problems, fmt.Sprintf("table %s: %s", it.name, pgMessage(err)))
		case n > 0:
			problems = append(problems, fmt.Sprintf("table %s: verify_heapam reports %d problem(s)", it.name, n))
		}
		rep.Tables++
	}
	return rep, problems, nil
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

// quoteKV quotes a keyword/value connection-string value.
func quoteKV(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}
