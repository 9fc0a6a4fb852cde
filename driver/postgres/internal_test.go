package postgres

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

func TestRedactSQL(t *testing.T) {
	for in, want := range map[string]string{
		"ALTER ROLE app PASSWORD 'hunter2'":                      "ALTER ROLE app PASSWORD '?'",
		"SELECT * FROM t WHERE a = 'x''y' AND b = E'\\'z'":       "SELECT * FROM t WHERE a = '?' AND b = '?'",
		"DO $body$ BEGIN PERFORM 'secret'; END $body$":           "DO '?'",
		"SELECT $1, $2 FROM t":                                   "SELECT $1, $2 FROM t",
		"SELECT   1\n\tFROM   t":                                 "SELECT 1 FROM t",
		"COPY t FROM PROGRAM 'curl https://user:pw@example.com'": "COPY t FROM PROGRAM '?'",
	} {
		if got := redactSQL(in, 200); got != want {
			t.Errorf("redactSQL(%q) = %q, want %q", in, got, want)
		}
	}
	if got := redactSQL("SELECT 123456789", 6); got != "SELECT…" {
		t.Errorf("truncation: %q", got)
	}
}

func TestBlockingChains(t *testing.T) {
	// 10 blocks 20 and 30; 20 blocks 40; 50 waits on an unknown pid 99;
	// 60 and 70 wait on each other (deadlock about to be detected).
	by := map[int32]backend{
		10: {PID: 10, State: "idle in transaction"},
		20: {PID: 20, BlockedBy: []int32{10}},
		30: {PID: 30, BlockedBy: []int32{10}},
		40: {PID: 40, BlockedBy: []int32{20}},
		50: {PID: 50, BlockedBy: []int32{99}},
		60: {PID: 60, BlockedBy: []int32{70}},
		70: {PID: 70, BlockedBy: []int32{60}},
	}
	chains := blockingChains(by)
	if len(chains) != 2 {
		t.Fatalf("chains %+v", chains)
	}
	if c := chains[0]; c.Root.PID != 10 || len(c.Waiters) != 3 || c.Depth != 2 {
		t.Errorf("first chain %+v, want root 10 with waiters 20 30 40 at depth 2", c)
	}
	if c := chains[1]; c.Root.PID != 99 || c.Root.State != "not a client session" || len(c.Waiters) != 1 {
		t.Errorf("second chain %+v", c)
	}
}

// zeroWALAfter zeroes the WAL of timeline 1 in data/pg_wal from lsn
// ("X/Y", 16 MiB segments) on, removing later segments: the copy's WAL then
// ends at lsn.
func zeroWALAfter(t *testing.T, data, lsn string) {
	t.Helper()
	hi, lo, ok := strings.Cut(lsn, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("bad lsn %q", lsn)
	}
	const segSize = 16 << 20
	pos := h<<32 | l
	segno := pos / segSize
	name := fmt.Sprintf("%08X%08X%08X", 1, segno/256, segno%256)
	entries, err := os.ReadDir(filepath.Join(data, "pg_wal"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if len(e.Name()) == 24 && e.Name() > name {
			_ = os.Remove(filepath.Join(data, "pg_wal", e.Name()))
		}
	}
	f, err := os.OpenFile(filepath.Join(data, "pg_wal", name), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	off := int64(pos % segSize)
	if _, err := f.WriteAt(make([]byte, segSize-off), off); err != nil {
		t.Fatal(err)
	}
}

// A copy whose WAL ends exactly where it becomes consistent (what a base
// backup of an idle standby streams; here a primary's backup with the WAL
// after its end point zeroed) cannot reach recovery_target = 'immediate':
// startRestoredCopy recovers it to the end of its WAL instead.
func TestStartRestoredCopyWALEndsAtConsistency(t *testing.T) {
	t.Parallel()
	c := pgcluster.Start(t, pgcluster.Options{})
	c.Exec(t, "postgres", `CREATE TABLE public.kept AS SELECT generate_series(1, 42) AS a`)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	u, err := pgbin.ResolveUser("")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "themis-copy-")
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	local := pgbin.Runner{BinDir: c.BinDir, User: u}
	t.Cleanup(func() {
		_, _ = stopScratchServer(context.Background(), &local, data)
		_ = os.RemoveAll(dir)
	})
	if err := u.MkdirOwned(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	env, err := pgbin.LibpqEnv(c.DSN("postgres"), "")
	if err != nil {
		t.Fatal(err)
	}
	src := pgbin.Runner{BinDir: c.BinDir, User: u, Env: env}
	out, err := src.RunGroup(ctx, "pg_basebackup", "-D", data, "-X", "stream", "--checkpoint=fast", "--no-sync", "--verbose")
	if err != nil {
		t.Fatal(err)
	}
	m := lsnEndRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no end point in %q", out)
	}
	zeroWALAfter(t, data, m[1])
	removeRecoveryFiles(data)

	inst := &pgbin.Instance{Runner: local, DataDir: data, LogFile: filepath.Join(dir, "server.log"), Host: dir}
	r := &run{d: New()}
	port, err := r.startRestoredCopy(ctx, inst, scratchConf{SocketDir: dir}, u)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if !logSays(inst.LogFile, recoveryTargetMissed) {
		t.Fatalf("the copy reached its recovery target: this test no longer covers the fallback")
	}
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", dir, port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var inRecovery bool
	var n int
	if err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery(), (SELECT count(*) FROM public.kept)`).Scan(&inRecovery, &n); err != nil || inRecovery || n != 42 {
		t.Errorf("restored copy: in recovery %t, %d rows (%v); want promoted with 42 rows", inRecovery, n, err)
	}
}

func TestConninfoAppName(t *testing.T) {
	for in, want := range map[string]string{
		"user=postgres password=******** dbname=replication host=10.0.0.1 port=5432 fallback_application_name=walreceiver sslmode=prefer": "walreceiver",
		"user=postgres host=/run/pg port=5432 application_name=standby_b fallback_application_name=main sslmode=disable":                  "standby_b",
		"": "",
	} {
		if got := conninfoAppName(in); got != want {
			t.Errorf("conninfoAppName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLinkStandbys(t *testing.T) {
	id := primaryIdentity{SystemID: 7, Port: 5432, Hosts: map[string]bool{"10.0.0.1": true, "/run/pg": true}}
	up := func(host string, port int, slot, app string) *upstream {
		return &upstream{SystemID: 7, Host: host, Port: port, Slot: slot, AppName: app}
	}
	replicas := []replicaLag{
		{Name: "walreceiver", Source: "pg_stat_replication", WalsenderPID: 101, appName: "walreceiver", Status: replicaOK},
		{Name: "walreceiver", Source: "pg_stat_replication", WalsenderPID: 102, appName: "walreceiver", Status: replicaDegraded},
		{Name: "b", Source: "pg_stat_replication", WalsenderPID: 103, appName: "b", Status: replicaOK},
		// Holds slot s2, so it is walsender 102's standby, whichever is listed first.
		{Name: "10.0.0.2:5432", Source: "replica_dsn", upstream: up("10.0.0.1", 5432, "s2", "walreceiver"), Status: replicaOK},
		{Name: "10.0.0.3:5432", Source: "replica_dsn", upstream: up("10.0.0.1", 5432, "", "walreceiver"), Status: replicaCritical},
		{Name: "10.0.0.4:5432", Source: "replica_dsn", upstream: up("/run/pg", 5432, "", "b"), Status: replicaOK},
		// Streams from another server (a cascade, or another cluster).
		{Name: "10.0.0.5:5432", Source: "replica_dsn", upstream: up("10.0.0.9", 5432, "", "b"), Status: replicaOK},
		{Name: "10.0.0.6:5432", Source: "replica_dsn", upstream: &upstream{SystemID: 8, Host: "10.0.0.1", Port: 5432}, Status: replicaOK},
		{Name: "10.0.0.7:5432", Source: "replica_dsn", upstream: up("10.0.0.1", 5433, "", ""), Status: replicaOK},
		// Not measured.
		{Name: "replica[7]", Source: "replica_dsn", Status: replicaUnreachable},
	}
	slots := []slotInfo{{Name: "s2", Active: true, activePID: 102}, {Name: "idle", activePID: 0}}
	linkStandbys(id, replicas, slots)
	want := map[string]int32{"10.0.0.2:5432": 102, "10.0.0.3:5432": 101, "10.0.0.4:5432": 103}
	for _, l := range replicas {
		if l.Source != "replica_dsn" {
			continue
		}
		if pid := want[l.Name]; l.WalsenderPID != pid || (pid != 0) != (l.SameStandbyAs != "") {
			t.Errorf("%s linked to walsender %d (%q), want %d", l.Name, l.WalsenderPID, l.SameStandbyAs, pid)
		}
	}
	// 3 primary views (two merged with their standby's own) + 4 unlinked:
	// walsender 101 takes its standby's critical status.
	got := standbyStatuses(replicas)
	if len(got) != 7 || got[0] != replicaCritical || got[1] != replicaDegraded || got[2] != replicaOK {
		t.Errorf("standby statuses %v", got)
	}
}

// Scratch instances hold production data: no TCP listener, no host
// entries, only the socket in a private directory.
func TestScratchConfHasNoTCP(t *testing.T) {
	c := scratchConf{Port: 5999, SocketDir: "/tmp/x", Recover: true}
	if got := c.settings()["listen_addresses"]; got != "" {
		t.Errorf("listen_addresses = %q, want none", got)
	}
	for _, line := range strings.Split(strings.TrimSpace(c.hba()), "\n") {
		if !strings.HasPrefix(line, "local ") {
			t.Errorf("pg_hba.conf line %q: only local (socket) lines allowed", line)
		}
	}
}

func TestDrillSocketDir(t *testing.T) {
	short := "/srv/scratch/drill-x"
	if got := drillSocketDir(short); got != short {
		t.Errorf("short drill dir: socket in %s, want the drill dir", got)
	}
	long := "/srv/" + strings.Repeat("s", 60) + "/drill-" + strings.Repeat("x", 40)
	got := drillSocketDir(long)
	if filepath.Dir(got) != filepath.Clean(os.TempDir()) || !strings.HasPrefix(filepath.Base(got), drillSocketPrefix) || len(got) > maxSocketDir {
		t.Errorf("long drill dir: socket in %s", got)
	}
	if drillSocketDir(long) != got || drillSocketDir(long+"y") == got {
		t.Error("socket directory is not a function of the drill directory")
	}

	// privateSocketDir makes the directory 0700 and refuses one that is not
	// a directory of its own.
	dir := filepath.Join(t.TempDir(), "sock")
	if err := privateSocketDir(dir, nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket dir %v %v, want mode 0700", fi, err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := privateSocketDir(dir, nil); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("an existing socket dir of ours was left at mode %v", fi.Mode().Perm())
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if err := privateSocketDir(link, nil); err == nil {
		t.Error("a symlink was accepted as socket directory")
	}
	if os.Geteuid() == 0 {
		other := filepath.Join(t.TempDir(), "other")
		if err := os.Mkdir(other, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(other, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if err := privateSocketDir(other, nil); err == nil {
			t.Error("a directory owned by another account was accepted as socket directory")
		}
	}
}
