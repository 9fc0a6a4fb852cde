package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TargetThrottle is a manual pause of maintenance on a target: until it
// expires, the pacer of every heavy task on the target waits (docs/
// MAINTENANCE_SCHEDULE.md, "Throttling and pacing").
type TargetThrottle struct {
	Target    string    `json:"target"`
	Until     time.Time `json:"until"`
	Reason    string    `json:"reason,omitempty"`
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// SetTargetThrottle stores (or replaces) the manual pause of th.Target.
// Pauses that have expired, of any target, are deleted on the way.
func (s *Store) SetTargetThrottle(ctx context.Context, th TargetThrottle) error {
	if th.CreatedAt.IsZero() {
		th.CreatedAt = time.Now()
	}
	err := s.inTx(ctx, func(t tx) error {
		if _, err := t.exec(ctx, `DELETE FROM target_throttles WHERE until_ms <= ?`, ms(time.Now())); err != nil {
			return err
		}
		_, err := t.exec(ctx, `INSERT INTO target_throttles (target, until_ms, reason, created_by, created_at_ms)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (target) DO UPDATE SET until_ms = excluded.until_ms, reason = excluded.reason,
				created_by = excluded.created_by, created_at_ms = excluded.created_at_ms`,
			th.Target, ms(th.Until), strings.ToValidUTF8(th.Reason, "?"), th.CreatedBy, ms(th.CreatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("history: set throttle of %s: %w", th.Target, err)
	}
	return nil
}

// ClearTargetThrottle removes target's manual pause; cleared reports
// whether an unexpired one was there.
func (s *Store) ClearTargetThrottle(ctx context.Context, target string) (cleared bool, err error) {
	res, err := s.exec(ctx, `DELETE FROM target_throttles WHERE target = ? AND until_ms > ?`, target, ms(time.Now()))
	if err != nil {
		return false, fmt.Errorf("history: clear throttle of %s: %w", target, err)
	}
	if _, err := s.exec(ctx, `DELETE FROM target_throttles WHERE target = ?`, target); err != nil {
		return false, fmt.Errorf("history: clear throttle of %s: %w", target, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("history: clear throttle of %s: %w", target, err)
	}
	return n > 0, nil
}

// TargetThrottle returns target's manual pause if one is in force at now;
// ok is false when there is none or it has expired.
func (s *Store) TargetThrottle(ctx context.Context, target string, now time.Time) (th TargetThrottle, ok bool, err error) {
	var untilMs, createdMs int64
	err = s.queryRow(ctx, `SELECT until_ms, reason, created_by, created_at_ms FROM target_throttles
		WHERE target = ? AND until_ms > ?`, target, ms(now)).Scan(&untilMs, &th.Reason, &th.CreatedBy, &createdMs)
	if errors.Is(err, sql.ErrNoRows) {
		return TargetThrottle{}, false, nil
	}
	if err != nil {
		return TargetThrottle{}, false, fmt.Errorf("history: read throttle of %s: %w", target, err)
	}
	th.Target, th.Until, th.CreatedAt = target, time.UnixMilli(untilMs).UTC(), time.UnixMilli(createdMs).UTC()
	return th, true, nil
}

// ManualPause implements the PostgreSQL driver's pause reader: the end and
// reason of target's manual pause in force at now (ok false: none).
func (s *Store) ManualPause(ctx context.Context, target string, now time.Time) (until time.Time, reason string, ok bool, err error) {
	th, ok, err := s.TargetThrottle(ctx, target, now)
	return th.Until, th.Reason, ok, err
}
