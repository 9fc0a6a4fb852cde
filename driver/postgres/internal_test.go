package postgres

import (
	"testing"
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
