package driver

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDuringReportsWhileRunningAndNeverAfter: a statement that runs for
// several intervals is reported with its running time; once During has
// returned nothing more is reported, and fn's error is returned as is.
func TestDuringReportsWhileRunningAndNeverAfter(t *testing.T) {
	var mu sync.Mutex
	var notes []string
	report := func(n string) {
		mu.Lock()
		defer mu.Unlock()
		notes = append(notes, n)
	}
	boom := errors.New("boom")
	err := During(20*time.Millisecond, "VACUUM x", report, func() error {
		time.Sleep(110 * time.Millisecond)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("During returned %v, want fn's error", err)
	}
	mu.Lock()
	n := len(notes)
	got := append([]string(nil), notes...)
	mu.Unlock()
	if n < 2 {
		t.Fatalf("%d reports during 110 ms at a 20 ms interval: %q", n, got)
	}
	for _, note := range got {
		if !strings.HasPrefix(note, "VACUUM x (running for ") {
			t.Errorf("note %q", note)
		}
	}
	time.Sleep(80 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(notes) != n {
		t.Errorf("%d report(s) after During returned: %q", len(notes)-n, notes[n:])
	}
}

// TestDuringQuickStatementIsNotReported: a statement shorter than the
// interval makes no report.
func TestDuringQuickStatementIsNotReported(t *testing.T) {
	reported := false
	if err := During(time.Hour, "ANALYZE x", func(string) { reported = true }, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if reported {
		t.Error("a statement shorter than the interval was reported")
	}
}
