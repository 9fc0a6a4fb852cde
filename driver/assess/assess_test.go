package assess

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/internal/history"
)

func TestBytesHuman(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", -1023: "-1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		-1536: "-1.5 KiB", 10 << 20: "10.0 MiB", 3 << 30: "3.0 GiB", 1 << 62: "4.0 EiB",
	} {
		if got := BytesHuman(n); got != want {
			t.Errorf("BytesHuman(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestRound(t *testing.T) {
	for _, c := range []struct{ f, r1, r3 float64 }{
		{0, 0, 0}, {1.25, 1.3, 1.25}, {1.2346, 1.2, 1.235}, {0.0006, 0, 0.001}, {99.96, 100, 99.96}, {-1.25, -1.3, -1.25},
	} {
		if got := Round1(c.f); got != c.r1 {
			t.Errorf("Round1(%v) = %v, want %v", c.f, got, c.r1)
		}
		if got := Round3(c.f); got != c.r3 {
			t.Errorf("Round3(%v) = %v, want %v", c.f, got, c.r3)
		}
	}
}

// openHistory opens a history store in a temporary directory.
func openHistory(t *testing.T) *history.Store {
	t.Helper()
	h, err := history.Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// failingHistory fails RecordSamples and Samples with the errors set.
type failingHistory struct {
	driver.History
	recordErr, readErr error
}

func (h failingHistory) RecordSamples(ctx context.Context, s ...driver.Sample) error {
	if h.recordErr != nil {
		return h.recordErr
	}
	return h.History.RecordSamples(ctx, s...)
}

func (h failingHistory) Samples(ctx context.Context, target, metric string, since time.Time) ([]driver.Sample, error) {
	if h.readErr != nil {
		return nil, h.readErr
	}
	return h.History.Samples(ctx, target, metric, since)
}
