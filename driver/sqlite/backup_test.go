package sqlite

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/internal/history"
)

// backupFiles lists the files in dir, sorted.
func backupFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func TestBackupVerificationTakesVerifiesRecordsAndPrunes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t)
	var results []driver.Result
	for i := 0; i < 4; i++ {
		// Each backup sees a different source, so the counts differ.
		db := rawDB(t, h.target.DSN)
		if _, err := db.Exec(`INSERT INTO events (kind, subject, payload, created_at) VALUES ('backup', 'x', 'y', 0)`); err != nil {
			t.Fatal(err)
		}
		db.Close()
		results = append(results, h.run(domain.TaskBackupVerification, nil))
	}
	files := backupFiles(t, h.target.BackupDir)
	if len(files) != 3 {
		t.Fatalf("backup dir holds %v, want the 3 newest backups", files)
	}
	for _, f := range files {
		if !strings.HasPrefix(f, "demo-") || !strings.HasSuffix(f, ".db") {
			t.Errorf("unexpected file %s", f)
		}
	}
	if pruned := results[3].Details["pruned"].([]string); len(pruned) != 1 || pruned[0] != filepath.Base(results[0].Details["path"].(string)) {
		t.Errorf("4th run pruned %v, want the first backup", pruned)
	}

	// The newest backup is recorded as verified, with its real size.
	newest := results[3].Details["path"].(string)
	rec, ok, err := h.hist.LatestBackup(ctx, "demo")
	if err != nil || !ok {
		t.Fatalf("LatestBackup = %v, %v", ok, err)
	}
	if rec.Path != newest || !rec.Verified || rec.Bytes == 0 || rec.Method != "native" {
		t.Errorf("latest record = %+v, want %s verified", rec, newest)
	}
	all, err := h.hist.(*history.Store).Backups(ctx, "demo", false, 0)
	if err != nil || len(all) != 4 {
		t.Errorf("records = %d, %v; want 4", len(all), err)
	}

	// The copy is a real, complete database: the rows at backup time.
	cp := rawDB(t, newest)
	var events int64
	if err := cp.QueryRow(`SELECT count(*) FROM events`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events != demoEvents/2+4 {
		t.Errorf("events in the backup = %d, want %d", events, demoEvents/2+4)
	}
	if src := results[3].Details["source_rows"].(map[string]int64); src["events"] != events {
		t.Errorf("source_rows = %v", src)
	}
	var check string
	if err := cp.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Errorf("backup integrity_check = %q, %v", check, err)
	}

	// keep_backups=1 prunes down to the newest.
	h.run(domain.TaskBackupVerification, domain.TaskOptions{"keep_backups": int64(1)})
	if files := backupFiles(t, h.target.BackupDir); len(files) != 1 {
		t.Errorf("keep_backups=1 leaves %v", files)
	}
}

func TestBackupVerificationFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t)
	// A first attempt wrote the copy and heartbeated a checkpoint, then the
	// worker died. Here the checkpoint records source counts the copy does
	// not have: the retried attempt verifies the copy and must fail.
	if err := os.MkdirAll(h.target.BackupDir, 0o750); err != nil {
		t.Fatal(err)
	}
	partial := filepath.Join(h.target.BackupDir, "demo-20260101T000000.000Z.db.partial")
	db := rawDB(t, h.target.DSN)
	if _, err := db.Exec(`VACUUM INTO ?`, partial); err != nil {
		t.Fatal(err)
	}
	db.Close()
	cp, _ := json.Marshal(backupCheckpoint{
		Phase: "copied", Partial: partial, Final: strings.TrimSuffix(partial, partialSuffix),
		TakenAtMs:  1767225600000,
		SourceRows: map[string]int64{"customers": demoCustomers, "orders": 1, "order_items": 8563, "events": demoEvents / 2},
	})
	hb := &heartbeats{}
	req := h.req(domain.TaskBackupVerification, nil, hb)
	req.Checkpoint = cp
	_, err := h.d.Run(ctx, req)
	if permanentKind(err) != driver.KindVerificationFailed {
		t.Fatalf("err = %v, want VerificationFailed", err)
	}
	if !strings.Contains(err.Error(), "orders") {
		t.Errorf("error does not name the table: %v", err)
	}
	for _, n := range hb.notes() {
		if strings.HasPrefix(n, "VACUUM INTO") {
			t.Errorf("retried attempt took a new copy instead of verifying the first: %q", n)
		}
	}
	if fileExists(partial) || len(backupFiles(t, h.target.BackupDir)) != 0 {
		t.Errorf("failed copy left behind: %v", backupFiles(t, h.target.BackupDir))
	}
	if _, ok, _ := h.hist.LatestBackup(ctx, "demo"); ok {
		t.Error("a failed backup is the latest verified one")
	}
	all, err := h.hist.(*history.Store).Backups(ctx, "demo", false, 0)
	if err != nil || len(all) != 1 || all[0].Verified {
		t.Errorf("records = %+v, %v; want one unverified", all, err)
	}
}

func TestBackupVerificationResumesVerification(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	if err := os.MkdirAll(h.target.BackupDir, 0o750); err != nil {
		t.Fatal(err)
	}
	partial := filepath.Join(h.target.BackupDir, "demo-20260101T000000.000Z.db.partial")
	db := rawDB(t, h.target.DSN)
	if _, err := db.Exec(`VACUUM INTO ?`, partial); err != nil {
		t.Fatal(err)
	}
	src := map[string]int64{}
	for _, tbl := range []string{"customers", "orders", "order_items", "events"} {
		n, err := countRows(context.Background(), db, tbl)
		if err != nil {
			t.Fatal(err)
		}
		src[tbl] = n
	}
	db.Close()
	cp, _ := json.Marshal(backupCheckpoint{
		Phase: "copied", Partial: partial, Final: strings.TrimSuffix(partial, partialSuffix),
		TakenAtMs: 1767225600000, SourceRows: src, IntegrityOK: true,
		Verify: loopCheckpoint[int64]{Done: []string{"customers"}, Results: map[string]int64{"customers": src["customers"]}},
	})
	hb := &heartbeats{}
	req := h.req(domain.TaskBackupVerification, nil, hb)
	req.Checkpoint = cp
	res, err := h.d.Run(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Details["resumed"] != true || !fileExists(strings.TrimSuffix(partial, partialSuffix)) {
		t.Errorf("resume: %q %v", res.Summary, res.Details)
	}
	notes := strings.Join(hb.notes(), "\n")
	if strings.Contains(notes, "verify rows of customers") || strings.Contains(notes, "integrity_check of the copy") {
		t.Errorf("work recorded in the checkpoint was redone:\n%s", notes)
	}
	if !strings.Contains(notes, "verify rows of orders") {
		t.Errorf("remaining tables not verified:\n%s", notes)
	}
}

func TestBackupVerificationRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, err := h.d.Run(context.Background(), h.req(domain.TaskBackupVerification, domain.TaskOptions{"method": "pg_dump"}, nil))
	if permanentKind(err) != driver.KindInvalidInput {
		t.Errorf("method pg_dump: err = %v, want InvalidInput", err)
	}
	h.target.BackupDir = ""
	_, err = h.d.Run(context.Background(), h.req(domain.TaskBackupVerification, nil, nil))
	if permanentKind(err) != driver.KindMisconfigured {
		t.Errorf("no backup_dir: err = %v, want Misconfigured", err)
	}
}

func TestBackupVerificationRollbackJournalMode(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	db := rawDB(t, h.target.DSN)
	if _, err := db.Exec(`PRAGMA journal_mode = DELETE`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	res := h.run(domain.TaskBackupVerification, nil)
	if res.Details["verified"] != true {
		t.Errorf("rollback-journal backup: %q", res.Summary)
	}
}
