package sqlite

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/commandlog"
	"github.com/themis-maintenance/themis/internal/history"
)

// runLogged runs req with a command log written to the harness's history
// store, and returns the commands recorded, oldest first.
func (h *harness) runLogged(ctx context.Context, req driver.Request) (driver.Result, []commandlog.Command, error) {
	h.t.Helper()
	var store *history.Store
	switch hist := h.hist.(type) {
	case *history.Store:
		store = hist
	case *unitHistory:
		store = hist.Store
	}
	rec := commandlog.NewRecorder(commandlog.Meta{JobID: req.JobID, Target: h.target.Name, Task: string(req.Task), Attempt: 1}, store)
	res, err := h.d.Run(commandlog.WithRecorder(ctx, rec), req)
	if ferr := rec.Flush(ctx); ferr != nil {
		h.t.Fatal(ferr)
	}
	cmds, lerr := store.ListCommands(ctx, history.CommandFilter{JobID: req.JobID, Limit: history.MaxCommandLimit})
	if lerr != nil {
		h.t.Fatal(lerr)
	}
	slices.Reverse(cmds)
	return res, cmds, err
}

// catalogReads are the operations a task runs to decide (never planned).
var catalogReads = map[string]bool{
	"SELECT": true, "PRAGMA page_size": true, "PRAGMA page_count": true, "PRAGMA freelist_count": true,
	"PRAGMA auto_vacuum": true, "PRAGMA journal_mode": true,
}

// isCatalogRead reports whether c only read the catalog: a read with no
// object (a task's maintenance statements and per-table reads name theirs).
func isCatalogRead(c commandlog.Command) bool { return c.Object == "" && catalogReads[c.Operation] }

// dbState is everything a dry run must leave as it was.
type dbState struct {
	fileHash, walHash  string
	pages, free        int64
	stat1, backupFiles string
}

func readState(t *testing.T, h *harness) dbState {
	t.Helper()
	hash := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			return "absent"
		}
		return fmt.Sprintf("%d bytes %x", len(b), sha256.Sum256(b))
	}
	var s dbState
	s.fileHash, s.walHash = hash(h.target.DSN), hash(h.target.DSN+"-wal")
	// Read-only and immutable: the read itself changes nothing either.
	db := rawDB(t, fileURI(h.target.DSN, "ro", DefaultBusyTimeout))
	db.SetMaxOpenConns(1)
	if err := db.QueryRow(`PRAGMA page_count`).Scan(&s.pages); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA freelist_count`).Scan(&s.free); err != nil {
		t.Fatal(err)
	}
	var stat1 int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'`).Scan(&stat1); err != nil {
		t.Fatal(err)
	}
	if stat1 > 0 {
		if err := db.QueryRow(`SELECT coalesce(group_concat(tbl || '/' || coalesce(idx, '') || '=' || stat, ';'), '')
			FROM (SELECT * FROM sqlite_stat1 ORDER BY tbl, idx)`).Scan(&s.stat1); err != nil {
			t.Fatal(err)
		}
	} else {
		s.stat1 = "no sqlite_stat1"
	}
	db.Close()
	entries, err := os.ReadDir(h.target.BackupDir)
	switch {
	case os.IsNotExist(err):
		s.backupFiles = "no backup dir"
	case err != nil:
		t.Fatal(err)
	default:
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		s.backupFiles = strings.Join(names, ",")
	}
	return s
}

// fragment leaves the demo database with free pages, half-empty index
// pages and write-ahead log frames (a writer that stays open, with automatic
// checkpoints off, keeps them in the log).
func fragment(t *testing.T, h *harness) {
	t.Helper()
	db := rawDB(t, h.target.DSN)
	db.SetMaxOpenConns(1)
	for _, stmt := range []string{
		`PRAGMA journal_mode = WAL`, `PRAGMA wal_autocheckpoint = 0`,
		`DELETE FROM events WHERE id % 3 <> 0`,
		`UPDATE customers SET name = name || ' '`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDryRunChangesNothingAndPlansTheRealRun: for each task a dry run
// plans, the dry run leaves the file, its WAL, page and freelist counts,
// sqlite_stat1 and the backup directory as they were and sends only
// catalog reads; the real run that follows sends exactly the statements
// planned, in order, and changes the database.
func TestDryRunChangesNothingAndPlansTheRealRun(t *testing.T) {
	t.Parallel()
	cases := []struct {
		task    domain.TaskType
		opts    domain.TaskOptions
		changed func(before, after dbState) bool
	}{
		{task: domain.TaskStatisticsUpdate, changed: func(b, a dbState) bool { return a.stat1 != b.stat1 }},
		{task: domain.TaskIndexRebuild, opts: domain.TaskOptions{"high_threshold_pct": 15.0, "min_size_bytes": int64(8192)},
			changed: func(b, a dbState) bool { return a.walHash != b.walHash }},
		{task: domain.TaskStorageCompaction, opts: domain.TaskOptions{"full": true},
			changed: func(b, a dbState) bool { return a.free == 0 && b.free > 0 && a.pages < b.pages }},
		{task: domain.TaskMVCCCleanup, changed: func(b, a dbState) bool { return a.walHash != b.walHash }},
		{task: domain.TaskConsistencyCheck},
		{task: domain.TaskFullCheckDB},
		{task: domain.TaskBackupVerification, changed: func(b, a dbState) bool { return a.backupFiles != b.backupFiles }},
	}
	for _, tc := range cases {
		t.Run(string(tc.task), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			fragment(t, h)
			before := readState(t, h)
			if before.free == 0 || before.walHash == "absent" {
				t.Fatalf("set-up: %d free pages, WAL %s", before.free, before.walHash)
			}

			req := h.req(tc.task, tc.opts, nil)
			req.DryRun, req.JobID = true, "dry-"+string(tc.task)
			dry, dryCmds, err := h.runLogged(context.Background(), req)
			if err != nil {
				t.Fatalf("dry run: %v", err)
			}
			checkResult(t, tc.task, dry)
			if !strings.HasPrefix(dry.Summary, "dry run: would ") {
				t.Errorf("dry-run summary %q", dry.Summary)
			}
			if len(dry.Plan) == 0 {
				t.Fatalf("empty plan: %q", dry.Summary)
			}
			if after := readState(t, h); after != before {
				t.Fatalf("the dry run changed the database:\nbefore %+v\nafter  %+v", before, after)
			}
			if len(dryCmds) == 0 {
				t.Error("the dry run's catalog reads were not logged")
			}
			for _, c := range dryCmds {
				if !isCatalogRead(c) {
					t.Errorf("the dry run sent %s %q (object %q)", c.Operation, c.Statement, c.Object)
				}
			}
			for _, p := range dry.Plan {
				if p.Statement == "" || p.Reason == "" {
					t.Errorf("planned statement without text or reason: %+v", p)
				}
			}

			req.DryRun, req.JobID = false, "real-"+string(tc.task)
			real, cmds, err := h.runLogged(context.Background(), req)
			if err != nil {
				t.Fatalf("real run: %v", err)
			}
			var sent []string
			for _, c := range cmds {
				if c.Error != "" {
					t.Errorf("%s failed: %s", c.Statement, c.Error)
				}
				if !isCatalogRead(c) {
					sent = append(sent, c.Object+" | "+c.Statement)
				}
			}
			var plannedStmts []string
			for _, p := range dry.Plan {
				plannedStmts = append(plannedStmts, p.Object+" | "+p.Statement)
			}
			if !slices.Equal(sent, plannedStmts) {
				t.Errorf("the real run sent\n  %s\nthe dry run planned\n  %s", strings.Join(sent, "\n  "), strings.Join(plannedStmts, "\n  "))
			}
			if tc.changed != nil && !tc.changed(before, readState(t, h)) {
				t.Errorf("the real run changed nothing: %q", real.Summary)
			}
		})
	}
}

// TestDryRunPlanReasons checks the figures behind the decisions: REINDEX
// names each index's fragmentation and size against the thresholds, and
// the indexes below them are not planned.
func TestDryRunPlanReasons(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	fragment(t, h)
	req := h.req(domain.TaskIndexRebuild, domain.TaskOptions{"high_threshold_pct": 30.0, "min_size_bytes": int64(20000)}, nil)
	req.DryRun = true
	res, err := h.d.Run(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	below := res.Details["below_threshold"].(map[string]float64)
	small := res.Details["below_min_size"].(map[string]int64)
	if len(res.Plan) == 0 || len(below) == 0 || len(small) == 0 {
		t.Fatalf("want some indexes planned and some left alone: plan %v, below %v, small %v", res.Plan, below, small)
	}
	for _, p := range res.Plan {
		if _, ok := below[p.Object]; ok {
			t.Errorf("%s planned although below the threshold", p.Object)
		}
		pct, _ := p.Figures["fragmentation_pct"].(float64)
		size, _ := p.Figures["total_bytes"].(int64)
		if pct < 30 || size < 20000 || p.Figures["high_threshold_pct"] != 30.0 || !strings.Contains(p.Reason, ">= 30 %") {
			t.Errorf("plan entry %+v: figures do not cross the thresholds", p)
		}
		if p.Statement != `REINDEX main.`+quoteIdent(p.Object) {
			t.Errorf("statement %q for %s", p.Statement, p.Object)
		}
	}

	// storage_compaction without full=true plans nothing and says so.
	req = h.req(domain.TaskStorageCompaction, nil, nil)
	req.DryRun = true
	res, err = h.d.Run(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plan) != 0 || !strings.HasPrefix(res.Summary, "dry run: would compact nothing") || res.Plan == nil {
		t.Errorf("no-op compaction: %q %v", res.Summary, res.Plan)
	}
	// A full compaction plans VACUUM with the free pages that make it worth it.
	req = h.req(domain.TaskStorageCompaction, domain.TaskOptions{"full": true}, nil)
	req.DryRun = true
	res, err = h.d.Run(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plan) != 2 || res.Plan[0].Statement != "VACUUM" || res.Plan[0].Figures["freelist_count"].(int64) == 0 ||
		res.Plan[1].Statement != "PRAGMA wal_checkpoint(TRUNCATE)" {
		t.Errorf("full compaction plan %+v", res.Plan)
	}
}

// TestDryRunOfUnplannedTasks: the driver says which tasks it plans, and a
// dry run of another is refused without running it.
func TestDryRunOfUnplannedTasks(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	if !driver.PlansDryRun(h.d, domain.TaskIndexRebuild) || driver.PlansDryRun(h.d, domain.TaskMetricsCollection) {
		t.Fatal("PlansDryRun")
	}
	for task := range tasks {
		if task.Heavy() && !h.d.PlansDryRun(task) {
			t.Errorf("heavy task %s is not planned", task)
		}
	}
	req := h.req(domain.TaskMetricsCollection, nil, nil)
	req.DryRun = true
	if _, err := h.d.Run(context.Background(), req); permanentKind(err) != driver.KindNotSupported {
		t.Fatalf("dry run of metrics_collection: %v", err)
	}
}

// TestDryRunOfOrphanCleanupRemovesNothing: orphan_cleanup removes files,
// not rows; its dry run names them and leaves them.
func TestDryRunOfOrphanCleanupRemovesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	if err := os.MkdirAll(h.target.BackupDir, 0o750); err != nil {
		t.Fatal(err)
	}
	stale := h.target.BackupDir + "/" + backupPrefix(h.target.Name) + "20200101T000000.000Z.db" + partialSuffix
	if err := os.WriteFile(stale, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := mustParseTime(t, "2020-01-01T00:00:00Z")
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	req := h.req(domain.TaskOrphanCleanup, nil, nil)
	req.DryRun = true
	res, err := h.d.Run(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !fileExists(stale) {
		t.Fatal("the dry run removed the partial backup")
	}
	if got := res.Details["would_remove"].([]string); len(got) != 1 || got[0] != stale || !strings.HasPrefix(res.Summary, "dry run: would remove 1 ") {
		t.Errorf("dry run: %q %v", res.Summary, res.Details)
	}
	res = h.run(domain.TaskOrphanCleanup, nil)
	if fileExists(stale) {
		t.Fatalf("the real run left the partial backup: %q", res.Summary)
	}
}
