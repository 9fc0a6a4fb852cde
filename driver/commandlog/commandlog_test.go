package commandlog

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

type memSink struct {
	mu   sync.Mutex
	got  []Command
	fail error
}

func (s *memSink) RecordCommands(_ context.Context, cmds []Command) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.got = append(s.got, cmds...)
	return nil
}

func TestRecorder(t *testing.T) {
	ctx := context.Background()
	sink := &memSink{}
	r := NewRecorder(Meta{JobID: "j", ScheduleID: "s", Target: "db", Task: "mvcc_cleanup", Attempt: 2}, sink)
	ctx = WithRecorder(ctx, r)
	if FromContext(ctx) != r || FromContext(context.Background()) != nil {
		t.Fatal("FromContext")
	}
	r.Throttled(1500 * time.Millisecond)
	FromContext(ctx).Record(ctx, Command{Statement: strings.Repeat("x", MaxStatement+10), StartMs: 100, EndMs: 350})
	FromContext(ctx).Record(ctx, Command{Target: "other", StartMs: 400, EndMs: 300})
	if len(sink.got) != 0 {
		t.Fatal("written before a flush")
	}
	sink.fail = errors.New("store down")
	if err := r.Flush(ctx); err == nil {
		t.Fatal("flush error lost")
	}
	sink.fail = nil
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(sink.got) != 2 {
		t.Fatalf("%d commands kept after a failed flush, want 2", len(sink.got))
	}
	a, b := sink.got[0], sink.got[1]
	if a.JobID != "j" || a.ScheduleID != "s" || a.Task != "mvcc_cleanup" || a.Attempt != 2 || a.Target != "db" ||
		a.DurationMs != 250 || a.ThrottledMs != 1500 || len(a.Statement) != MaxStatement+len("…") {
		t.Fatalf("first %+v", a)
	}
	if b.Target != "other" || b.DurationMs != 0 || b.ThrottledMs != 0 {
		t.Fatalf("second %+v", b)
	}
	// A full buffer is written without a Flush.
	for range flushEvery {
		r.Record(ctx, Command{})
	}
	if len(sink.got) != 2+flushEvery {
		t.Fatalf("%d written, want %d", len(sink.got), 2+flushEvery)
	}
	// A nil Recorder records nothing and does not panic.
	var none *Recorder
	none.Record(ctx, Command{})
	none.Throttled(time.Second)
	if err := none.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if ObjectFrom(WithObject(ctx, "public.t")) != "public.t" || ObjectFrom(ctx) != "" {
		t.Fatal("object")
	}
}
