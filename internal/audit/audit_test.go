package audit_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/internal/audit"
)

func ev(i int, at time.Time) audit.Event {
	return audit.Event{Time: at, RequestID: fmt.Sprintf("r%d", i), Principal: "ops", Action: "schedule.create",
		Resource: fmt.Sprintf("schedule/s%d", i), Outcome: audit.OutcomeSuccess, Status: 201}
}

func TestRecordAndRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "audit.log")
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("file %v %v", st, err)
	}
	if st, _ := os.Stat(filepath.Dir(path)); st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", st.Mode())
	}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600))
	for i := 0; i < 10; i++ {
		if err := l.Record(t.Context(), ev(i, t0.Add(time.Duration(i)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 10 || !strings.HasPrefix(lines[0], `{"time":"2024-12-31T23:00:00Z","request_id":"r0","principal":"ops","action":"schedule.create","resource":"schedule/s0","outcome":"success","status":201,"detail":""}`) {
		t.Fatalf("lines %q", lines[0])
	}
	p, err := audit.Read(path, time.Time{}, 0)
	if err != nil || len(p.Events) != 10 || p.Truncated {
		t.Fatalf("all: %d %v %v", len(p.Events), p.Truncated, err)
	}
	p, _ = audit.Read(path, t0.Add(5*time.Minute), 0)
	if len(p.Events) != 5 || p.Events[0].RequestID != "r5" {
		t.Fatalf("since: %+v", p.Events)
	}
	p, _ = l.Read(t.Context(), t0.Add(2*time.Minute), 3)
	if len(p.Events) != 3 || !p.Truncated || p.Events[0].RequestID != "r7" || p.Events[2].RequestID != "r9" {
		t.Fatalf("limit: %+v", p)
	}
	// The selection on a slice follows the same rules.
	all, _ := audit.Read(path, time.Time{}, 0)
	s := audit.Select(all.Events, t0.Add(2*time.Minute), 3)
	if len(s.Events) != 3 || !s.Truncated || s.Events[0].RequestID != "r7" {
		t.Fatalf("select: %+v", s)
	}
}

func TestReadSkipsTornAndForeignLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	line, _ := audit.Marshal(ev(1, time.Unix(100, 0)))
	var buf bytes.Buffer
	buf.Write(line)
	buf.WriteString("not json\n\n{\"time\":\"2025-01-01T00:00:00Z\"}\n")
	buf.WriteString(`{"action":"x"}` + "\n")
	buf.WriteString(strings.Repeat("x", 2<<20) + "\n")
	line2, _ := audit.Marshal(ev(2, time.Unix(200, 0)))
	buf.Write(line2)
	buf.WriteString(`{"time":"2025-01-01T00:00:00Z","action":"schedule.del`) // torn
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := audit.Read(path, time.Time{}, 0)
	if err != nil || len(p.Events) != 2 || p.Skipped != 5 {
		t.Fatalf("%d events, %d skipped, %v", len(p.Events), p.Skipped, err)
	}
	p, err = audit.Read(filepath.Join(t.TempDir(), "missing.log"), time.Time{}, 10)
	if err != nil || p.Events == nil || len(p.Events) != 0 {
		t.Fatalf("missing: %+v %v", p, err)
	}
}

func TestConcurrentRecordsStayWholeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				e := ev(g*100+i, time.Time{})
				e.Detail = strings.Repeat("d", 5000)
				if err := l.Record(t.Context(), e); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	p, err := audit.Read(path, time.Time{}, 0)
	if err != nil || len(p.Events) != 200 || p.Skipped != 0 {
		t.Fatalf("%d events, %d skipped, %v", len(p.Events), p.Skipped, err)
	}
}

func TestRotationAndPermissions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("not narrowed: %v", st.Mode())
	}
	if err := l.Record(t.Context(), ev(1, time.Time{})); err != nil {
		t.Fatal(err)
	}
	// Rotated away: the next event creates the file again.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(t.Context(), ev(2, time.Time{})); err != nil {
		t.Fatal(err)
	}
	p, _ := audit.Read(path, time.Time{}, 0)
	if len(p.Events) != 1 || p.Events[0].RequestID != "r2" || p.Events[0].Time.IsZero() {
		t.Fatalf("%+v", p.Events)
	}
}

func TestRecordFailsWhenUnwritable(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.Open(filepath.Join(dir, "sub", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	// Replace the directory by a file: the log cannot be reopened.
	if err := os.RemoveAll(filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(t.Context(), ev(1, time.Time{})); err == nil {
		t.Fatal("recorded into nowhere")
	}
	if _, err := audit.Open(""); err == nil {
		t.Fatal("empty path accepted")
	}
}

func TestSanitizeAndClip(t *testing.T) {
	for in, want := range map[string]string{
		"dial postgres://app:s3cr3t@db:5432/orders failed": "dial postgres://app:***@db:5432/orders failed",
		"host=db password=s3cr3t user=app":                 "host=db password=*** user=app",
		"Authorization: Bearer abc.def-ghi":                "Authorization: Bearer ***",
		"token thm_AbCdEf0123456789_- leaked":              "token thm_*** leaked",
		`api_key: "xyz" next`:                              `api_key: *** next`,
		"nothing secret here":                              "nothing secret here",
	} {
		if got := audit.Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
	e := ev(1, time.Time{})
	e.Detail = strings.Repeat("é", audit.MaxDetailLen+10) + "password=x"
	line, err := audit.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var back audit.Event
	if err := json.Unmarshal(line, &back); err != nil || back.Time.IsZero() || back.Time.Location() != time.UTC {
		t.Fatalf("%v %+v", err, back)
	}
	if n := len([]rune(back.Detail)); n != audit.MaxDetailLen+1 {
		t.Fatalf("detail of %d runes", n)
	}
}
