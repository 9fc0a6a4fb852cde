package workflows

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplayRecordedHistories replays histories recorded on a real dev
// server (testsuite, `make record-histories`): a workflow change that would
// break executions already running fails here.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded histories in workflows/testdata")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(MaintenanceWorkflow, workflowRegisterOptions())
			r.RegisterWorkflowWithOptions(DrillWorkflow, drillRegisterOptions())
			r.RegisterWorkflowWithOptions(ClaimWorkflow, workflow.RegisterOptions{Name: ClaimWorkflowName})
			r.RegisterWorkflowWithOptions(TargetLockWorkflow, workflow.RegisterOptions{Name: TargetLockWorkflowName})
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}
