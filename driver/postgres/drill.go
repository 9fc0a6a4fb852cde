package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	osuser "os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
)

// The DR drill on PostgreSQL (driver.Driller).
//
// The canary table public.themis_drill_canary on the target (which must be
// the primary) is the drill's only write to production. Once the canary
// writer has stopped (the simulated failure instant), DrillRestore takes a
// fresh pg_basebackup -X stream of a standby listed in Target.ReplicaDSNs
// (the first one reachable that is in recovery and serves WAL senders), or
// of the primary when none is, into <scratch>/drill-<id>/data. The copy is
// started with a configuration of its own (archiving off, no upstream, no
// WAL senders, no TCP listener: only a Unix socket in a directory private
// to the server's OS account, see drillPaths.socketDir) in archive
// recovery that stops as soon as the copy is consistent (recovery_target =
// 'immediate') and promotes: a copy of a standby holds exactly what the
// standby had replayed when the backup was taken, so a lagging standby
// shows as a real, positive RPO. Every step is
// keyed by the drill id (a marker file in the drill's directory records
// its state, port and source), so a retried activity resumes and a
// clean-up after a crash finds what an earlier attempt made; orphan_cleanup
// removes drill directories whose marker is older than drillStaleAfter.

var _ driver.Driller = (*Driver)(nil)

// The canary table. It is created in the public schema of the target's
// database and dropped once no drill has rows in it.
const (
	canaryTable = "public.themis_drill_canary"
	canaryDDL   = `CREATE TABLE IF NOT EXISTS public.themis_drill_canary (
		drill_id text, seq bigint, written_at timestamptz, PRIMARY KEY (drill_id, seq))`
)

const (
	drillDirPrefix = driver.DrillDirPrefix
	drillKind      = "drill"
	drillRestoring = "restoring"
	drillReady     = "ready"
	// drillStaleAfter is how old a drill directory's marker must be before
	// orphan_cleanup removes it: longer than a restore (6 h), a verify
	// (2 h) and the default wait for the "complete" approval (4 h) together.
	// DrillVerify touches the marker.
	drillStaleAfter = 24 * time.Hour
	// scratchSpaceFactor is the room preflight wants in the scratch
	// directory, relative to the size of the cluster's databases (the copy,
	// plus its WAL and some growth while it recovers and is checked).
	scratchSpaceFactor = 1.5
	// maxSocketDir is the longest socket directory path used: a socket path
	// ("<dir>/.s.PGSQL.<port>.lock" included) must fit in 107 bytes.
	maxSocketDir = 107 - len("/.s.PGSQL.65535.lock")
	// drillSocketPrefix names the socket directory of a drill whose own
	// directory is too long for a socket path: <tmp>/thm-drill-<hash>.
	drillSocketPrefix = "thm-drill-"
	// canaryLockTimeout and canaryStatementTimeout bound the canary
	// statements, so a blocked canary write fails instead of silently
	// stretching the interval.
	canaryLockTimeout      = 5 * time.Second
	canaryStatementTimeout = 30 * time.Second
	// promoteTimeout bounds the wait for the scratch copy to leave recovery.
	promoteTimeout = 2 * time.Minute
)

// drillName is driver.DrillName: the same names on every engine.
func drillName(drillID string) (string, error) { return driver.DrillName(drillID) }

// drillPaths are the directories of one drill on one target.
type drillPaths struct {
	name string // drill-<sanitised id>
	root string // the target's scratch directory (absolute); "" when none is configured
	dir  string // <root>/<name>
	data string // <dir>/data
}

func (p drillPaths) marker() string { return filepath.Join(p.dir, scratchMarker) }

func drillPathsOf(t driver.Target, drillID string) (drillPaths, error) {
	name, err := drillName(drillID)
	if err != nil {
		return drillPaths{}, err
	}
	p := drillPaths{name: name}
	if t.ScratchDir == "" && t.BackupDir == "" {
		return p, nil
	}
	if p.root, err = filepath.Abs(scratchRoot(t)); err != nil {
		return drillPaths{}, driver.Permanentf(driver.KindMisconfigured, "target %s: scratch_dir: %v", t.Name, err)
	}
	p.dir = filepath.Join(p.root, name)
	p.data = filepath.Join(p.dir, basebackupSubdir)
	// Belt and braces: nothing the drill creates or removes lies outside
	// the scratch directory.
	if rel, err := filepath.Rel(p.root, p.dir); err != nil || rel == "." || !filepath.IsLocal(rel) {
		return drillPaths{}, driver.Permanentf(driver.KindInvalidInput, "drill %q: path %s escapes %s", drillID, p.dir, p.root)
	}
	return p, nil
}

func (p drillPaths) need(t driver.Target) error {
	if p.root == "" {
		return driver.Permanentf(driver.KindMisconfigured, "target %s has neither scratch_dir nor backup_dir: the drill restores into a scratch directory", t.Name)
	}
	return nil
}

// socketDir is the directory of the scratch server's socket, its only
// listener: the drill's directory when a socket path in it fits, else
// <tmp>/thm-drill-<hash of the drill's directory>. Either is private to the
// server's account (see privateSocketDir).
func (p drillPaths) socketDir() string {
	return drillSocketDir(p.dir)
}

// drillSocketDir is socketDir of the drill directory dir (absolute).
func drillSocketDir(dir string) string {
	if len(dir) <= maxSocketDir {
		return dir
	}
	sum := sha256.Sum256([]byte(dir))
	return filepath.Join(os.TempDir(), drillSocketPrefix+hex.EncodeToString(sum[:8]))
}

// removeDrillSocketDir removes the socket directory of the drill directory
// dir when it lies outside dir (a directory of its own in <tmp>).
func removeDrillSocketDir(dir string) error {
	sock := drillSocketDir(dir)
	if sock == dir {
		return nil
	}
	if err := os.RemoveAll(sock); err != nil {
		return fmt.Errorf("remove socket directory %s: %w", sock, err)
	}
	return nil
}

// privateSocketDir makes dir (creating it when missing) a directory that
// only owner (nil: this process's account) and root may enter, for a
// server socket that pg_hba.conf trusts. A directory someone else made or
// can enter is refused, not used.
func privateSocketDir(dir string, owner *pgbin.User) error {
	if len(dir) > maxSocketDir {
		return driver.Permanentf(driver.KindMisconfigured, "socket directory %s is too long for a Unix socket path", dir)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	uid := uint32(os.Geteuid())
	if owner != nil {
		uid = owner.UID
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || (st.Uid != uid && st.Uid != 0) {
		return fmt.Errorf("socket directory %s exists and is not this drill's (not a directory, or owned by someone else): refusing to use it", dir)
	}
	return owner.MkdirOwned(dir, 0o700) // mode 0700, owned by the server's account
}

// drillMeta is the drill directory's marker (themis-scratch.json).
type drillMeta struct {
	Kind        string    `json:"kind"`
	DrillID     string    `json:"drill_id"`
	Target      string    `json:"target"`
	State       string    `json:"state"`
	StartedAt   time.Time `json:"started_at"`
	ReadyAt     time.Time `json:"ready_at,omitempty"`
	Source      string    `json:"source,omitempty"`
	LSN         string    `json:"lsn,omitempty"`
	Port        int       `json:"port,omitempty"`
	SocketDir   string    `json:"socket_dir,omitempty"`
	OSUser      string    `json:"os_user,omitempty"`
	Database    string    `json:"database"`
	Superuser   string    `json:"superuser"`
	BinDir      string    `json:"bin_dir"`
	MaxPrepared int       `json:"max_prepared_transactions"`
}

func readDrillMeta(p drillPaths) (drillMeta, error) {
	var m drillMeta
	b, err := os.ReadFile(p.marker())
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, err
	}
	if m.Kind != drillKind {
		return m, fmt.Errorf("%s is not a drill marker", p.marker())
	}
	return m, nil
}

func writeDrillMeta(p drillPaths, m drillMeta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := p.marker() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, p.marker())
}

// location says how an operator reaches the scratch instance: through its
// socket directory, as the server's OS account (or root).
func (m drillMeta) location() string {
	s := fmt.Sprintf("psql -h %s -p %d -U %s -d %s", m.SocketDir, m.Port, m.Superuser, m.Database)
	if m.OSUser != "" {
		s += " (as OS user " + m.OSUser + ")"
	}
	return s
}

func (m drillMeta) scratch(p drillPaths) driver.Scratch {
	return driver.Scratch{
		DrillID: m.DrillID, Dir: p.dir, Port: m.Port,
		Location:     m.location(),
		RestoredFrom: fmt.Sprintf("pg_basebackup of %s at %s", m.Source, m.LSN),
	}
}

// osUserName is the name of account u (nil: this process's account).
func osUserName(u *pgbin.User) string {
	if u != nil {
		return u.Name
	}
	if cur, err := osuser.Current(); err == nil {
		return cur.Username
	}
	return ""
}

// drillLocks serialises the steps of one drill within this process (a
// clean-up that arrives while an abandoned restore attempt still runs waits
// for it), keyed by the drill's directory.
var drillLocks = struct {
	sync.Mutex
	m map[string]chan struct{}
}{m: map[string]chan struct{}{}}

func lockDrill(ctx context.Context, key string) (unlock func(), err error) {
	for {
		drillLocks.Lock()
		ch, busy := drillLocks.m[key]
		if !busy {
			ch = make(chan struct{})
			drillLocks.m[key] = ch
			drillLocks.Unlock()
			return func() {
				drillLocks.Lock()
				delete(drillLocks.m, key)
				drillLocks.Unlock()
				close(ch)
			}, nil
		}
		drillLocks.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// drillRun is a run of the drill against t with its server facts read.
func (d *Driver) drillRun(ctx context.Context, t driver.Target, progress driver.ProgressFunc) (*run, error) {
	pool, err := d.pool(ctx, t)
	if err != nil {
		return nil, err
	}
	r := &run{d: d, req: driver.Request{Target: t, Task: domain.TaskDisasterRecoveryDrill, Progress: progress}, pool: pool, progressFn: progress}
	if err := r.loadServer(ctx); err != nil {
		return nil, classify(ctx, err, "target %s: read server facts", t.Name)
	}
	return r, nil
}

// drillNeedsPrimary fails with Misconfigured when the target is a standby.
func (r *run) drillNeedsPrimary() error {
	if r.srv.InRecovery {
		return driver.Permanentf(driver.KindMisconfigured,
			"target %s is a standby (in recovery): a drill writes its canary on the primary; point the target's dsn at the primary and list standbys in replica_dsns",
			r.target().Name)
	}
	return nil
}

// restoreSource is where DrillRestore takes its base backup from.
type restoreSource struct {
	Role string // "standby" or "primary"
	Name string // host:port, never the DSN
	DSN  string
	Lag  string // the standby's lag when it was chosen
}

func (s restoreSource) String() string {
	out := s.Role + " " + s.Name
	if s.Lag != "" {
		out += " (" + s.Lag + ")"
	}
	return out
}

// dsnName is host:port of a connection string (never the DSN itself).
func dsnName(dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "(unparsable connection string)"
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

// walSource reads whether the server q reaches can serve pg_basebackup:
// wal_level, max_wal_senders and the REPLICATION attribute of the user.
func walSource(ctx context.Context, q queryRowFunc) (walLevel string, senders int, replication bool, err error) {
	err = q(ctx, `SELECT current_setting('wal_level'), current_setting('max_wal_senders')::int,
		       coalesce((SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user), false)`).
		Scan(&walLevel, &senders, &replication)
	return
}

func walSourceProblem(walLevel string, senders int, replication bool) string {
	switch {
	case walLevel == "minimal":
		return "wal_level is minimal"
	case senders <= 0:
		return "max_wal_senders is 0"
	case !replication:
		return "the connecting role has neither REPLICATION nor SUPERUSER"
	}
	return ""
}

// chooseSource picks the restore source: the first standby in
// ReplicaDSNs that is reachable, in recovery and able to serve
// pg_basebackup, else the primary. notes say why others were passed over.
func (r *run) chooseSource(ctx context.Context) (restoreSource, []string, error) {
	t := r.target()
	var notes []string
	for i, dsn := range t.ReplicaDSNs {
		name := dsnName(dsn)
		src, why := inspectStandby(ctx, dsn, r.d.opts.ConnectionCheckInterval)
		if why != "" {
			notes = append(notes, fmt.Sprintf("replica[%d] %s not used: %s", i, name, why))
			continue
		}
		return src, notes, nil
	}
	walLevel, senders, replication, err := walSource(ctx, r.pool.QueryRow)
	if err != nil {
		return restoreSource{}, notes, classify(ctx, err, "read the primary's WAL settings")
	}
	if why := walSourceProblem(walLevel, senders, replication); why != "" {
		standbys := "no replica_dsns configured"
		if len(notes) > 0 {
			standbys = strings.Join(notes, "; ")
		}
		return restoreSource{}, notes, driver.Permanentf(driver.KindMisconfigured,
			"target %s: no restore source: the primary cannot serve pg_basebackup (%s), and no standby can (%s)", t.Name, why, standbys)
	}
	return restoreSource{Role: "primary", Name: dsnName(t.DSN), DSN: t.DSN}, notes, nil
}

// inspectStandby connects to a configured replica; why is "" when it can be
// the restore source.
func inspectStandby(ctx context.Context, dsn string, check time.Duration) (restoreSource, string) {
	src := restoreSource{Role: "standby", Name: dsnName(dsn), DSN: dsn}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return src, "connection string does not parse"
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := connectOnce(cctx, cfg, check)
	if err != nil {
		return src, "unreachable: " + pgMessage(err)
	}
	defer conn.Close(context.Background())
	var inRecovery bool
	if err := conn.QueryRow(cctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err != nil {
		return src, "query failed: " + pgMessage(err)
	}
	if !inRecovery {
		return src, "not in recovery (promoted, or not a standby)"
	}
	walLevel, senders, replication, err := walSource(cctx, conn.QueryRow)
	if err != nil {
		return src, "query failed: " + pgMessage(err)
	}
	if why := walSourceProblem(walLevel, senders, replication); why != "" {
		return src, "cannot serve pg_basebackup: " + why
	}
	if l, err := standbyLag(cctx, conn.QueryRow); err == nil {
		switch {
		case l.ReplayPaused:
			src.Lag = "replay paused"
		case l.LagMs != nil:
			src.Lag = fmt.Sprintf("replay lag %d ms", *l.LagMs)
		}
	}
	return src, ""
}

// freeSpace returns the bytes available to unprivileged users on the file
// system of dir.
func freeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// traversable reports whether account u may reach dir (execute permission
// on dir and every parent); nil u (this process's own account) is assumed
// able to.
func traversable(u *pgbin.User, dir string) error {
	if u == nil {
		return nil
	}
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok {
			mode := fi.Mode().Perm()
			okX := mode&0o001 != 0 ||
				(st.Uid == u.UID && mode&0o100 != 0) ||
				(inGroup(u, st.Gid) && mode&0o010 != 0)
			if !okX {
				return fmt.Errorf("%s is not searchable by OS user %s", p, u.Name)
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func inGroup(u *pgbin.User, gid uint32) bool {
	if u.GID == gid {
		return true
	}
	for _, g := range u.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

// DrillPreflight implements driver.Driller: the target is reachable and a
// primary, its WAL and archiving settings are noted, a restore source is
// chosen (a standby from ReplicaDSNs when one can serve pg_basebackup,
// else the primary), the binaries match the server, and the scratch
// directory has scratchSpaceFactor × the size of the cluster's databases
// free. Read-only.
func (d *Driver) DrillPreflight(ctx context.Context, t driver.Target, h driver.History) (driver.DrillPreflight, error) {
	var out driver.DrillPreflight
	r, err := d.drillRun(ctx, t, nil)
	if err != nil {
		return out, err
	}
	if err := r.drillNeedsPrimary(); err != nil {
		return out, err
	}
	p, err := drillPathsOf(t, "preflight") // any id: only the root counts
	if err != nil {
		return out, err
	}
	if err := p.need(t); err != nil {
		return out, err
	}
	out.Healthy = true
	var notes []string
	notes = append(notes, fmt.Sprintf("primary %s (PostgreSQL %s), database %s", dsnName(t.DSN), r.srv.Version, r.srv.Database))

	var walLevel, archiveMode, archiveCommand string
	var failed int64
	var lastArchived *string
	var lastArchivedAge *float64
	err = r.pool.QueryRow(ctx, `
		SELECT current_setting('wal_level'), current_setting('archive_mode'), current_setting('archive_command'),
		       a.failed_count, a.last_archived_wal, extract(epoch FROM now() - a.last_archived_time)::float8
		FROM pg_stat_archiver a`).Scan(&walLevel, &archiveMode, &archiveCommand, &failed, &lastArchived, &lastArchivedAge)
	if err != nil {
		return out, classify(ctx, err, "read WAL and archive settings")
	}
	wal := fmt.Sprintf("wal_level %s, archive_mode %s", walLevel, archiveMode)
	switch {
	case archiveMode == "off":
		wal += " (no WAL archive: the drill restores from a fresh base backup only)"
	case archiveCommand == "" || archiveCommand == "(disabled)":
		wal += ", archive_command not set"
	case lastArchived != nil && lastArchivedAge != nil:
		wal += fmt.Sprintf(", last archived %s %.0f s ago, %d failure(s)", *lastArchived, *lastArchivedAge, failed)
	default:
		wal += fmt.Sprintf(", nothing archived yet, %d failure(s)", failed)
	}
	notes = append(notes, wal)

	src, srcNotes, err := r.chooseSource(ctx)
	if err != nil {
		return out, err
	}
	out.Source = "fresh pg_basebackup -X stream of " + src.String()
	if src.Role == "primary" && len(t.ReplicaDSNs) == 0 {
		srcNotes = append(srcNotes, "no replica_dsns configured: the primary is the restore source")
	}
	notes = append(notes, srcNotes...)

	env, err := r.backupEnv(ctx, methodBasebackup)
	if err != nil {
		return out, err
	}

	sc, err := r.scratchPreflight(ctx, env.user, "the drill")
	out.ScratchDir, out.ScratchFreeBytes, out.NeededBytes = sc.Root, sc.FreeBytes, sc.NeededBytes
	if err != nil {
		return out, err
	}
	space := sc.space()
	notes = append(notes, fmt.Sprintf(
		"plan: canary rows in %s on the primary; after the simulated failure, %s into %s/<drill>/data with PostgreSQL %d binaries in %s, "+
			"recovered to the backup's consistent point and promoted, started with archiving off, no upstream and no TCP listener "+
			"(reachable only through a Unix socket in a directory private to OS user %s); "+
			"verified with amcheck, row counts and the newest canary row; then stopped and removed",
		canaryTable, out.Source, p.root, env.major, env.binDir, osUserName(env.user)), space)
	if h != nil {
		rec, ok, err := h.LatestBackup(ctx, t.Name)
		switch {
		case err != nil:
			notes = append(notes, fmt.Sprintf("history store unavailable (%v)", err))
		case ok:
			notes = append(notes, fmt.Sprintf("newest verified backup on record: %s (%s, taken %s); the drill takes a fresh one instead",
				rec.Path, rec.Method, rec.TakenAt.UTC().Format(time.RFC3339)))
		}
	}
	out.Notes = strings.Join(notes, "; ")
	return out, nil
}

// canaryRun is a run on the target's pool without server facts (canary
// writes are frequent and need none).
func (d *Driver) canaryRun(ctx context.Context, t driver.Target, drillID string) (*run, error) {
	if drillID == "" {
		return nil, driver.Permanentf(driver.KindInvalidInput, "drill id is empty")
	}
	pool, err := d.pool(ctx, t)
	if err != nil {
		return nil, err
	}
	return &run{d: d, req: driver.Request{Target: t, Task: domain.TaskDisasterRecoveryDrill}, pool: pool}, nil
}

// classifyCanary is classify, with a read-only server (a standby) as
// Misconfigured.
func classifyCanary(ctx context.Context, t driver.Target, err error, what string) error {
	if isCode(err, pgerrcode.ReadOnlySQLTransaction) && ctx.Err() == nil {
		return driver.Permanentf(driver.KindMisconfigured, "target %s: %s: the server is read-only (a standby?); the canary is written on the primary: %v", t.Name, what, err)
	}
	return classify(ctx, err, "%s", what)
}

// CanaryWrite implements driver.Driller: it creates the canary table when
// missing and inserts row (drillID, seq) stamped at (microseconds), each
// statement in autocommit. Writing the same seq again changes nothing.
// This is the only write a drill makes to production.
func (d *Driver) CanaryWrite(ctx context.Context, t driver.Target, drillID string, seq int64, at time.Time) error {
	r, err := d.canaryRun(ctx, t, drillID)
	if err != nil {
		return err
	}
	s, err := r.session(ctx, timeouts{LockMs: canaryLockTimeout.Milliseconds(), StatementMs: canaryStatementTimeout.Milliseconds()})
	if err != nil {
		return err
	}
	defer s.release()
	if err := s.exec(ctx, canaryDDL); err != nil {
		return classifyCanary(ctx, t, err, "create the canary table")
	}
	err = s.exec(ctx, `INSERT INTO `+canaryTable+` (drill_id, seq, written_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		drillID, seq, at.Truncate(time.Microsecond))
	return classifyCanary(ctx, t, err, fmt.Sprintf("insert canary row %d", seq))
}

// CanaryCleanup implements driver.Driller: in one transaction it locks the
// canary table, deletes the drill's rows and drops the table when no other
// drill has rows left in it. A missing table is success.
func (d *Driver) CanaryCleanup(ctx context.Context, t driver.Target, drillID string) error {
	r, err := d.canaryRun(ctx, t, drillID)
	if err != nil {
		return err
	}
	s, err := r.session(ctx, timeouts{LockMs: r.d.opts.LockTimeout.Milliseconds(), StatementMs: canaryStatementTimeout.Milliseconds()})
	if err != nil {
		return err
	}
	defer s.release()
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return classify(ctx, err, "begin canary clean-up")
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, canaryTable).Scan(&exists); err != nil {
		return classify(ctx, err, "look for the canary table")
	}
	if !exists {
		return nil
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE `+canaryTable+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		if isGone(err) {
			return nil
		}
		return classifyCanary(ctx, t, err, "lock the canary table")
	}
	if _, err := tx.Exec(ctx, `DELETE FROM `+canaryTable+` WHERE drill_id = $1`, drillID); err != nil {
		return classifyCanary(ctx, t, err, "delete the drill's canary rows")
	}
	var others bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+canaryTable+`)`).Scan(&others); err != nil {
		return classify(ctx, err, "count canary rows")
	}
	if !others {
		if _, err := tx.Exec(ctx, `DROP TABLE `+canaryTable); err != nil {
			return classifyCanary(ctx, t, err, "drop the canary table")
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return classify(ctx, err, "commit canary clean-up")
	}
	return nil
}

var lsnEndRE = regexp.MustCompile(`end point: ([0-9A-Fa-f]+/[0-9A-Fa-f]+)`)

// DrillRestore implements driver.Driller. See the package comment above:
// a fresh pg_basebackup of the chosen source into the drill's directory,
// started as an isolated instance recovered to the backup's consistent
// point and promoted. A drill whose instance is already restored is
// returned as it is (started again if it had stopped); anything an
// unfinished attempt left is removed first. A failed or cancelled restore
// removes what it made.
func (d *Driver) DrillRestore(ctx context.Context, t driver.Target, h driver.History, drillID string, progress driver.ProgressFunc) (driver.Scratch, error) {
	p, err := drillPathsOf(t, drillID)
	if err != nil {
		return driver.Scratch{}, err
	}
	if err := p.need(t); err != nil {
		return driver.Scratch{}, err
	}
	unlock, err := lockDrill(ctx, p.dir)
	if err != nil {
		return driver.Scratch{}, err
	}
	defer unlock()
	r, err := d.drillRun(ctx, t, progress)
	if err != nil {
		return driver.Scratch{}, err
	}
	if err := r.drillNeedsPrimary(); err != nil {
		return driver.Scratch{}, err
	}
	env, err := r.backupEnv(ctx, methodBasebackup)
	if err != nil {
		return driver.Scratch{}, err
	}

	if m, err := readDrillMeta(p); err == nil && m.State == drillReady && m.DrillID == drillID {
		r.progress(5, "the drill's scratch instance exists; checking it", nil)
		m, err := r.ensureScratchRunning(ctx, p, m, env.user)
		if err == nil {
			r.progress(100, "scratch instance already restored: "+m.scratch(p).Location, nil)
			return m.scratch(p), nil
		}
		if ctx.Err() != nil {
			return driver.Scratch{}, ctx.Err()
		}
		r.progress(5, "the existing scratch instance does not serve ("+err.Error()+"); restoring again", nil)
	}
	if _, err := os.Lstat(p.dir); err == nil {
		if _, err := removeDrillDir(ctx, &env.local, p); err != nil {
			return driver.Scratch{}, fmt.Errorf("remove what an earlier restore attempt left: %w", err)
		}
	}

	ok := false
	defer func() {
		if !ok {
			cctx, cancel := r.cleanupContext(ctx)
			defer cancel()
			_, _ = removeDrillDir(cctx, &env.local, p)
		}
	}()
	s, err := r.restoreDrill(ctx, p, drillID, env)
	if err != nil {
		if ctx.Err() != nil {
			return driver.Scratch{}, ctx.Err()
		}
		return driver.Scratch{}, err
	}
	ok = true
	return s, nil
}

// restoreDrill does DrillRestore's work in the (absent) drill directory.
func (r *run) restoreDrill(ctx context.Context, p drillPaths, drillID string, env backupEnv) (driver.Scratch, error) {
	t := r.target()
	m := drillMeta{Kind: drillKind, DrillID: drillID, Target: t.Name, State: drillRestoring, StartedAt: time.Now().UTC(),
		Database: r.srv.Database, BinDir: env.binDir, SocketDir: p.socketDir(), OSUser: osUserName(env.user)}
	if err := r.pool.QueryRow(ctx, `SELECT (SELECT rolname FROM pg_roles WHERE oid = 10), current_setting('max_prepared_transactions')::int`).
		Scan(&m.Superuser, &m.MaxPrepared); err != nil {
		return driver.Scratch{}, classify(ctx, err, "read source settings")
	}
	r.progress(2, "choosing the restore source", nil)
	src, notes, err := r.chooseSource(ctx)
	if err != nil {
		return driver.Scratch{}, err
	}
	m.Source = src.Role + " " + src.Name

	if err := os.MkdirAll(p.root, 0o755); err != nil {
		return driver.Scratch{}, driver.Permanent(driver.KindMisconfigured, fmt.Errorf("scratch_dir: %w", err))
	}
	// Private to the server's account: the socket lives here and the copy
	// holds production data.
	if err := env.user.MkdirOwned(p.dir, 0o700); err != nil {
		return driver.Scratch{}, driver.Permanent(driver.KindMisconfigured, fmt.Errorf("scratch_dir: %w", err))
	}
	if err := privateSocketDir(m.SocketDir, env.user); err != nil {
		return driver.Scratch{}, err
	}
	if err := writeDrillMeta(p, m); err != nil {
		return driver.Scratch{}, err
	}
	stopTouch := touchEvery(markerTouch, p.marker())
	defer stopTouch()

	mappings, err := tablespaceMappings(ctx, r.pool.Query, filepath.Join(p.dir, "tblspc"))
	if err != nil {
		return driver.Scratch{}, classify(ctx, err, "list tablespaces")
	}
	if len(mappings) > 0 {
		if err := env.user.MkdirOwned(filepath.Join(p.dir, "tblspc"), 0o700); err != nil {
			return driver.Scratch{}, err
		}
	}
	srcEnv, err := pgbin.LibpqEnv(src.DSN, "")
	if err != nil {
		return driver.Scratch{}, driver.Permanentf(driver.KindMisconfigured, "target %s: connection string of the %s: %v", t.Name, src.Role, err)
	}
	runner := pgbin.Runner{BinDir: env.binDir, User: env.user, Env: append(srcEnv, "PGAPPNAME="+ApplicationName)}
	args := append([]string{"-D", p.data, "-X", "stream", "--checkpoint=fast", "--no-password", "--no-sync", "--verbose",
		"--label=themis-" + p.name}, mappings...)
	note := "pg_basebackup of " + src.String()
	if len(notes) > 0 {
		note += " (" + strings.Join(notes, "; ") + ")"
	}
	r.progress(5, note+" running", nil)
	var out string
	err = r.during(5, note+" running", nil, func() error {
		var err error
		out, err = runner.RunGroup(ctx, "pg_basebackup", args...)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return driver.Scratch{}, ctx.Err()
		}
		msg := err.Error()
		if strings.Contains(msg, "pg_hba.conf") || strings.Contains(msg, "authentication failed") ||
			strings.Contains(msg, "must be superuser or replication role") || strings.Contains(msg, "permission denied") {
			return driver.Scratch{}, driver.Permanentf(driver.KindMisconfigured, "pg_basebackup of %s: %v", src.Name, err)
		}
		return driver.Scratch{}, fmt.Errorf("pg_basebackup of %s: %w", src.Name, err)
	}
	if mm := lsnEndRE.FindStringSubmatch(out); mm != nil {
		m.LSN = mm[1]
	} else {
		m.LSN = "an unreported LSN"
	}

	r.progress(70, "starting the scratch instance (recovering to the backup's consistent point, then promoting)", nil)
	removeRecoveryFiles(p.data)
	inst := &pgbin.Instance{Runner: pgbin.Runner{BinDir: env.binDir, User: env.user}, DataDir: p.data,
		LogFile: filepath.Join(p.dir, "server.log"), Host: m.SocketDir, StartTimeout: time.Hour}
	conf := scratchConf{SocketDir: m.SocketDir, MaxPrepared: m.MaxPrepared, ClusterName: clusterName(p.name)}
	m.Port, err = r.startRestoredCopy(ctx, inst, conf, env.user)
	if err != nil {
		if ctx.Err() != nil {
			return driver.Scratch{}, ctx.Err()
		}
		return driver.Scratch{}, fmt.Errorf("the restored copy does not start: %w", err)
	}
	r.progress(90, fmt.Sprintf("waiting for the scratch instance on port %d to be promoted", m.Port), nil)
	if err := waitPromoted(ctx, m); err != nil {
		if ctx.Err() != nil {
			return driver.Scratch{}, ctx.Err()
		}
		if b, rerr := os.ReadFile(inst.LogFile); rerr == nil {
			err = fmt.Errorf("%w; scratch server log: %s", err, pgbin.Tail(string(b), 8))
		}
		return driver.Scratch{}, err
	}
	m.State, m.ReadyAt = drillReady, time.Now().UTC()
	if err := writeDrillMeta(p, m); err != nil {
		return driver.Scratch{}, err
	}
	r.progress(100, "scratch instance ready: "+m.scratch(p).Location, nil)
	return m.scratch(p), nil
}

// startRestoredCopy starts the copied data directory of inst in archive
// recovery that stops at the copy's consistent point and promotes (see
// scratchConf.StopAtConsistency), and returns the port. PostgreSQL checks
// that target before each next record, so when the copy's WAL ends exactly
// at its consistent point (a backup of an idle standby streams nothing
// beyond it) recovery fails with recoveryTargetMissed; it is then run to
// the end of the WAL, which is the same point. A copy whose WAL ends before
// consistency still fails: PostgreSQL refuses to open it.
func (r *run) startRestoredCopy(ctx context.Context, inst *pgbin.Instance, conf scratchConf, owner *pgbin.User) (int, error) {
	conf.Recover, conf.StopAtConsistency = true, true
	var port int
	start := func() error {
		return r.during(70, "scratch instance recovering", nil, func() error {
			var err error
			port, err = startScratch(ctx, inst, conf, owner)
			return err
		})
	}
	err := start()
	if err != nil && ctx.Err() == nil && logSays(inst.LogFile, recoveryTargetMissed) {
		r.progress(75, "the copy's WAL ends exactly at its consistent point; recovering to the end of its WAL instead", nil)
		conf.StopAtConsistency = false
		err = start()
	}
	return port, err
}

// clusterName is the scratch instance's cluster_name (process titles).
func clusterName(name string) string {
	s := "themis-" + name
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// scratchConnect connects to the drill's scratch instance as the source's
// bootstrap superuser, through its private socket (trust).
func scratchConnect(ctx context.Context, m drillMeta, dbname string) (*pgx.Conn, error) {
	dsn := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable application_name=%s connect_timeout=10",
		quoteKV(m.SocketDir), m.Port, quoteKV(m.Superuser), quoteKV(dbname), ApplicationName)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.BuildContextWatcherHandler = newCancelHandler
	return pgx.ConnectConfig(ctx, cfg)
}

// waitPromoted waits until the scratch instance accepts queries and is out
// of recovery.
func waitPromoted(ctx context.Context, m drillMeta) error {
	deadline := time.Now().Add(promoteTimeout)
	var last error
	for {
		conn, err := scratchConnect(ctx, m, m.Database)
		if err == nil {
			var inRecovery bool
			err = conn.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery)
			conn.Close(context.Background())
			if err == nil && !inRecovery {
				return nil
			}
			if err == nil {
				err = errors.New("still in recovery")
			}
		}
		last = err
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("scratch instance on port %d not serving as a primary after %s: %v", m.Port, promoteTimeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ensureScratchRunning checks that the restored instance of a ready drill
// serves queries, starting it again (without recovery: it was promoted)
// when it had stopped, on its old port when that is free. An instance
// whose marker names no socket directory was started by an earlier version
// listening on 127.0.0.1: it is stopped and started again on its private
// socket only. The marker is updated with the port and socket directory.
func (r *run) ensureScratchRunning(ctx context.Context, p drillPaths, m drillMeta, user *pgbin.User) (drillMeta, error) {
	inst := &pgbin.Instance{Runner: pgbin.Runner{BinDir: m.BinDir, User: user}, DataDir: p.data,
		LogFile: filepath.Join(p.dir, "server.log"), Host: m.SocketDir, Port: m.Port, StartTimeout: time.Hour}
	if m.SocketDir != "" && inst.Running(ctx) {
		if err := waitPromoted(ctx, m); err != nil {
			return m, err
		}
		return m, nil
	}
	if _, err := os.Stat(filepath.Join(p.data, "PG_VERSION")); err != nil {
		return m, fmt.Errorf("restored data directory missing: %w", err)
	}
	// A server that died leaves postmaster.pid behind; pg_ctl copes, but
	// make sure nothing of it runs.
	if _, err := stopScratchServer(ctx, nil, p.data); err != nil {
		return m, err
	}
	if m.SocketDir == "" {
		m.SocketDir = p.socketDir()
	}
	if m.OSUser == "" {
		m.OSUser = osUserName(user)
	}
	// A socket directory in <tmp> may have been cleaned away meanwhile.
	if err := privateSocketDir(m.SocketDir, user); err != nil {
		return m, err
	}
	inst.Host = m.SocketDir
	r.progress(50, "starting the stopped scratch instance again", nil)
	conf := scratchConf{SocketDir: m.SocketDir, MaxPrepared: m.MaxPrepared, ClusterName: clusterName(p.name)}
	port, err := startScratch(ctx, inst, conf, user)
	if err != nil {
		return m, err
	}
	m.Port = port
	if err := waitPromoted(ctx, m); err != nil {
		return m, err
	}
	return m, writeDrillMeta(p, m)
}

// drillRunner is a runner for the drill's binaries (from its marker, else
// the target's configuration), or nil when none can be found.
func drillRunner(t driver.Target, p drillPaths) *pgbin.Runner {
	binDir := ""
	if m, err := readDrillMeta(p); err == nil {
		binDir = m.BinDir
	}
	if binDir == "" {
		var err error
		if binDir, err = pgbin.FindBinDir(t.BinDir, 0); err != nil {
			return nil
		}
	}
	u, err := pgbin.ResolveUser(t.OSUser)
	if err != nil {
		return nil
	}
	return &pgbin.Runner{BinDir: binDir, User: u}
}

// removeDrillDir stops whatever runs on the drill's data directory and
// removes the drill's directory. It never touches anything outside it: a
// symlink in its place is removed, not followed.
func removeDrillDir(ctx context.Context, runner *pgbin.Runner, p drillPaths) ([]string, error) {
	var removed []string
	fi, err := os.Lstat(p.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	where := p.dir
	if m, err := readDrillMeta(p); err == nil && m.Port > 0 {
		where = fmt.Sprintf("postgres on port %d (%s)", m.Port, p.dir)
	}
	if fi.IsDir() {
		did, err := stopScratchServer(ctx, runner, p.data)
		for _, s := range did {
			removed = append(removed, "scratch instance "+where+": "+s)
		}
		if err != nil {
			return removed, fmt.Errorf("stop the scratch instance %s: %w", where, err)
		}
	}
	if err := os.RemoveAll(p.dir); err != nil {
		return removed, fmt.Errorf("remove %s: %w", p.dir, err)
	}
	if _, err := os.Lstat(p.dir); !errors.Is(err, os.ErrNotExist) {
		return removed, fmt.Errorf("%s still exists after removal", p.dir)
	}
	removed = append(removed, "scratch directory "+p.dir)
	if err := removeDrillSocketDir(p.dir); err != nil {
		return removed, err
	}
	return removed, nil
}

// DrillVerify implements driver.Driller. It connects to the drill's
// scratch instance (started again if it had stopped) and checks it with
// amcheck (the extension is created in the scratch instance only), counts
// the rows of every table of the target's database (unlogged tables and
// the canary table apart), reads the drill's canary rows, and times a
// SELECT 1. Damage is reported with IntegrityOK false and the problems
// listed, not as an error; so is a copy amcheck cannot check.
func (d *Driver) DrillVerify(ctx context.Context, t driver.Target, s driver.Scratch) (driver.DrillVerification, error) {
	v := driver.DrillVerification{RowCounts: map[string]int64{}}
	p, err := drillPathsOf(t, s.DrillID)
	if err != nil {
		return v, err
	}
	if p.dir == "" || (s.Dir != "" && filepath.Clean(s.Dir) != p.dir) {
		return v, driver.Permanentf(driver.KindInvalidInput, "scratch %q is not the scratch directory of drill %s on %s", s.Dir, s.DrillID, t.Name)
	}
	unlock, err := lockDrill(ctx, p.dir)
	if err != nil {
		return v, err
	}
	defer unlock()
	m, err := readDrillMeta(p)
	if err != nil || m.State != drillReady || m.DrillID != s.DrillID {
		return v, driver.Permanentf(driver.KindVerificationFailed, "drill %s: no restored instance in %s (never restored, or cleaned up)", s.DrillID, p.dir)
	}
	now := time.Now()
	_ = os.Chtimes(p.marker(), now, now)
	user, err := pgbin.ResolveUser(t.OSUser)
	if err != nil {
		return v, driver.Permanent(driver.KindMisconfigured, err)
	}
	r := &run{d: d, req: driver.Request{Target: t, Task: domain.TaskDisasterRecoveryDrill}}
	if m, err = r.ensureScratchRunning(ctx, p, m, user); err != nil {
		if ctx.Err() != nil {
			return v, ctx.Err()
		}
		return v, fmt.Errorf("scratch instance of drill %s: %w", s.DrillID, err)
	}
	conn, err := scratchConnect(ctx, m, m.Database)
	if err != nil {
		if ctx.Err() != nil {
			return v, ctx.Err()
		}
		return v, fmt.Errorf("connect to the scratch instance on port %d: %w", m.Port, err)
	}
	defer conn.Close(context.Background())

	var problems []string
	// damaged turns corruption into problems; other errors are returned.
	damaged := func(what string, err error) error {
		err = classify(ctx, err, "%s", what)
		if permanentKind(err) == driver.KindIntegrityViolation {
			problems = append(problems, err.Error())
			return nil
		}
		return err
	}

	checked, found, err := amcheckRestored(ctx, conn)
	if err != nil {
		if err := damaged("amcheck", err); err != nil {
			return v, err
		}
	}
	problems = append(problems, found...)
	if checked.Unavailable != "" {
		problems = append(problems, "integrity not checked: amcheck "+checked.Unavailable)
	}

	tables, err := countableTables(ctx, conn.Query)
	if err != nil {
		if err := damaged("list tables", err); err != nil {
			return v, err
		}
	}
	for _, tb := range tables {
		if !tb.Physical || tb.String() == canaryTable {
			continue
		}
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+tb.ident()).Scan(&n); err != nil {
			if isGone(err) {
				continue
			}
			if err := damaged("count rows of "+tb.String(), err); err != nil {
				return v, err
			}
			continue
		}
		v.RowCounts[tb.String()] = n
	}
	v.Tables = len(v.RowCounts)

	var hasCanary bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, canaryTable).Scan(&hasCanary); err != nil {
		return v, classify(ctx, err, "look for the canary table")
	}
	if hasCanary {
		var newest *time.Time
		err := conn.QueryRow(ctx, `SELECT count(*), max(written_at) FROM `+canaryTable+` WHERE drill_id = $1`, s.DrillID).Scan(&v.CanaryRows, &newest)
		if err != nil {
			if err := damaged("read canary rows", err); err != nil {
				return v, err
			}
		} else if newest != nil {
			v.NewestCanaryAt = newest.UTC()
		}
	}

	var one int
	if err := conn.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
		return v, classify(ctx, err, "SELECT 1 on the scratch instance")
	}
	v.ServingAt = time.Now()
	v.Problems = problems
	v.IntegrityOK = len(problems) == 0
	return v, nil
}

// DrillCleanup implements driver.Driller: it stops the drill's scratch
// instance (pg_ctl stop -m immediate; a postmaster that pg_ctl cannot stop
// is signalled only when /proc shows it is a PostgreSQL process working on
// the drill's data directory; leftover children and pg_basebackup processes
// likewise) and removes the drill's directory. Nothing outside the
// target's scratch directory is touched. It succeeds when nothing is left
// and lists what it removed.
func (d *Driver) DrillCleanup(ctx context.Context, t driver.Target, drillID string) (driver.DrillCleanupReport, error) {
	rep := driver.DrillCleanupReport{Removed: []string{}}
	p, err := drillPathsOf(t, drillID)
	if err != nil {
		return rep, err
	}
	if p.dir == "" {
		return rep, nil // no scratch directory: nothing can be there
	}
	unlock, err := lockDrill(ctx, p.dir)
	if err != nil {
		return rep, err
	}
	defer unlock()
	removed, err := removeDrillDir(ctx, drillRunner(t, p), p)
	rep.Removed = append(rep.Removed, removed...)
	return rep, err
}
