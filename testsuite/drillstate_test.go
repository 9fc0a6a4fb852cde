package testsuite

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
)

// An aborted drill reads cleaning_up, without finished_at_ms, while its
// (slowed) clean-up runs, and refuses another abort; it reads aborted, with
// finished_at_ms and its clean-up done, only once its workflow has closed.
func TestDrillFinalOnlyOnceEnded(t *testing.T) {
	e := NewEnv(t, EnvOptions{DrillCleanupDelay: 3 * time.Second})
	ctx := context.Background()
	read, admin := e.Token(api.ScopeRead), e.Token(api.ScopeAdmin)
	e.verifiedBackup("demo")
	d, err := e.Service.StartDrill(ctx, "demo", "test")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		d, err = e.Service.GetDrill(ctx, d.ID)
		return err == nil && d.Awaiting == domain.ApprovalStart
	}, time.Minute, 100*time.Millisecond, "awaiting the start approval: %+v %v", d, err)

	require.Equal(t, http.StatusOK, e.call("POST", "/drills/"+d.ID+"/abort", admin, map[string]any{"reason": "state test"}, &d))
	sawCleaningUp := false
	deadline := time.Now().Add(time.Minute)
	for d.State != domain.DrillAborted {
		require.True(t, time.Now().Before(deadline), "not aborted within a minute: %+v", d)
		require.Equal(t, http.StatusOK, e.call("GET", "/drills/"+d.ID, read, nil, &d))
		switch d.State {
		case domain.DrillCleaningUp:
			require.Zero(t, d.FinishedAtMs, "cleaning up, yet finished")
			require.Contains(t, d.Reason, "state test", "the settled outcome's reason")
			if !sawCleaningUp {
				sawCleaningUp = true
				require.Equal(t, http.StatusConflict, e.call("POST", "/drills/"+d.ID+"/abort", admin, map[string]any{"reason": "again"}, nil))
			}
		case domain.DrillAborted:
			require.NotZero(t, d.FinishedAtMs, "aborted before its end")
		default:
			require.Equal(t, domain.DrillRunning, d.State, "step %s, reason %s", d.Step, d.Reason)
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.NotZero(t, d.FinishedAtMs, "aborted before its end: %+v", d)
	require.True(t, sawCleaningUp, "a 3 s clean-up was never seen")
	require.True(t, d.CleanedUp, "%+v", d)
	require.Contains(t, d.Reason, "state test")
}
