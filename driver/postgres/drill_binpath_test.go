package postgres_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
)

// TestDrillCleanupRunsOnlyConfiguredBinaries: a drill marker whose bin_dir
// names a directory of impostor pg_ctl and postgres programs (what a
// tampered marker could say) does not get them run: the stopped instance is
// started again by DrillVerify and stopped by DrillCleanup with the
// configured binaries, and the impostors leave no trace.
func TestDrillCleanupRunsOnlyConfiguredBinaries(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Exec(t, db, `CREATE TABLE public.kept AS SELECT g AS id FROM generate_series(1, 50) g`)
	e := newEnv(t, shared, db)
	e.target.OSUser = shared.OSUser
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const id = "binpath"
	s, err := e.d.DrillRestore(ctx, e.target, nil, driver.DrillRestoreRequest{DrillID: id}, nil)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	defer e.d.DrillCleanup(context.Background(), e.target, id)

	evil := t.TempDir()
	witness := filepath.Join(evil, "ran")
	for _, name := range []string{"pg_ctl", "postgres"} {
		script := "#!/bin/sh\necho \"$0 $*\" >> " + witness + "\nexit 0\n"
		if err := os.WriteFile(filepath.Join(evil, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(evil, 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(s.Dir, "themis-scratch.json")
	b, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	tampered := regexp.MustCompile(`"bin_dir": "[^"]*"`).ReplaceAll(b, []byte(`"bin_dir": "`+evil+`"`))
	if !strings.Contains(string(tampered), evil) {
		t.Fatalf("marker has no bin_dir: %s", b)
	}
	if err := os.WriteFile(marker, tampered, 0o640); err != nil {
		t.Fatal(err)
	}
	// Stop the instance behind the driver's back: DrillVerify must start it
	// again, with the configured pg_ctl.
	u, err := pgbin.ResolveUser(shared.OSUser)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := (pgbin.Runner{BinDir: shared.BinDir, User: u}).Run(ctx, "pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-m", "fast", "-w", "stop"); err != nil {
		t.Fatalf("stop the scratch instance: %v %s", err, out)
	}
	v, err := e.d.DrillVerify(ctx, e.target, s)
	if err != nil || v.RowCounts["public.kept"] != 50 {
		t.Fatalf("verify after the instance stopped: %+v %v", v, err)
	}
	rep, err := e.d.DrillCleanup(ctx, e.target, id)
	if err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	if !strings.Contains(strings.Join(rep.Removed, "\n"), "pg_ctl stop") {
		t.Errorf("cleanup %q: want the instance stopped with pg_ctl", rep.Removed)
	}
	assertNothingLeft(t, s.Dir, s.Port)
	if out, err := os.ReadFile(witness); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a binary named in the marker was run: %s", out)
	}
}
