package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// maxTracedStatement bounds the statement text kept on a span.
const maxTracedStatement = 1000

// sqlTracer is a pgx.QueryTracer that makes one OpenTelemetry span per SQL
// statement, a child of the caller's span (the task activity's): named
// "sql <OPERATION>", with the statement's text (identifiers and
// placeholders; values travel as arguments and are never recorded), the
// database and, when the statement failed, the error. Spans go to the
// global tracer provider, so they are dropped unless traces are exported.
type sqlTracer struct{ target string }

type sqlSpanKey struct{}

// sqlStatement is what TraceQueryStart leaves for TraceQueryEnd.
type sqlStatement struct {
	span  trace.Span
	sql   string
	op    string
	start time.Time
}

func (t sqlTracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	op := sqlOperation(data.SQL)
	stmt := data.SQL
	if len(stmt) > maxTracedStatement {
		stmt = stmt[:maxTracedStatement] + "…"
	}
	attrs := []attribute.KeyValue{
		attribute.String("db.system", "postgresql"),
		attribute.String("db.operation", op),
		attribute.String("db.statement", stmt),
	}
	if t.target != "" {
		attrs = append(attrs, attribute.String("themis.target", t.target))
	}
	if conn != nil {
		attrs = append(attrs, attribute.String("db.name", conn.Config().Database))
	}
	ctx, span := otel.Tracer("github.com/themis-maintenance/themis/driver/postgres").Start(ctx, "sql "+op,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return context.WithValue(ctx, sqlSpanKey{}, &sqlStatement{span: span, sql: data.SQL, op: op, start: time.Now()})
}

func (t sqlTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	st, ok := ctx.Value(sqlSpanKey{}).(*sqlStatement)
	if !ok {
		return
	}
	if data.Err != nil {
		st.span.RecordError(data.Err)
		st.span.SetStatus(codes.Error, data.Err.Error())
	} else {
		st.span.SetAttributes(attribute.Int64("db.rows_affected", data.CommandTag.RowsAffected()))
	}
	st.span.End()
	recordCommand(ctx, t.target, st, data)
}

// sqlOperation is the statement's leading keyword(s), upper-cased: SELECT,
// VACUUM, REINDEX, CREATE INDEX, …
func sqlOperation(sql string) string {
	fields := strings.Fields(sql)
	for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
		fields = fields[1:]
	}
	if len(fields) == 0 {
		return "UNKNOWN"
	}
	op := strings.ToUpper(strings.Trim(fields[0], "(;"))
	switch op {
	case "CREATE", "DROP", "ALTER":
		if len(fields) > 1 {
			op += " " + strings.ToUpper(fields[1])
		}
	}
	return op
}
