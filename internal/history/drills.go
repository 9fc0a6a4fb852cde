package history

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/themis-maintenance/themis/domain"
)

// DrillReportEntry is a stored disaster-recovery drill report. The report
// itself is opaque JSON owned by the drill workflow.
type DrillReportEntry struct {
	ID        string          `json:"id"`
	Target    string          `json:"target"`
	Report    json.RawMessage `json:"report"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// SaveDrillReport stores the report of drill id, replacing an earlier report
// of the same id (a drill saves its report as it progresses). report must be
// valid JSON.
func (s *Store) SaveDrillReport(ctx context.Context, id, target string, report json.RawMessage) error {
	if id == "" {
		return errors.New("history: drill report needs an id")
	}
	if !json.Valid(report) {
		return fmt.Errorf("history: drill report %s: report is not valid JSON", id)
	}
	now := ms(time.Now())
	_, err := s.exec(ctx, `INSERT INTO drill_reports (id, target, report_json, created_at_ms, updated_at_ms)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET target = excluded.target, report_json = excluded.report_json,
			updated_at_ms = excluded.updated_at_ms`, id, target, string(report), now, now)
	if err != nil {
		return fmt.Errorf("history: save drill report %s: %w", id, err)
	}
	return nil
}

// DrillReport returns the report of drill id; the error wraps
// domain.ErrNotFound when there is none.
func (s *Store) DrillReport(ctx context.Context, id string) (DrillReportEntry, error) {
	row := s.queryRow(ctx, `SELECT id, target, report_json, created_at_ms, updated_at_ms
		FROM drill_reports WHERE id = ?`, id)
	e, err := scanDrill(row)
	if errors.Is(err, sql.ErrNoRows) {
		return DrillReportEntry{}, fmt.Errorf("history: drill report %q: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return DrillReportEntry{}, fmt.Errorf("history: drill report %q: %w", id, err)
	}
	return e, nil
}

// ListDrillReports returns the newest drill reports first, at most limit
// (0 = 100).
func (s *Store) ListDrillReports(ctx context.Context, limit int) ([]DrillReportEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.query(ctx, `SELECT id, target, report_json, created_at_ms, updated_at_ms
		FROM drill_reports ORDER BY created_at_ms DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("history: list drill reports: %w", err)
	}
	defer rows.Close()
	var out []DrillReportEntry
	for rows.Next() {
		e, err := scanDrill(rows)
		if err != nil {
			return nil, fmt.Errorf("history: list drill reports: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: list drill reports: %w", err)
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanDrill(sc scanner) (DrillReportEntry, error) {
	var e DrillReportEntry
	var report string
	var created, updated int64
	if err := sc.Scan(&e.ID, &e.Target, &report, &created, &updated); err != nil {
		return DrillReportEntry{}, err
	}
	e.Report = json.RawMessage(report)
	e.CreatedAt, e.UpdatedAt = fromMs(created), fromMs(updated)
	return e, nil
}

// TargetDrillReports returns the newest reports of target's drills first,
// at most limit (0 = 100, at most 1000).
func (s *Store) TargetDrillReports(ctx context.Context, target string, limit int) ([]DrillReportEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	rows, err := s.query(ctx, `SELECT id, target, report_json, created_at_ms, updated_at_ms
		FROM drill_reports WHERE target = ? ORDER BY created_at_ms DESC, id DESC LIMIT ?`, target, limit)
	if err != nil {
		return nil, fmt.Errorf("history: drill reports of %s: %w", target, err)
	}
	defer rows.Close()
	out := []DrillReportEntry{}
	for rows.Next() {
		e, err := scanDrill(rows)
		if err != nil {
			return nil, fmt.Errorf("history: drill reports of %s: %w", target, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: drill reports of %s: %w", target, err)
	}
	return out, nil
}
