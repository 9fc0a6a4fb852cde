package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/themis-maintenance/themis/domain"
)

func TestScheduledRunInBlackoutIsSkipped(t *testing.T) {
	freeze := domain.Blackout{Name: "release freeze", From: inWindowTime.Add(-time.Hour), To: inWindowTime.Add(48 * time.Hour)}

	env, f := newEnv(t, inWindowTime)
	f.blackouts = []domain.Blackout{freeze}
	env.ExecuteWorkflow(MaintenanceWorkflowName, input(domain.TaskQuotaCheck, domain.TaskMVCCCleanup))
	require.NoError(t, env.GetWorkflowError())
	job := result(t, env)
	require.Equal(t, domain.StateSkipped, job.State)
	require.Contains(t, job.ResultSummary, `skipped: blackout "release freeze"`)
	require.Contains(t, job.ResultSummary, "until 2026-11-24T03:00:00Z")
	require.Empty(t, f.calls, "no task ran")
	for _, tr := range job.Tasks {
		require.Equal(t, domain.StateSkipped, tr.State)
	}

	// A forced run goes through the blackout.
	env, f = newEnv(t, inWindowTime)
	f.blackouts = []domain.Blackout{freeze}
	in := input(domain.TaskQuotaCheck)
	in.Forced = true
	env.ExecuteWorkflow(MaintenanceWorkflowName, in)
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, domain.StateSucceeded, result(t, env).State)

	// Outside the blackout the scheduled run runs.
	env, f = newEnv(t, inWindowTime.Add(72*time.Hour))
	f.blackouts = []domain.Blackout{freeze}
	env.ExecuteWorkflow(MaintenanceWorkflowName, input(domain.TaskQuotaCheck))
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, domain.StateSucceeded, result(t, env).State)
	require.Equal(t, []domain.TaskType{domain.TaskQuotaCheck}, f.calls)
}
