package sqlite

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/domain"
)

func TestReindexResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	done := []string{"idx_customers_country", "idx_events_kind_created", "idx_orders_customer"}
	cp, _ := json.Marshal(map[string]any{"done": done})
	hb := &heartbeats{}
	req := h.req(domain.TaskIndexRebuild, nil, hb)
	req.Checkpoint = cp
	res, err := h.d.Run(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, domain.TaskIndexRebuild, res)

	var reindexed []string
	for _, p := range hb.all() {
		if name, ok := strings.CutPrefix(p.Note, "reindex "); ok {
			reindexed = append(reindexed, strings.Fields(name)[0])
			if p.Checkpoint == nil {
				t.Errorf("heartbeat %q without checkpoint", p.Note)
			}
		}
	}
	want := []string{"idx_events_subject", "idx_order_items_order", "idx_order_items_sku", "idx_orders_status_created", "sqlite_autoindex_customers_1"}
	if strings.Join(reindexed, ",") != strings.Join(want, ",") {
		t.Errorf("heartbeated %v, want only the indexes not in the checkpoint: %v", reindexed, want)
	}
	if res.Details["already_done"] != 3 || res.Details["rebuilt_this_attempt"] != 5 {
		t.Errorf("details = %v", res.Details)
	}
	// The final checkpoint lists every index, so a further retry does nothing.
	var last loopCheckpoint[float64]
	if err := json.Unmarshal(hb.lastCheckpoint(t), &last); err != nil {
		t.Fatal(err)
	}
	if len(last.Done) != 8 {
		t.Errorf("final checkpoint lists %d indexes, want 8: %v", len(last.Done), last.Done)
	}
	hb2 := &heartbeats{}
	req = h.req(domain.TaskIndexReorganize, nil, hb2)
	req.Checkpoint = hb.lastCheckpoint(t)
	res, err = h.d.Run(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Details["rebuilt_this_attempt"] != 0 || !strings.Contains(res.Summary, "no lighter reorganize") {
		t.Errorf("retry after completion: %q %v", res.Summary, res.Details)
	}
}

func TestReindexQuotesNamesAndHonoursThreshold(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	db := rawDB(t, h.target.DSN)
	if _, err := db.Exec(`CREATE TABLE "odd ""table""" (x TEXT); CREATE INDEX "we""ird; idx" ON "odd ""table""" (x);
		INSERT INTO "odd ""table""" SELECT 'v' || value FROM generate_series(1, 50)`); err != nil {
		// generate_series may be absent; fall back to a recursive CTE.
		if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS "odd ""table""" (x TEXT);
			CREATE INDEX IF NOT EXISTS "we""ird; idx" ON "odd ""table""" (x);
			WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 50)
			INSERT INTO "odd ""table""" SELECT 'v' || i FROM s`); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	res := h.run(domain.TaskIndexRebuild, nil)
	if !contains(res.Details["reindexed"].([]string), `we"ird; idx`) {
		t.Errorf("index with quotes not rebuilt: %v", res.Details["reindexed"])
	}
	h.run(domain.TaskConsistencyCheck, nil) // the odd table is checked too

	// With a threshold only fragmented indexes are rebuilt; after the full
	// rebuild above, none is.
	res = h.run(domain.TaskIndexRebuild, domain.TaskOptions{"high_threshold_pct": 30.0})
	if res.Details["rebuilt_this_attempt"] != 0 {
		t.Errorf("rebuilt %v indexes under the threshold", res.Details["rebuilt_this_attempt"])
	}
	// Each of the 9 indexes is left alone either as under the threshold or
	// as under the default min_size_bytes (1 MiB).
	below, small := len(res.Details["below_threshold"].(map[string]float64)), len(res.Details["below_min_size"].(map[string]int64))
	if below+small != 9 || small == 0 {
		t.Errorf("below_threshold %d + below_min_size %d indexes, want 9 with some under 1 MiB", below, small)
	}
	// min_size_bytes alone filters by size: every index is at least one
	// page, none is 1 TiB.
	res = h.run(domain.TaskIndexRebuild, domain.TaskOptions{"min_size_bytes": int64(1)})
	if res.Details["rebuilt_this_attempt"] != 9 {
		t.Errorf("min_size_bytes=1 rebuilt %v indexes, want 9", res.Details["rebuilt_this_attempt"])
	}
	res = h.run(domain.TaskIndexRebuild, domain.TaskOptions{"min_size_bytes": int64(1 << 40)})
	if res.Details["rebuilt_this_attempt"] != 0 || len(res.Details["below_min_size"].(map[string]int64)) != 9 {
		t.Errorf("min_size_bytes=1TiB: rebuilt %v, below_min_size %v", res.Details["rebuilt_this_attempt"], res.Details["below_min_size"])
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestStatisticsUpdate(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	res := h.run(domain.TaskStatisticsUpdate, nil)
	if res.Details["stat1_rows"].(int64) < 7 {
		t.Errorf("sqlite_stat1 rows = %v, want one per index at least", res.Details["stat1_rows"])
	}
	db := rawDB(t, h.target.DSN)
	var stat string
	if err := db.QueryRow(`SELECT stat FROM sqlite_stat1 WHERE idx = 'idx_orders_customer'`).Scan(&stat); err != nil {
		t.Fatalf("no statistics for idx_orders_customer: %v", err)
	}
	if !strings.HasPrefix(stat, "3427 ") {
		t.Errorf("stat = %q, want it to start with the row count 3427", stat)
	}
}

func TestMVCCCleanupCheckpointsWAL(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// Another connection writes with automatic checkpoints off and stays
	// open, so the WAL keeps the frames.
	db := rawDB(t, h.target.DSN)
	db.SetMaxOpenConns(1)
	for _, stmt := range []string{
		`PRAGMA journal_mode = WAL`, `PRAGMA wal_autocheckpoint = 0`,
		`UPDATE events SET payload = payload || ' '`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(h.target.DSN + "-wal")
	if err != nil || fi.Size() == 0 {
		t.Fatalf("no WAL to checkpoint: %v", err)
	}
	res := h.run(domain.TaskMVCCCleanup, nil)
	if res.Details["wal_frames_before"].(int64) == 0 || res.Details["wal_bytes_before"].(int64) != fi.Size() || res.Details["wal_bytes_after"] != int64(0) {
		t.Errorf("checkpoint: %q %v", res.Summary, res.Details)
	}
	if !strings.Contains(res.Summary, "analogue") {
		t.Errorf("summary does not say it is SQLite's analogue: %q", res.Summary)
	}
	if fi, _ := os.Stat(h.target.DSN + "-wal"); fi != nil && fi.Size() != 0 {
		t.Errorf("WAL still %d bytes", fi.Size())
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM events WHERE payload LIKE '% '`).Scan(&n); err != nil || n != 4000 {
		t.Errorf("checkpointed data: %d updated rows, %v", n, err)
	}

	// A database in rollback-journal mode has no WAL to checkpoint: said so.
	if _, err := db.Exec(`PRAGMA journal_mode = DELETE`); err != nil {
		t.Fatal(err)
	}
	res = h.run(domain.TaskMVCCCleanup, nil)
	if res.Details["checkpointed"] != false || !strings.Contains(res.Summary, "not WAL") {
		t.Errorf("rollback mode: %q", res.Summary)
	}
}
