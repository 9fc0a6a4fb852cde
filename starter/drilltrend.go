package starter

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/themis-maintenance/themis/domain"
)

// DrillTrend reads target's newest limit drill reports from the history
// store and returns the finished ones as its RTO/RPO trend, oldest first.
func (s *Service) DrillTrend(ctx context.Context, target string, limit int) (domain.DrillTrend, error) {
	if !s.TargetKnown(target) {
		return domain.DrillTrend{}, fmt.Errorf("%w: target %q is not configured", domain.ErrNotFound, target)
	}
	if s.opts.Records == nil {
		return domain.DrillTrend{}, fmt.Errorf("%w: drill trends need the history store", domain.ErrUnavailable)
	}
	entries, err := s.opts.Records.TargetDrillReports(ctx, target, limit)
	if err != nil {
		return domain.DrillTrend{}, fmt.Errorf("drill trend of %s: %w", target, err)
	}
	points := make([]domain.DrillTrendPoint, 0, len(entries))
	for _, e := range entries {
		var d domain.Drill
		if err := json.Unmarshal(e.Report, &d); err != nil {
			s.opts.Logger.Warn("drill report not readable; left out of the trend", "drill_id", e.ID, "error", err)
			continue
		}
		if d.ID == "" {
			d.ID = e.ID
		}
		if d.State.Terminal() {
			points = append(points, domain.TrendPoint(d))
		}
	}
	return domain.NewDrillTrend(target, points), nil
}
