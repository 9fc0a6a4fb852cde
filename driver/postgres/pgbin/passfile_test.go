package pgbin_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// TestPasswordReachesToolOnlyThroughPassfile runs psql as a role that must
// give its password, with the password in the connection string, and
// inspects the running psql: the password is in neither its argument list
// nor its environment, PGPASSFILE names a 0600 file in a 0700 directory,
// and that directory is gone once psql has exited.
func TestPasswordReachesToolOnlyThroughPassfile(t *testing.T) {
	c := pgcluster.Start(t, pgcluster.Options{})
	const password = "canary-Pw:with\\odd'chars-7f3a"
	c.CreatePasswordRole(t, "canary", password)
	u, err := pgbin.ResolveUser(c.OSUser)
	if err != nil {
		t.Fatal(err)
	}
	env, pw, err := pgbin.LibpqConn(c.DSNAs("postgres", "canary", password), "")
	if err != nil {
		t.Fatal(err)
	}
	if pw != password {
		t.Fatalf("LibpqConn password %q", pw)
	}
	for _, kv := range env {
		if strings.Contains(kv, password) {
			t.Fatalf("password in the libpq environment: %s", kv)
		}
	}
	// A DSN held in this process's environment (dsn_env) is not inherited.
	t.Setenv("THEMIS_TEST_CANARY_DSN", c.DSNAs("postgres", "canary", password))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Without the password the role is refused: the server does ask.
	noPw := pgbin.Runner{BinDir: c.BinDir, User: u, Env: append(env, "PGPASSWORD="+password)}
	if _, err := noPw.Run(ctx, "psql", "--no-password", "-Atc", "SELECT 1"); err == nil {
		t.Fatal("psql connected without a password: PGPASSWORD from Env was passed on, or the server does not ask")
	}

	r := pgbin.Runner{BinDir: c.BinDir, User: u, Env: env, Password: password}
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := r.Run(ctx, "psql", "--no-password", "-Atc", "SELECT current_user, pg_sleep(2)")
		done <- result{out, err}
	}()
	var passfile string
	seen := false
	for !seen {
		select {
		case res := <-done:
			t.Fatalf("psql ended before it was inspected: %q %v", res.out, res.err)
		case <-time.After(50 * time.Millisecond):
		}
		for _, pid := range procsOf(filepath.Join(c.BinDir, "psql")) {
			cmdline, err1 := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
			environ, err2 := os.ReadFile(filepath.Join("/proc", pid, "environ"))
			if err1 != nil || err2 != nil || !strings.Contains(string(cmdline), "pg_sleep") {
				continue
			}
			seen = true
			if strings.Contains(string(cmdline), password) || strings.Contains(string(environ), password) ||
				strings.Contains(string(environ), "THEMIS_TEST_CANARY_DSN") {
				t.Fatalf("password visible in /proc/%s", pid)
			}
			for _, kv := range strings.Split(string(environ), "\x00") {
				if v, ok := strings.CutPrefix(kv, "PGPASSFILE="); ok {
					passfile = v
				}
				if strings.HasPrefix(kv, "PGPASSWORD=") {
					t.Fatalf("PGPASSWORD in the child's environment")
				}
			}
		}
	}
	if passfile == "" {
		t.Fatal("no PGPASSFILE in the child's environment")
	}
	fi, err := os.Stat(passfile)
	if err != nil {
		t.Fatalf("passfile while psql runs: %v", err)
	}
	di, err := os.Stat(filepath.Dir(passfile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Fatalf("passfile mode %v, directory mode %v; want 0600 and 0700", fi.Mode().Perm(), di.Mode().Perm())
	}
	res := <-done
	if res.err != nil {
		t.Fatalf("psql with the passfile: %v", res.err)
	}
	if !strings.HasPrefix(res.out, "canary|") {
		t.Fatalf("psql output %q", res.out)
	}
	if _, err := os.Stat(filepath.Dir(passfile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("passfile directory left behind: %v", err)
	}
}

// procsOf lists the pids whose executable is exe.
func procsOf(exe string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		if p, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && p == exe {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestWritePassfileRefusesLineBreak(t *testing.T) {
	if _, _, err := pgbin.WritePassfile("a\nb", nil); err == nil {
		t.Fatal("a password with a newline was written")
	}
}
