package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/themis-maintenance/themis/internal/history"
)

// StoreLog keeps the audit log in the history store (table audit_events):
// with a PostgreSQL history store every API replica writes and reads one
// log. Events get a sequence number in the order they are written; Read
// returns them in that order. It is safe for concurrent use.
type StoreLog struct {
	store *history.Store
}

// OpenStore returns the audit log kept in store. The store's migrations
// have made the table; the caller keeps closing the store.
func OpenStore(store *history.Store) (*StoreLog, error) {
	if store == nil {
		return nil, errors.New("audit: no history store")
	}
	return &StoreLog{store: store}, nil
}

// Record stores e as Marshal renders it (Time in UTC, now when zero; Detail
// sanitised and clipped). The error, if any, means the event is not in the
// log.
func (l *StoreLog) Record(ctx context.Context, e Event) error {
	e = normalize(e)
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: encode event: %w", err)
	}
	if err := l.store.AppendAuditEvent(ctx, history.AuditRecord{
		Time: e.Time, Principal: e.Principal, Action: e.Action, Outcome: e.Outcome, Event: b,
	}); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// Read returns the newest limit events whose time is at or after since
// (zero: all), oldest first (in the order they were written); limit <= 0
// means no limit. Rows that do not decode as events are skipped and
// counted.
func (l *StoreLog) Read(ctx context.Context, since time.Time, limit int) (Page, error) {
	recs, more, err := l.store.AuditEvents(ctx, since, limit)
	if err != nil {
		return Page{}, fmt.Errorf("audit: %w", err)
	}
	page := Page{Events: make([]Event, 0, len(recs)), Truncated: more}
	for _, r := range recs {
		e, ok := parseEvent(r.Event)
		if !ok {
			page.Skipped++
			continue
		}
		page.Events = append(page.Events, e)
	}
	return page, nil
}
