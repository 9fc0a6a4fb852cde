package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver/commandlog"
)

// TestCommandLogOfARealRun: every statement of a statistics_update reaches
// the command log in the history store, stamped with the job, target and
// task, each ANALYZE with its table, timings and no error.
func TestCommandLogOfARealRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	req := h.req(domain.TaskStatisticsUpdate, nil, nil)
	req.JobID = "job-log"
	before := time.Now().UnixMilli()
	_, cmds, err := h.runLogged(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var analyzed []string
	var ops []string
	for _, c := range cmds {
		ops = append(ops, c.Operation)
		if c.JobID != "job-log" || c.Target != "demo" || c.Task != string(domain.TaskStatisticsUpdate) || c.Attempt != 1 {
			t.Errorf("command not stamped: %+v", c)
		}
		if c.StartMs < before || c.EndMs < c.StartMs || c.DurationMs != c.EndMs-c.StartMs || c.Error != "" {
			t.Errorf("timing or error: %+v", c)
		}
		if c.Operation == "ANALYZE" {
			analyzed = append(analyzed, c.Object)
			if c.Statement != `ANALYZE main.`+quoteIdent(c.Object) {
				t.Errorf("statement %q for object %q", c.Statement, c.Object)
			}
		}
	}
	if strings.Join(analyzed, ",") != "customers,events,order_items,orders" {
		t.Errorf("ANALYZE logged for %v", analyzed)
	}
	// The catalog reads that decide, the maintenance and the reads after.
	joined := strings.Join(ops, ",")
	for _, want := range []string{"SELECT", "PRAGMA optimize"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no %s in %v", want, ops)
		}
	}
}

// TestRecordingConnection: statements sent on a recorded connection carry
// their object, operation, rows affected (changed rows, returned rows) and
// error; without a Recorder in the context nothing is recorded.
func TestRecordingConnection(t *testing.T) {
	t.Parallel()
	path := seeded(t)
	db, err := openRecorded(fileURI(path, "rw", DefaultBusyTimeout), "demo")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sink := &commandSink{}
	rec := commandlog.NewRecorder(commandlog.Meta{JobID: "j", Task: "t"}, sink)
	ctx := commandlog.WithRecorder(context.Background(), rec)

	if _, err := db.ExecContext(commandlog.WithObject(ctx, "customers"), `UPDATE customers SET name = name WHERE id <= ?`, 3); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, `SELECT id FROM customers WHERE id <= 5`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
	}
	rows.Close()
	var n int
	if err := db.QueryRowContext(ctx, `PRAGMA main.page_count`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `REINDEX main."no such index"`); err == nil {
		t.Fatal("REINDEX of a missing index succeeded")
	}
	stmt, err := db.PrepareContext(ctx, `DELETE FROM events WHERE id = ?`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stmt.ExecContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	stmt.Close()
	if _, err := db.ExecContext(context.Background(), `ANALYZE`); err != nil { // no recorder: not recorded
		t.Fatal(err)
	}
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := sink.cmds
	if len(got) != 5 {
		t.Fatalf("%d commands recorded, want 5: %+v", len(got), got)
	}
	want := []struct {
		object, op string
		rows       int64
		failed     bool
	}{
		{"customers", "UPDATE", 3, false},
		{"", "SELECT", 5, false},
		{"", "PRAGMA page_count", 1, false},
		{"", "REINDEX", 0, true},
		{"", "DELETE", 1, false},
	}
	for i, w := range want {
		c := got[i]
		if c.Object != w.object || c.Operation != w.op || c.RowsAffected != w.rows || (c.Error != "") != w.failed || c.Target != "demo" {
			t.Errorf("command %d = %+v, want %+v", i, c, w)
		}
	}
}

type commandSink struct{ cmds []commandlog.Command }

func (s *commandSink) RecordCommands(_ context.Context, cmds []commandlog.Command) error {
	s.cmds = append(s.cmds, cmds...)
	return nil
}

func TestSQLOperation(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`PRAGMA wal_checkpoint(TRUNCATE)`:   "PRAGMA wal_checkpoint",
		`PRAGMA main.quick_check("t")`:      "PRAGMA quick_check",
		`PRAGMA journal_mode = WAL`:         "PRAGMA journal_mode",
		`pragma optimize`:                   "PRAGMA optimize",
		"  analyze main.\"t\"":              "ANALYZE",
		`VACUUM INTO ?`:                     "VACUUM",
		`CREATE INDEX i ON t (x)`:           "CREATE INDEX",
		"-- why\nREINDEX main.\"i\"":        "REINDEX",
		``:                                  "UNKNOWN",
		`SELECT count(*) FROM sqlite_stat1`: "SELECT",
	} {
		if got := sqlOperation(in); got != want {
			t.Errorf("sqlOperation(%q) = %q, want %q", in, got, want)
		}
	}
}
