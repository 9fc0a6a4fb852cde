package starter

import (
	"time"

	"github.com/themis-maintenance/themis/domain"
)

// nextRunMs is the next run of a schedule that will do work: the first of
// the Schedule's next action times (from Temporal) outside the target's
// blackouts — a run inside one starts and is skipped at once — or, when
// Temporal listed none outside, the first later cron time outside them.
// Zero when there is none.
func (s *Service) nextRunMs(spec domain.ScheduleSpec, next []time.Time) int64 {
	if len(next) == 0 {
		return 0
	}
	bs := s.blackouts[spec.Target]
	for _, t := range next {
		if _, in := domain.ActiveBlackout(bs, t); !in {
			return t.UnixMilli()
		}
	}
	t, err := spec.NextRunOutside(next[len(next)-1], bs)
	if err != nil || t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
