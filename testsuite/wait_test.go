package testsuite

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/domain"
)

// Results without polling: GET /jobs/{id}?wait= holds the request until the
// job ends (one request brings the final state), answers the running job
// when the wait passes first, and answers an ended job at once; a run with
// "wait" answers the job it started once it has ended.
func TestJobWaitLongPoll(t *testing.T) {
	e := NewEnv(t, EnvOptions{StepDelay: 300 * time.Millisecond})
	ctx := context.Background()
	admin, err := client.New(e.API.URL, e.Token(api.ScopeAdmin), nil)
	require.NoError(t, err)

	fast := e.CreateSchedule("Wait fast", domain.TaskFragmentationMonitoring, domain.TaskIndexFragmentationReport)
	job, err := admin.RunSchedule(ctx, fast.ID, true)
	require.NoError(t, err)
	start := time.Now()
	// 20 s (the client's timeout is 30 s): the job takes a few seconds, more
	// on a loaded machine.
	done, err := admin.WaitJob(ctx, job.ID, 20*time.Second)
	took := time.Since(start)
	require.NoError(t, err)
	require.Equal(t, domain.StateSucceeded, done.State, "one request with wait=20s brings the final state (after %s)", took)
	require.Len(t, done.Tasks, 2)
	require.Greater(t, took, time.Second, "the request was held while the job ran")
	t.Logf("job %s ended %s after GET ?wait=20s was sent", job.ID, took.Round(time.Millisecond))

	// An ended job is answered at once.
	start = time.Now()
	again, err := admin.WaitJob(ctx, job.ID, 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, domain.StateSucceeded, again.State)
	require.Less(t, time.Since(start), 3*time.Second, "an ended job does not hold the request")

	// The wait passes first: the running job is answered, 200.
	slow := e.CreateSchedule("Wait slow", domain.TaskIndexRebuild, domain.TaskQuotaCheck)
	job, err = admin.RunSchedule(ctx, slow.ID, true)
	require.NoError(t, err)
	start = time.Now()
	running, err := admin.WaitJob(ctx, job.ID, time.Second)
	took = time.Since(start)
	require.NoError(t, err)
	require.False(t, running.State.Terminal(), "the slow job has not ended after a 1 s wait: %s", running.State)
	require.GreaterOrEqual(t, took, 900*time.Millisecond, "the request is held for the wait")
	require.Less(t, took, 5*time.Second)
	requests := 0
	for !running.State.Terminal() && requests < 10 {
		running, err = admin.WaitJob(ctx, job.ID, 30*time.Second)
		require.NoError(t, err)
		requests++
	}
	require.Equal(t, domain.StateSucceeded, running.State, "the slow job ends within %d waits", requests)
	t.Logf("slow job %s ended after %d more long polls", job.ID, requests)

	// A run that waits answers the job it started, once ended.
	start = time.Now()
	ran, err := admin.RunScheduleWait(ctx, fast.ID, true, 20*time.Second)
	require.NoError(t, err)
	require.Equal(t, domain.StateSucceeded, ran.State, "POST run with wait answers the ended job (after %s)", time.Since(start))
	require.Equal(t, fast.ID, ran.ScheduleID)

	// A bad wait is 400 naming the field.
	for _, w := range []string{"soon", "-1s", "2m"} {
		req, err := http.NewRequest(http.MethodGet, e.API.URL+api.BasePath+"/jobs/"+url.PathEscape(job.ID)+"?wait="+url.QueryEscape(w), nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+e.Token(api.ScopeRead))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "wait=%s", w)
	}
	_, err = admin.RunScheduleWait(ctx, fast.ID, false, 2*time.Minute)
	var ae *client.APIError
	require.ErrorAs(t, err, &ae, "a run with a wait over a minute is refused")
	require.Equal(t, http.StatusBadRequest, ae.Status)
	require.Equal(t, "wait", ae.Field)
}
