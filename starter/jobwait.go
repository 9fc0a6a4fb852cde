package starter

import (
	"context"
	"fmt"
	"time"

	"github.com/themis-maintenance/themis/domain"
)

// WaitJob holds until job id reaches a final state or wait has passed,
// then returns the job as GetJob does. A job that has already ended (or is
// unknown) is answered at once. The wait is a long poll on the workflow's
// result, so no state is polled meanwhile; it ends early when ctx does (the
// HTTP client went away), with ctx's error.
func (s *Service) WaitJob(ctx context.Context, id string, wait time.Duration) (domain.Job, error) {
	job, err := s.GetJob(ctx, id)
	if err != nil || job.State.Terminal() || wait <= 0 {
		return job, err
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	// The result's error, if any, is the job's own outcome (failed,
	// cancelled, terminated) or the wait's expiry: GetJob reads the state.
	_ = s.c.GetWorkflow(wctx, id, "").Get(wctx, nil)
	cancel()
	if err := ctx.Err(); err != nil {
		return domain.Job{}, fmt.Errorf("wait for job %s: %w", id, err)
	}
	return s.GetJob(ctx, id)
}
