package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/driver/commandlog"
)

// recordCommand reports one finished statement to the task's command log
// (when the context carries one): its object (set by the caller with
// commandlog.WithObject, else read from a maintenance statement's text),
// timing, rows affected and error.
func recordCommand(ctx context.Context, target string, st *sqlStatement, data pgx.TraceQueryEndData) {
	rec := commandlog.FromContext(ctx)
	if rec == nil {
		return
	}
	end := time.Now()
	obj := commandlog.ObjectFrom(ctx)
	if obj == "" {
		obj = statementObject(st.sql)
	}
	c := commandlog.Command{
		Target: target, Object: obj, Operation: st.op, Statement: st.sql,
		StartMs: st.start.UnixMilli(), EndMs: end.UnixMilli(),
	}
	if data.Err != nil {
		c.Error = data.Err.Error()
	} else {
		c.RowsAffected = data.CommandTag.RowsAffected()
	}
	rec.Record(ctx, c)
}

// objectKeywords are the words that may stand between a maintenance
// statement's verb and its object.
var objectKeywords = map[string]bool{
	"INDEX": true, "TABLE": true, "CONCURRENTLY": true, "IF": true, "EXISTS": true, "NOT": true,
	"VERBOSE": true, "ONLY": true, "SCHEMA": true, "DATABASE": true, "SYSTEM": true, "MATERIALIZED": true, "VIEW": true,
	"EXTENSION": true,
}

// objectVerbs are the statements whose object statementObject reads.
var objectVerbs = map[string]bool{
	"VACUUM": true, "ANALYZE": true, "REINDEX": true, "CLUSTER": true, "REFRESH": true,
	"CREATE": true, "DROP": true, "ALTER": true, "TRUNCATE": true,
}

// statementObject is the object a maintenance statement names — VACUUM
// (ANALYZE) "s"."t" → s.t, REINDEX INDEX CONCURRENTLY "s"."i" → s.i,
// CREATE INDEX CONCURRENTLY "i" ON "s"."t" → s.t — or "" for other
// statements (catalog reads, whose objects travel as arguments).
func statementObject(sql string) string {
	l := sqlLexer{s: sql}
	verb := strings.ToUpper(l.word())
	if !objectVerbs[verb] {
		return ""
	}
	createIndex := false
	for {
		l.space()
		if l.peek() == '(' { // an option list: VACUUM (FULL, ANALYZE)
			l.skipParens()
			continue
		}
		save := l.i
		w := strings.ToUpper(l.word())
		if w == "" {
			break
		}
		if objectKeywords[w] || w == "UNIQUE" && verb == "CREATE" {
			if verb == "CREATE" && w == "INDEX" {
				createIndex = true
			}
			continue
		}
		l.i = save
		break
	}
	obj := ""
	if save := l.i; !createIndex || strings.ToUpper(l.word()) != "ON" {
		l.i = save
		obj = l.identifier()
	} else {
		l.i = save
	}
	if createIndex { // CREATE INDEX [name] ON [ONLY] table
		for {
			l.space()
			save := l.i
			w := strings.ToUpper(l.word())
			if w == "" {
				return obj
			}
			if w == "ON" {
				l.space()
				if save2 := l.i; strings.ToUpper(l.word()) != "ONLY" {
					l.i = save2
				}
				if t := l.identifier(); t != "" {
					return t
				}
				return obj
			}
			l.i = save
			if l.identifier() == "" {
				return obj
			}
		}
	}
	return obj
}

// sqlLexer reads just enough SQL for statementObject.
type sqlLexer struct {
	s string
	i int
}

func (l *sqlLexer) peek() byte {
	if l.i < len(l.s) {
		return l.s[l.i]
	}
	return 0
}

func (l *sqlLexer) space() {
	for l.i < len(l.s) {
		switch {
		case l.s[l.i] == ' ' || l.s[l.i] == '\t' || l.s[l.i] == '\n' || l.s[l.i] == '\r':
			l.i++
		case strings.HasPrefix(l.s[l.i:], "--"):
			for l.i < len(l.s) && l.s[l.i] != '\n' {
				l.i++
			}
		default:
			return
		}
	}
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// word reads an unquoted word.
func (l *sqlLexer) word() string {
	l.space()
	start := l.i
	for l.i < len(l.s) && isWordByte(l.s[l.i]) {
		l.i++
	}
	return l.s[start:l.i]
}

func (l *sqlLexer) skipParens() {
	depth := 0
	for l.i < len(l.s) {
		switch l.s[l.i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				l.i++
				return
			}
		}
		l.i++
	}
}

// identifier reads a possibly qualified, possibly quoted name and returns
// its parts unquoted, joined by dots.
func (l *sqlLexer) identifier() string {
	l.space()
	var parts []string
	for {
		var part string
		if l.peek() == '"' {
			l.i++
			var b strings.Builder
			for l.i < len(l.s) {
				if l.s[l.i] == '"' {
					if l.i+1 < len(l.s) && l.s[l.i+1] == '"' {
						b.WriteByte('"')
						l.i += 2
						continue
					}
					l.i++
					break
				}
				b.WriteByte(l.s[l.i])
				l.i++
			}
			part = b.String()
		} else {
			part = l.word()
			if part == "" {
				break
			}
			part = strings.ToLower(part)
		}
		parts = append(parts, part)
		if l.peek() != '.' {
			break
		}
		l.i++
	}
	return strings.Join(parts, ".")
}
