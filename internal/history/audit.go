package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// maxNsTime is the last time UnixNano can represent.
var maxNsTime = time.Unix(0, math.MaxInt64)

// AuditRecord is one row of the audit log kept in the store (package audit
// owns the event's shape; the store keeps its JSON as it was given).
type AuditRecord struct {
	// Seq is the row's sequence number, assigned by AppendAuditEvent: the
	// log's order.
	Seq       int64
	Time      time.Time
	Principal string
	Action    string
	Outcome   string
	Event     json.RawMessage
}

// AppendAuditEvent adds rec to the audit log (Seq is ignored). The event
// must be valid JSON.
func (s *Store) AppendAuditEvent(ctx context.Context, rec AuditRecord) error {
	if !json.Valid(rec.Event) {
		return errors.New("history: audit event is not valid JSON")
	}
	if !rec.Time.After(time.Unix(0, 0)) || rec.Time.After(maxNsTime) {
		return fmt.Errorf("history: audit event time %v is out of range", rec.Time)
	}
	if _, err := s.exec(ctx, `INSERT INTO audit_events (time_ns, principal, action, outcome, event_json)
		VALUES (?, ?, ?, ?, ?)`, rec.Time.UnixNano(), rec.Principal, rec.Action, rec.Outcome, string(rec.Event)); err != nil {
		return fmt.Errorf("history: append audit event: %w", err)
	}
	return nil
}

// AuditEvents returns the newest limit audit records whose time is at or
// after since (zero: all), in log order (oldest first); limit <= 0 means
// no limit. more is true when older matching records were left out.
func (s *Store) AuditEvents(ctx context.Context, since time.Time, limit int) (recs []AuditRecord, more bool, err error) {
	var sinceNs int64
	switch {
	case since.After(maxNsTime):
		sinceNs = math.MaxInt64
	case since.After(time.Unix(0, 0)):
		sinceNs = since.UnixNano()
	}
	q := `SELECT id, time_ns, principal, action, outcome, event_json FROM audit_events
		WHERE time_ns >= ? ORDER BY id DESC`
	args := []any{sinceNs}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit+1)
	}
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("history: audit events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r AuditRecord
		var ns int64
		var ev string
		if err := rows.Scan(&r.Seq, &ns, &r.Principal, &r.Action, &r.Outcome, &ev); err != nil {
			return nil, false, fmt.Errorf("history: audit events: %w", err)
		}
		r.Time, r.Event = time.Unix(0, ns).UTC(), json.RawMessage(ev)
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("history: audit events: %w", err)
	}
	if limit > 0 && len(recs) > limit {
		recs, more = recs[:limit], true
	}
	for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
		recs[i], recs[j] = recs[j], recs[i]
	}
	return recs, more, nil
}
