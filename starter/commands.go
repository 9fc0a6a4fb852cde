package starter

import (
	"context"
	"fmt"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/history"
)

// ListCommands serves the command log (GET /commands) from the history
// store, newest first; a full page carries the token of the next.
func (s *Service) ListCommands(ctx context.Context, f api.CommandFilter) (api.CommandPage, error) {
	if s.opts.Records == nil {
		return api.CommandPage{}, fmt.Errorf("%w: the command log needs the history store", domain.ErrUnavailable)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = api.DefaultCommandLimit
	}
	cmds, err := s.opts.Records.ListCommands(ctx, history.CommandFilter{
		Target: f.Target, Object: f.Object, JobID: f.JobID, SinceMs: f.SinceMs, BeforeID: f.BeforeID, Limit: limit,
	})
	if err != nil {
		return api.CommandPage{}, fmt.Errorf("command log: %w", err)
	}
	page := api.CommandPage{Commands: cmds, Count: len(cmds)}
	if len(cmds) == limit {
		page.NextPageToken = api.CommandPageToken(cmds[len(cmds)-1].ID)
	}
	return page, nil
}
