package pgbench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs every pair once on a tiny database (4 tables of the
// minimum size): both sides must run and verify, and ratios must be finite.
// No timing is asserted.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs PostgreSQL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var log bytes.Buffer
	rep, err := Run(ctx, Config{Tables: 4, SizeBytes: 8 << 20, Jobs: 2, Runs: 1, GenConns: 2, SharedBuffers: "32MB",
		QuietWait: -1, Retries: -1, Log: &log})
	if err != nil {
		t.Fatalf("Run: %v\nlog:\n%s", err, log.String())
	}
	if rep.Dataset.Tables != 4 || rep.Dataset.DatabaseBytes < 8<<20 || rep.Dataset.SmallestIndex < 1<<20 {
		t.Errorf("dataset %+v", rep.Dataset)
	}
	// One row per pair.
	want := map[string]int{PairMVCC: 1, PairFullCheck: 1, PairConsistency: 1, PairRebuild: 1}
	got := map[string]int{}
	for _, row := range rep.Rows {
		got[row.Pair]++
		if len(row.PerRun) != 1 {
			t.Errorf("%s: %d runs", row.Pair, len(row.PerRun))
			continue
		}
		rr := row.PerRun[0]
		if rr.Ours <= 0 || rr.Native <= 0 || rr.OursCheck == "" || rr.NativeCheck == "" {
			t.Errorf("%s: a side did not run: %+v", row.Pair, rr)
		}
		if math.IsInf(row.Ratio, 0) || math.IsNaN(row.Ratio) || row.Ratio <= 0 {
			t.Errorf("%s: ratio %v", row.Pair, row.Ratio)
		}
		// Both sides ran statements, so both have server time, and the
		// sessions cannot have been busy for longer than the wall time.
		for side, idle := range map[string]*float64{"ours": rr.OursIdlePct, "native": rr.NativeIdlePct} {
			if idle == nil || *idle < -1 || *idle >= 100 {
				t.Errorf("%s %s: sessions idle %% = %v", row.Pair, side, pct1Text(idle))
			}
		}
	}
	for p, n := range want {
		if got[p] != n {
			t.Errorf("%s: %d rows, want %d", p, got[p], n)
		}
	}
	var text, js bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"RATIO", "SESSIONS IDLE %", "fsync=off", "vacuumdb -j 2 --analyze", "pg_amcheck -j 2 --heapallindexed --parent-check", "reindexdb --concurrently -j 2"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text report lacks %q:\n%s", s, text.String())
		}
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Rows) != len(rep.Rows) {
		t.Errorf("JSON round trip: %v", err)
	}
	t.Logf("\n%s", text.String())
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1GB": 1 << 30, "1GiB": 1 << 30, "512MB": 512 << 20, "1.5G": 3 << 29, "64kB": 64 << 10, "1000": 1000, " 2 TB ": 2 << 40,
	} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "GB", "1XB", "-1GB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

func TestHelpers(t *testing.T) {
	if got := abridge("vacuumdb", []string{"-j", "2", "-t", "a", "-t", "b", "-t", "c"}); got != "vacuumdb -j 2 -t a … (3 × -t)" {
		t.Errorf("abridge = %q", got)
	}
	if got := abridge("pg_amcheck", []string{"-i", "*", "bench"}); got != "pg_amcheck -i '*' bench" {
		t.Errorf("abridge = %q", got)
	}
	if n, ok := amcheckRelations("  0/288 relations (0%)\r288/288 relations (100%), 5533/5533 pages (100%)\n"); !ok || n != 288 {
		t.Errorf("amcheckRelations = %d, %v", n, ok)
	}
	rows := plan(200, 20_000_000, 40_000)
	distinct := map[int64]bool{}
	for _, r := range rows {
		if r < 40_000 {
			t.Fatalf("plan: %d rows under the floor", r)
		}
		distinct[r] = true
	}
	if len(distinct) < 2 {
		t.Errorf("plan: all tables the same size")
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
}
