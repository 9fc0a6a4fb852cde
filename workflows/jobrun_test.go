package workflows

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/themis-maintenance/themis/activities"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// graphInput: metrics → quota, fragmentation independent, performance_analysis
// after quota and fragmentation.
func graphInput() MaintenanceInput {
	m, q, f, a := domain.TaskMetricsCollection, domain.TaskQuotaCheck, domain.TaskFragmentationMonitoring, domain.TaskPerformanceAnalysis
	in := input(m, q, f, a)
	in.Spec.TaskDependencies = []domain.TaskDependency{
		{TaskType: q, DependsOn: []domain.TaskType{m}},
		{TaskType: a, DependsOn: []domain.TaskType{q, f}},
	}
	return in
}

// overlap records which tasks ran at the same time as another.
type overlap struct {
	mu      sync.Mutex
	active  map[domain.TaskType]bool
	overlap map[domain.TaskType][]domain.TaskType
	ended   []domain.TaskType
}

func (o *overlap) task(t domain.TaskType, out error) func(context.Context, int32) (activities.TaskOutput, error) {
	return func(ctx context.Context, attempt int32) (activities.TaskOutput, error) {
		o.mu.Lock()
		for other := range o.active {
			o.overlap[t] = append(o.overlap[t], other)
			o.overlap[other] = append(o.overlap[other], t)
		}
		o.active[t] = true
		o.mu.Unlock()
		time.Sleep(150 * time.Millisecond)
		o.mu.Lock()
		delete(o.active, t)
		o.ended = append(o.ended, t)
		o.mu.Unlock()
		if out != nil {
			return activities.TaskOutput{}, out
		}
		return activities.TaskOutput{Summary: string(t) + " done", Attempt: int(attempt)}, nil
	}
}

func TestTaskGraphRunsIndependentBranchesInParallel(t *testing.T) {
	env, f := newEnv(t, inWindowTime)
	o := &overlap{active: map[domain.TaskType]bool{}, overlap: map[domain.TaskType][]domain.TaskType{}}
	in := graphInput()
	for _, tt := range in.Spec.Tasks {
		f.behave[tt] = o.task(tt, nil)
	}
	env.ExecuteWorkflow(MaintenanceWorkflowName, in)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	job := result(t, env)
	require.Equal(t, domain.StateSucceeded, job.State, job.ErrorMessage)
	require.Equal(t, "4 of 4 tasks succeeded", job.ResultSummary)

	m, q, fr, a := domain.TaskMetricsCollection, domain.TaskQuotaCheck, domain.TaskFragmentationMonitoring, domain.TaskPerformanceAnalysis
	require.Contains(t, o.overlap[fr], m, "fragmentation_monitoring (independent) ran beside metrics_collection")
	require.NotContains(t, o.overlap[q], m, "quota_check waited for metrics_collection")
	require.NotContains(t, o.overlap[a], q)
	require.NotContains(t, o.overlap[a], fr)
	require.Equal(t, a, o.ended[len(o.ended)-1], "performance_analysis ran last")
	require.Less(t, slices.Index(o.ended, m), slices.Index(o.ended, q))
}

func TestTaskGraphFailedPrerequisiteSkipsItsDependents(t *testing.T) {
	env, f := newEnv(t, inWindowTime)
	f.behave[domain.TaskMetricsCollection] = permanentFailure(driver.KindInvalidInput, "metrics unavailable")
	env.ExecuteWorkflow(MaintenanceWorkflowName, graphInput())
	require.Error(t, env.GetWorkflowError())
	job := result(t, env)
	require.Equal(t, domain.StateFailed, job.State)
	byType := map[domain.TaskType]domain.TaskRun{}
	for _, tr := range job.Tasks {
		byType[tr.TaskType] = tr
	}
	require.Equal(t, domain.StateFailed, byType[domain.TaskMetricsCollection].State)
	require.Equal(t, domain.StateSucceeded, byType[domain.TaskFragmentationMonitoring].State, "the independent branch still ran")
	require.Equal(t, domain.StateSkipped, byType[domain.TaskQuotaCheck].State)
	require.Equal(t, "skipped: prerequisite metrics_collection failed", byType[domain.TaskQuotaCheck].ResultSummary)
	require.Equal(t, domain.StateSkipped, byType[domain.TaskPerformanceAnalysis].State)
	require.Equal(t, "skipped: prerequisite quota_check was skipped", byType[domain.TaskPerformanceAnalysis].ResultSummary)
	require.ElementsMatch(t, []domain.TaskType{domain.TaskMetricsCollection, domain.TaskFragmentationMonitoring}, f.calls)
	require.Equal(t, "1 of 4 tasks succeeded, 2 skipped", job.ResultSummary)
}

func TestTaskPredictedNotToFitTheWindowIsSkipped(t *testing.T) {
	env, f := newEnv(t, inWindowTime) // 03:00 UTC, window 02–06: 3 h left
	f.predicted = map[domain.TaskType]int64{domain.TaskMVCCCleanup: (4 * time.Hour).Milliseconds(), domain.TaskQuotaCheck: 1500}
	env.ExecuteWorkflow(MaintenanceWorkflowName, input(domain.TaskMVCCCleanup, domain.TaskQuotaCheck, domain.TaskMetricsCollection))
	require.NoError(t, env.GetWorkflowError())
	job := result(t, env)
	require.Equal(t, domain.StateSucceeded, job.State)
	require.Equal(t, domain.StateSkipped, job.Tasks[0].State)
	require.Equal(t, "skipped: would not fit the window: predicted 4h0m0s from past runs, 3h0m0s left before it closes at 2026-11-22T06:00:00Z",
		job.Tasks[0].ResultSummary)
	require.Equal(t, int64(4*time.Hour/time.Millisecond), job.Tasks[0].PredictedMs)
	require.Equal(t, domain.StateSucceeded, job.Tasks[1].State, "a shorter task still runs")
	require.Equal(t, int64(1500), job.Tasks[1].PredictedMs)
	require.Equal(t, domain.StateSucceeded, job.Tasks[2].State, "a task without a prediction runs")
	require.Equal(t, []domain.TaskType{domain.TaskQuotaCheck, domain.TaskMetricsCollection}, f.calls)

	// A forced run ignores the window, so the prediction skips nothing.
	env, f = newEnv(t, inWindowTime)
	f.predicted = map[domain.TaskType]int64{domain.TaskMVCCCleanup: (4 * time.Hour).Milliseconds()}
	in := input(domain.TaskMVCCCleanup)
	in.Forced = true
	env.ExecuteWorkflow(MaintenanceWorkflowName, in)
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, domain.StateSucceeded, result(t, env).Tasks[0].State)
}
