package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/themis-maintenance/themis/activities"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// fakeTasks stands in for the task activities: the workflow only sees their
// results, so each is a function of the attempt it is called in.
type fakeTasks struct {
	mu       sync.Mutex
	calls    []domain.TaskType
	behave   map[domain.TaskType]func(ctx context.Context, attempt int32) (activities.TaskOutput, error)
	recorded []domain.Job
	lock     *freeLock
	// blackouts of the target, as a worker's configuration has them.
	blackouts []domain.Blackout
	// predicted are the tasks' expected durations (ms), as the history
	// store would predict them.
	predicted map[domain.TaskType]int64
	// inputs are the task activities' inputs, in call order.
	inputs []activities.TaskInput
}

func (f *fakeTasks) register(env *testsuite.TestWorkflowEnvironment) {
	for _, t := range domain.AllTaskTypes() {
		env.RegisterActivityWithOptions(func(ctx context.Context, in activities.TaskInput) (activities.TaskOutput, error) {
			f.mu.Lock()
			f.calls = append(f.calls, t)
			f.inputs = append(f.inputs, in)
			b := f.behave[t]
			f.mu.Unlock()
			attempt := activity.GetInfo(ctx).Attempt
			if b == nil {
				return activities.TaskOutput{Summary: string(t) + " done", Attempt: int(attempt)}, nil
			}
			return b(ctx, attempt)
		}, activity.RegisterOptions{Name: string(t)})
	}
	env.RegisterActivityWithOptions(func(ctx context.Context, in activities.RecordJobInput) error {
		f.mu.Lock()
		f.recorded = append(f.recorded, in.Job)
		f.mu.Unlock()
		return nil
	}, activity.RegisterOptions{Name: RecordJobActivity})
	env.RegisterActivityWithOptions(func(ctx context.Context, in activities.BlackoutInput) (activities.BlackoutResult, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		w, ok := domain.ActiveBlackout(f.blackouts, time.UnixMilli(in.AtMs))
		return activities.BlackoutResult{Active: ok, Window: w}, nil
	}, activity.RegisterOptions{Name: CheckBlackoutActivity})
	env.RegisterActivityWithOptions(func(ctx context.Context, in activities.PredictInput) (activities.PredictOutput, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		return activities.PredictOutput{Ms: f.predicted}, nil
	}, activity.RegisterOptions{Name: PredictDurationsActivity})
}

func input(tasks ...domain.TaskType) MaintenanceInput {
	return MaintenanceInput{
		ScheduleID: "daily-maintenance", ScheduleName: "Daily Maintenance",
		Spec: domain.ScheduleSpec{
			Name: "Daily Maintenance", Target: "demo", Frequency: domain.FrequencyDaily,
			CronExpression: "0 2 * * *", Timezone: "UTC", Tasks: tasks, EnforceWindow: true,
			WindowStartHour: 2, WindowEndHour: 6,
		},
		TriggeredBy: "schedule",
	}
}

func newEnv(t *testing.T, start time.Time) (*testsuite.TestWorkflowEnvironment, *fakeTasks) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(start)
	f := &fakeTasks{behave: map[domain.TaskType]func(context.Context, int32) (activities.TaskOutput, error){}}
	f.register(env)
	env.RegisterWorkflowWithOptions(MaintenanceWorkflow, workflowRegisterOptions())
	env.RegisterWorkflowWithOptions(DrillWorkflow, drillRegisterOptions())
	f.lock = installFreeLock(env)
	return env, f
}

var inWindowTime = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

func result(t *testing.T, env *testsuite.TestWorkflowEnvironment) domain.Job {
	t.Helper()
	v, err := env.QueryWorkflow(ProgressQuery)
	require.NoError(t, err)
	var job domain.Job
	require.NoError(t, v.Get(&job))
	return job
}

func TestTasksRunInOrderAndSucceed(t *testing.T) {
	env, f := newEnv(t, inWindowTime)
	tasks := []domain.TaskType{domain.TaskMetricsCollection, domain.TaskFragmentationMonitoring, domain.TaskQuotaCheck}
	env.ExecuteWorkflow(MaintenanceWorkflowName, input(tasks...))
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, tasks, f.calls)

	var job domain.Job
	require.NoError(t, env.GetWorkflowResult(&job))
	require.Equal(t, domain.StateSucceeded, job.State)
	require.Equal(t, "3 of 3 tasks succeeded", job.ResultSummary)
	for i, tr := range job.Tasks {
		require.Equal(t, tasks[i], tr.TaskType)
		require.Equal(t, domain.StateSucceeded, tr.State)
		require.Equal(t, 1, tr.Attempt)
	}
	require.Equal(t, job, result(t, env), "the progress query answers after completion")
	require.Len(t, f.recorded, 1)
	require.Equal(t, domain.StateSucceeded, f.recorded[0].State)
}

func TestOutsideWindowIsSkipped(t *testing.T) {
	env, f := newEnv(t, time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	env.ExecuteWorkflow(MaintenanceWorkflowName, input(domain.TaskMetricsCollection, domain.TaskQuotaCheck))
	require.NoError(t, env.GetWorkflowError())
	require.Empty(t, f.calls, "no task runs outside the window")
	job := result(t, env)
	require.Equal(t, domain.StateSkipped, job.State)
	for _, tr := range job.Tasks {
		require.Equal(t, domain.StateSkipped, tr.State)
	}
	require.Equal(t, domain.StateSkipped, f.recorded[0].State)
}

func TestForcedRunBypassesWindow(t *testing.T) {
	env, f := newEnv(t, time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	in := input(domain.TaskMetricsCollection)
	in.Forced = true
	env.ExecuteWorkflow(MaintenanceWorkflowName, in)
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []domain.TaskType{domain.TaskMetricsCollection}, f.calls)
	require.True(t, result(t, env).Forced)
}

func TestWrapAroundWindowInTimeZone(t *testing.T) {
	// 23:30 UTC is 00:30 in Berlin (winter): inside 22→4 there.
	env, f := newEnv(t, time.Date(2026, 11, 22, 23, 30, 0, 0, time.UTC))
	in := input(domain.TaskQuotaCheck)
	in.Spec.Timezone, in.Spec.WindowStartHour, in.Spec.WindowEndHour = "Europe/Berlin", 22, 4
	env.ExecuteWorkflow(MaintenanceWorkflowName, in)
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, f.calls, 1)

	// 04:30 Berlin is outside it.
	env, f = newEnv(t, time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC))
	env.ExecuteWorkflow(MaintenanceWorkflowName, in)
	require.NoError(t, env.GetWorkflowError())
	require.Empty(t, f.calls)
}

func permanentFailure(kind, msg string) func(context.Context, int32) (activities.TaskOutput, error) {
	return func(context.Context, int32) (activities.TaskOutput, error) {
		return activities.TaskOutput{}, temporal.NewNonRetryableApplicationError(msg, kind, nil, activities.FailureDetails{Attempt: 1})
	}
}

func TestHaltOnTaskFailureSkipsTheRest(t *testing.T) {
	env, f := newEnv(t, inWindowTime)
	f.behave[domain.TaskConsistencyCheck] = permanentFailure(driver.KindIntegrityViolation, "index orders_pkey is corrupt")
	in := input(domain.TaskConsistencyCheck, domain.TaskMVCCCleanup, domain.TaskQuotaCheck)
	in.Spec.HaltOnTaskFailure = true
	env.ExecuteWorkflow(MaintenanceWorkflowName, in)

	err := env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "a failed job fails the workflow: %v", err)
	require.Equal(t, JobFailedErrorType, appErr.Type())
	require.Equal(t, []domain.TaskType{domain.TaskConsistencyCheck}, f.calls)
	job := result(t, env)
	require.Equal(t, domain.StateFailed, job.State)
	require.Contains(t, job.ErrorMessage, "index orders_pkey is corrupt")
	require.Equal(t, domain.StateFailed, job.Tasks[0].State)
	require.Equal(t, domain.StateSkipped, job.Tasks[1].State)
	require.Equal(t, domain.StateSkipped, job.Tasks[2].State)
}

func TestWithoutHaltTheRestStillRunsAndJobFails(t *testing.T) {
	env, f := newEnv(t, inWindowTime)
	f.behave[domain.TaskReplicaValidation] = permanentFailure(driver.KindNotSupported, "task replica_validation is not supported by driver sqlite")
	env.ExecuteWorkflow(MaintenanceWorkflowName, input(domain.TaskReplicaValidation, domain.TaskQuotaCheck))
	require.Error(t, env.GetWorkflowError())
	require.Equal(t, []domain.TaskType{domain.TaskReplicaValidation, domain.TaskQuotaCheck}, f.calls)
	job := result(t, env)
	require.Equal(t, domain.StateFailed, job.State)
	require.Equal(t, domain.StateSucceeded, job.Tasks[1].State)
	require.Equal(t, domain.StateFailed, f.recorded[0].State)
}

func TestTransientFailuresAreRetried(t *testing.T) {
	env, f := newEnv(t, inWindowTime)
	f.behave[domain.TaskMVCCCleanup] = func(_ context.Context, attempt int32) (activities.TaskOutput, error) {
		if attempt < 3 {
			return activities.TaskOutput{}, temporal.NewApplicationError("lock timeout on orders", activities.TaskFailedErrorType)
		}
		return activities.TaskOutput{Summary: "vacuumed 3 tables", Attempt: int(attempt)}, nil
	}
	env.ExecuteWorkflow(MaintenanceWorkflowName, input(domain.TaskMVCCCleanup))
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, f.calls, 3)
	job := result(t, env)
	require.Equal(t, domain.StateSucceeded, job.Tasks[0].State)
	require.Equal(t, 3, job.Tasks[0].Attempt)
}

func TestNonRetryableFailureIsNotRetried(t *testing.T) {
	env, f := newEnv(t, inWindowTime)
	f.behave[domain.TaskVectorReindex] = permanentFailure(driver.KindNotSupported, "not supported")
	env.ExecuteWorkflow(MaintenanceWorkflowName, input(domain.TaskVectorReindex))
	require.Error(t, env.GetWorkflowError())
	require.Len(t, f.calls, 1)
}

func TestCancellationReachesRunningTaskAndJobEndsCancelled(t *testing.T) {
	env, f := newEnv(t, inWindowTime)
	var once sync.Once
	f.behave[domain.TaskMVCCCleanup] = func(ctx context.Context, _ int32) (activities.TaskOutput, error) {
		for i := 0; ; i++ {
			activity.RecordHeartbeat(ctx, activities.Heartbeat{Pct: 10})
			if i == 3 {
				// The operator cancels while the task is mid-way.
				once.Do(func() { go env.CancelWorkflow() })
			}
			select {
			case <-ctx.Done():
				return activities.TaskOutput{}, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	env.ExecuteWorkflow(MaintenanceWorkflowName, input(domain.TaskMetricsCollection, domain.TaskMVCCCleanup, domain.TaskQuotaCheck))
	require.True(t, temporal.IsCanceledError(env.GetWorkflowError()), "got %v", env.GetWorkflowError())
	require.Equal(t, []domain.TaskType{domain.TaskMetricsCollection, domain.TaskMVCCCleanup}, f.calls)
	require.Len(t, f.recorded, 1, "the job is recorded even though the workflow was cancelled")
	job := f.recorded[0]
	require.Equal(t, domain.StateCancelled, job.State)
	require.Equal(t, domain.StateSucceeded, job.Tasks[0].State)
	require.Equal(t, domain.StateCancelled, job.Tasks[1].State)
	require.Equal(t, domain.StateCancelled, job.Tasks[2].State)
}

func TestProgressQueryWhileRunning(t *testing.T) {
	env, f := newEnv(t, inWindowTime)
	var mid domain.Job
	f.behave[domain.TaskFragmentationMonitoring] = func(ctx context.Context, attempt int32) (activities.TaskOutput, error) {
		return activities.TaskOutput{Summary: "2 relations HIGH", Attempt: int(attempt)}, nil
	}
	// Query from inside the second task, while it runs.
	f.behave[domain.TaskQuotaCheck] = func(ctx context.Context, attempt int32) (activities.TaskOutput, error) {
		v, err := env.QueryWorkflow(ProgressQuery)
		if err != nil {
			return activities.TaskOutput{}, err
		}
		if err := v.Get(&mid); err != nil {
			return activities.TaskOutput{}, err
		}
		return activities.TaskOutput{Summary: "12 % of quota", Attempt: int(attempt)}, nil
	}
	env.ExecuteWorkflow(MaintenanceWorkflowName, input(domain.TaskFragmentationMonitoring, domain.TaskQuotaCheck))
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, domain.StateRunning, mid.State)
	require.Equal(t, domain.StateSucceeded, mid.Tasks[0].State)
	require.Equal(t, "2 relations HIGH", mid.Tasks[0].ResultSummary)
	require.Equal(t, domain.StateRunning, mid.Tasks[1].State)
	require.InDelta(t, 50, mid.ProgressPct, 0.01)
}
