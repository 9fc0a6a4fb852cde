// Package commandlog carries the command log of a running task: every
// statement the task's driver sends to a target, with its object, timing,
// rows affected, time spent throttled and error, as Ola Hallengren's
// CommandLog keeps them. The task activity puts a Recorder into the
// context; drivers report each statement to it (Record); the activity
// flushes what was recorded to the history store.
package commandlog

import (
	"context"
	"sync"
	"time"
)

// MaxStatement bounds the statement text kept per command.
const MaxStatement = 4000

// Command is one statement a task ran. Statements carry identifiers and
// placeholders; values travel as arguments and are never recorded.
type Command struct {
	ID         int64  `json:"id"`
	JobID      string `json:"job_id"`
	ScheduleID string `json:"schedule_id,omitempty"`
	Target     string `json:"target"`
	Task       string `json:"task"`
	Attempt    int    `json:"attempt"`
	// Object is what the statement works on (schema.table, an index), ""
	// when it names none (a catalog read).
	Object    string `json:"object"`
	Operation string `json:"operation"`
	Statement string `json:"statement"`
	StartMs   int64  `json:"started_at_ms"`
	EndMs     int64  `json:"finished_at_ms"`
	// DurationMs is EndMs − StartMs.
	DurationMs   int64 `json:"duration_ms"`
	RowsAffected int64 `json:"rows_affected"`
	// ThrottledMs is the time the task waited on its throttle before this
	// statement.
	ThrottledMs int64  `json:"throttled_ms"`
	Error       string `json:"error,omitempty"`
}

// Meta is what a Recorder stamps on every command: whose they are.
type Meta struct {
	JobID      string
	ScheduleID string
	Target     string
	Task       string
	Attempt    int
}

// Sink stores recorded commands (the history store).
type Sink interface {
	RecordCommands(ctx context.Context, cmds []Command) error
}

// flushEvery is how many commands a Recorder buffers before it writes them.
const flushEvery = 100

// Recorder collects a task's commands and writes them to a Sink in
// batches. It is safe for concurrent use (a task may run statements on
// several connections at once).
type Recorder struct {
	meta Meta
	sink Sink

	mu        sync.Mutex
	buf       []Command
	throttled time.Duration
	err       error
}

// NewRecorder returns a Recorder that stamps meta on each command and
// writes to sink.
func NewRecorder(meta Meta, sink Sink) *Recorder {
	return &Recorder{meta: meta, sink: sink}
}

type recorderKey struct{}

// WithRecorder returns ctx carrying r.
func WithRecorder(ctx context.Context, r *Recorder) context.Context {
	return context.WithValue(ctx, recorderKey{}, r)
}

// FromContext returns the Recorder in ctx, or nil.
func FromContext(ctx context.Context) *Recorder {
	r, _ := ctx.Value(recorderKey{}).(*Recorder)
	return r
}

type objectKey struct{}

// WithObject returns ctx naming the object (schema.table, an index) the
// statements run with it work on, for drivers whose statements name their
// object only through arguments.
func WithObject(ctx context.Context, object string) context.Context {
	return context.WithValue(ctx, objectKey{}, object)
}

// ObjectFrom returns the object WithObject put into ctx, or "".
func ObjectFrom(ctx context.Context) string {
	s, _ := ctx.Value(objectKey{}).(string)
	return s
}

// Throttled adds d to the time the task waited on its throttle; the next
// recorded command carries it.
func (r *Recorder) Throttled(d time.Duration) {
	if r == nil || d <= 0 {
		return
	}
	r.mu.Lock()
	r.throttled += d
	r.mu.Unlock()
}

// Record adds one command, stamped with the Recorder's meta (the target of
// c is kept when set). Every flushEvery commands the buffer is written;
// a write error is kept for Flush to return and the commands stay buffered.
func (r *Recorder) Record(ctx context.Context, c Command) {
	if r == nil {
		return
	}
	c.JobID, c.ScheduleID, c.Task, c.Attempt = r.meta.JobID, r.meta.ScheduleID, r.meta.Task, r.meta.Attempt
	if c.Target == "" {
		c.Target = r.meta.Target
	}
	if len(c.Statement) > MaxStatement {
		c.Statement = c.Statement[:MaxStatement] + "…"
	}
	c.DurationMs = max(0, c.EndMs-c.StartMs)
	r.mu.Lock()
	c.ThrottledMs, r.throttled = r.throttled.Milliseconds(), 0
	r.buf = append(r.buf, c)
	full := len(r.buf) >= flushEvery
	r.mu.Unlock()
	if full {
		_ = r.Flush(ctx)
	}
}

// Flush writes the buffered commands. The commands stay buffered when the
// write fails, and the error is returned (then, and by later Flushes until
// one succeeds).
func (r *Recorder) Flush(ctx context.Context) error {
	if r == nil || r.sink == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) == 0 {
		return r.err
	}
	if err := r.sink.RecordCommands(context.WithoutCancel(ctx), r.buf); err != nil {
		r.err = err
		return err
	}
	r.buf, r.err = nil, nil
	return nil
}
