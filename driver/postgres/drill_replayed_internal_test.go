package postgres

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseRecoveryLog(t *testing.T) {
	// Two attempts: the first stopped because no commit after the target
	// was archived, the second replayed the whole archive.
	log := `2026-12-02 07:25:45.1 UTC [10] LOG:  starting point-in-time recovery to 2026-12-02 07:25:44+00
2026-12-02 07:25:45.2 UTC [10] LOG:  restored log file "000000010000000000000004" from archive
2026-12-02 07:25:45.2 UTC [10] LOG:  redo starts at 0/4000028
2026-12-02 07:25:45.3 UTC [10] LOG:  restored log file "000000010000000000000005" from archive
2026-12-02 07:25:45.4 UTC [10] FATAL:  recovery ended before configured recovery target was reached
2026-12-02 07:25:46.2 UTC [11] LOG:  restored log file "000000010000000000000005" from archive
2026-12-02 07:25:46.2 UTC [11] LOG:  redo starts at 0/5000060
2026-12-02 07:25:46.3 UTC [11] LOG:  restored log file "000000010000000000000006" from archive
2026-12-02 07:25:46.4 UTC [11] LOG:  recovery stopping before commit of transaction 750, time 2026-12-02 07:25:42.892476+00
2026-12-02 07:25:46.4 UTC [11] LOG:  redo done at 0/6000F10 system usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.10 s
2026-12-02 07:25:46.4 UTC [11] LOG:  last completed transaction was at log time 2026-12-02 07:25:42.891445+00
2026-12-02 07:25:46.5 UTC [11] LOG:  restored log file "000000010000000000000007" from archive
`
	rl := parseRecoveryLog(log)
	if rl.RedoStart != 0x4000028 || rl.RedoDone != 0x6000F10 || rl.LastXact != "2026-12-02 07:25:42.891445+00" ||
		rl.Stopped != "recovery stopping before commit of transaction 750, time 2026-12-02 07:25:42.892476+00" || len(rl.Restored) != 5 {
		t.Fatalf("%+v", rl)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "backup_label.old"), []byte("START WAL LOCATION: 0/4000028 (file 000000010000000000000004)\nSTART TIMELINE: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The segment read ahead (7) is not the end: the one holding the redo end is.
	rng, n := rl.walRange(dir, 16<<20)
	if rng != "000000010000000000000004-000000010000000000000006" || n != 0x6000F10-0x4000028 {
		t.Errorf("walRange = %q, %d", rng, n)
	}
	// Replay from pg_wal only: named from the LSNs on the label's timeline.
	rng, _ = parseRecoveryLog("LOG:  redo starts at 0/2000028\nLOG:  redo done at 0/2000100 system usage\n").walRange(dir, 16<<20)
	if rng != "000000010000000000000002" {
		t.Errorf("walRange without restored segments = %q", rng)
	}
	if rng, n := parseRecoveryLog("LOG:  redo is not required\n").walRange(dir, 16<<20); rng != "" || n != 0 {
		t.Errorf("walRange without redo = %q, %d", rng, n)
	}
}

func TestRestoreCommand(t *testing.T) {
	if got, want := restoreCommand(`/srv/wal's 100%`), `cp '/srv/wal'\''s 100%%'/%f %p`; got != want {
		t.Errorf("restoreCommand = %s, want %s", got, want)
	}
}
