// Package logging builds the process's log/slog logger from the
// configuration: JSON lines in production (or whenever the output is not a
// terminal), text on a terminal, at the configured level, and every record
// logged with a context carrying the trace id, span id, job id and target
// where they are known.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/mattn/go-isatty"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/activity"
)

// Formats of log.format.
const (
	FormatAuto = "auto"
	FormatJSON = "json"
	FormatText = "text"
)

// ParseLevel reads log.level: debug, info, warn or error (empty: info).
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if strings.TrimSpace(s) == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// ValidFormat reports whether s is a log.format value (empty is auto).
func ValidFormat(s string) bool {
	switch s {
	case "", FormatAuto, FormatJSON, FormatText:
		return true
	}
	return false
}

// New returns a logger writing to w in format ("json", "text", or "auto"
// / empty: text when w is a terminal, else JSON) at level.
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	if !ValidFormat(format) {
		return nil, fmt.Errorf("log format %q: want json, text or auto", format)
	}
	if format == "" || format == FormatAuto {
		format = FormatJSON
		if isTerminal(w) {
			format = FormatText
		}
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	if format == FormatText {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(ContextHandler{Handler: h}), nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

type ctxKey struct{}

// With returns ctx carrying attrs, added to every record logged with it
// (job_id and target, for instance).
func With(ctx context.Context, attrs ...slog.Attr) context.Context {
	prev, _ := ctx.Value(ctxKey{}).([]slog.Attr)
	all := make([]slog.Attr, 0, len(prev)+len(attrs))
	return context.WithValue(ctx, ctxKey{}, append(append(all, prev...), attrs...))
}

// WithJob returns ctx carrying the job id and target of its records.
func WithJob(ctx context.Context, jobID, target string) context.Context {
	var attrs []slog.Attr
	if jobID != "" {
		attrs = append(attrs, slog.String("job_id", jobID))
	}
	if target != "" {
		attrs = append(attrs, slog.String("target", target))
	}
	return With(ctx, attrs...)
}

// ContextHandler adds to each record what its context knows: trace_id and
// span_id of the current span, job_id (the workflow id) and the activity
// type inside a Temporal activity, and the attributes of With/WithJob.
type ContextHandler struct {
	slog.Handler
}

// Handle adds the context's attributes and passes the record on.
func (h ContextHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		}
		attrs, _ := ctx.Value(ctxKey{}).([]slog.Attr)
		hasJob := false
		for _, a := range attrs {
			hasJob = hasJob || a.Key == "job_id"
		}
		if !hasJob && activity.IsActivity(ctx) {
			info := activity.GetInfo(ctx)
			r.AddAttrs(slog.String("job_id", info.WorkflowExecution.ID), slog.String("activity", info.ActivityType.Name))
		}
		r.AddAttrs(attrs...)
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapper.
func (h ContextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return ContextHandler{Handler: h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the wrapper.
func (h ContextHandler) WithGroup(name string) slog.Handler {
	return ContextHandler{Handler: h.Handler.WithGroup(name)}
}
