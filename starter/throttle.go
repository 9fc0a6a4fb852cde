package starter

import (
	"context"
	"fmt"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/history"
)

// targetThrottles is the history store's view of manual pauses
// (internal/history.Store).
type targetThrottles interface {
	TargetThrottle(ctx context.Context, target string, now time.Time) (history.TargetThrottle, bool, error)
	SetTargetThrottle(ctx context.Context, th history.TargetThrottle) error
	ClearTargetThrottle(ctx context.Context, target string) (bool, error)
}

var _ api.ThrottleService = (*Service)(nil)

func (s *Service) throttles() (targetThrottles, error) {
	if st, ok := s.opts.Records.(targetThrottles); ok {
		return st, nil
	}
	return nil, fmt.Errorf("%w: manual pauses need the history store", domain.ErrUnavailable)
}

// TargetThrottle implements api.ThrottleService.
func (s *Service) TargetThrottle(ctx context.Context, target string) (api.TargetThrottle, bool, error) {
	st, err := s.throttles()
	if err != nil {
		return api.TargetThrottle{}, false, err
	}
	th, ok, err := st.TargetThrottle(ctx, target, time.Now())
	return api.TargetThrottle(th), ok, err
}

// SetTargetThrottle implements api.ThrottleService.
func (s *Service) SetTargetThrottle(ctx context.Context, th api.TargetThrottle) error {
	st, err := s.throttles()
	if err != nil {
		return err
	}
	return st.SetTargetThrottle(ctx, history.TargetThrottle(th))
}

// ClearTargetThrottle implements api.ThrottleService.
func (s *Service) ClearTargetThrottle(ctx context.Context, target string) (bool, error) {
	st, err := s.throttles()
	if err != nil {
		return false, err
	}
	return st.ClearTargetThrottle(ctx, target)
}
