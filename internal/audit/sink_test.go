package audit_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/internal/audit"
	"github.com/themis-maintenance/themis/internal/history"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

var pg struct {
	once sync.Once
	c    *pgcluster.Cluster
	err  error
	n    int
	mu   sync.Mutex
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if pg.c != nil {
		_ = pg.c.Stop()
	}
	os.Exit(code)
}

// replicas returns, per kind of sink, a function making the sink of one more
// API replica that shares the log with the others of the same call.
func replicas(t *testing.T) map[string]func(t *testing.T) audit.Sink {
	t.Helper()
	dir := t.TempDir()
	out := map[string]func(t *testing.T) audit.Sink{
		"file": func(t *testing.T) audit.Sink {
			l, err := audit.Open(filepath.Join(dir, "audit.log"))
			if err != nil {
				t.Fatal(err)
			}
			return l
		},
		"store-sqlite": func(t *testing.T) audit.Sink {
			s, err := history.Open(filepath.Join(dir, "history.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			l, err := audit.OpenStore(s)
			if err != nil {
				t.Fatal(err)
			}
			return l
		},
	}
	if testing.Short() {
		return out
	}
	pg.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		pg.c, pg.err = pgcluster.StartCluster(ctx, pgcluster.Options{})
	})
	if pg.err != nil {
		t.Fatalf("pgcluster: %v", pg.err)
	}
	pg.mu.Lock()
	pg.n++
	db := fmt.Sprintf("audit_%d", pg.n)
	pg.mu.Unlock()
	pg.c.Exec(t, "postgres", "CREATE DATABASE "+db)
	out["store-postgres"] = func(t *testing.T) audit.Sink {
		s, err := history.OpenPostgres(t.Context(), pg.c.DSN(db))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		l, err := audit.OpenStore(s)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	return out
}

// TestSinkContract holds every sink to the rules GET /audit relies on, with
// two replicas writing at once.
func TestSinkContract(t *testing.T) {
	for name, open := range replicas(t) {
		t.Run(name, func(t *testing.T) {
			a, b := open(t), open(t)
			ctx := t.Context()
			if p, err := a.Read(ctx, time.Time{}, 10); err != nil || p.Events == nil || len(p.Events) != 0 {
				t.Fatalf("empty log: %+v, %v", p, err)
			}
			t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600))
			for i := 0; i < 10; i++ {
				sink := a
				if i%2 == 1 {
					sink = b
				}
				if err := sink.Record(ctx, ev(i, t0.Add(time.Duration(i)*time.Minute))); err != nil {
					t.Fatal(err)
				}
			}
			for _, sink := range []audit.Sink{a, b} {
				p, err := sink.Read(ctx, time.Time{}, 0)
				if err != nil || len(p.Events) != 10 || p.Truncated || p.Events[0].RequestID != "r0" || p.Events[9].RequestID != "r9" {
					t.Fatalf("all: %+v, %v", p, err)
				}
				if p.Events[0].Time.Location() != time.UTC || !p.Events[0].Time.Equal(t0) {
					t.Errorf("time %v, want %v in UTC", p.Events[0].Time, t0)
				}
			}
			p, _ := b.Read(ctx, t0.Add(5*time.Minute), 0)
			if len(p.Events) != 5 || p.Events[0].RequestID != "r5" {
				t.Fatalf("since: %+v", p.Events)
			}
			p, _ = a.Read(ctx, t0.Add(2*time.Minute), 3)
			if len(p.Events) != 3 || !p.Truncated || p.Events[0].RequestID != "r7" || p.Events[2].RequestID != "r9" {
				t.Fatalf("limit: %+v", p)
			}
			// Sanitised and clipped as Marshal does; a zero time is now.
			e := ev(99, time.Time{})
			e.Detail = "dial postgres://app:s3cr3t@db/x"
			before := time.Now().Add(-time.Second)
			if err := a.Record(ctx, e); err != nil {
				t.Fatal(err)
			}
			p, _ = b.Read(ctx, before, 0)
			if len(p.Events) != 1 || p.Events[0].Detail != "dial postgres://app:***@db/x" {
				t.Fatalf("sanitised: %+v", p.Events)
			}
			// Concurrent writers lose nothing.
			var wg sync.WaitGroup
			for g, sink := range []audit.Sink{a, b, a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 20; i++ {
						if err := sink.Record(ctx, ev(1000*g+i, time.Time{})); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			p, err := a.Read(ctx, time.Time{}, 0)
			if err != nil || len(p.Events) != 91 || p.Skipped != 0 {
				t.Fatalf("after concurrent writes: %d events, %d skipped, %v", len(p.Events), p.Skipped, err)
			}
		})
	}
	if _, err := audit.OpenStore(nil); err == nil {
		t.Error("OpenStore(nil) accepted")
	}
}

// TestTornLastLine: an append that stopped part way (a short write, a full
// disk, a crash) must not swallow the next event.
func TestTornLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 1; i <= 2; i++ {
		if err := l.Record(ctx, ev(i, at.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	tear := func() {
		t.Helper()
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, st.Size()-25); err != nil { // mid-line
			t.Fatal(err)
		}
	}
	tear() // event 2 is torn
	if err := l.Record(ctx, ev(3, at.Add(3*time.Second))); err != nil {
		t.Fatal(err)
	}
	p, err := audit.Read(path, time.Time{}, 0)
	if err != nil || len(p.Events) != 2 || p.Events[0].RequestID != "r1" || p.Events[1].RequestID != "r3" || p.Skipped != 1 {
		t.Fatalf("after a torn line: %+v, %v; want r1, r3 and one skipped line", p, err)
	}

	// Opening the log (a restarted process) closes a torn line at once.
	tear() // event 3 is torn
	if _, err := audit.Open(path); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if !bytes.HasSuffix(raw, []byte("\n")) {
		t.Fatalf("Open left the torn line open: %q", raw[len(raw)-20:])
	}
	l2, _ := audit.Open(path)
	if err := l2.Record(ctx, ev(4, at.Add(4*time.Second))); err != nil {
		t.Fatal(err)
	}
	p, err = audit.Read(path, time.Time{}, 0)
	if err != nil || len(p.Events) != 2 || p.Events[1].RequestID != "r4" || p.Skipped != 2 {
		t.Fatalf("after a torn line and a reopen: %+v, %v", p, err)
	}

	// A whole event whose newline was lost is kept, not merged into the next.
	st, _ := os.Stat(path)
	if err := os.Truncate(path, st.Size()-1); err != nil {
		t.Fatal(err)
	}
	if err := l2.Record(ctx, ev(5, at.Add(5*time.Second))); err != nil {
		t.Fatal(err)
	}
	p, _ = audit.Read(path, time.Time{}, 0)
	if len(p.Events) != 3 || p.Events[1].RequestID != "r4" || p.Events[2].RequestID != "r5" {
		t.Fatalf("lost newline: %+v", p)
	}
}
