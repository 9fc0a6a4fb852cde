package testsuite

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
)

// A schedule with task_dependencies on the real dev server: the
// independent branches run at the same time (both activities are scheduled
// before either completes, as the history shows), the dependent task after
// its prerequisite; a cycle is refused with 400.
func TestTaskGraphOnDevServer(t *testing.T) {
	e := NewEnv(t, EnvOptions{StepDelay: 200 * time.Millisecond})
	ctx := context.Background()
	m, q, f := domain.TaskMetricsCollection, domain.TaskQuotaCheck, domain.TaskFragmentationMonitoring

	var p api.Problem
	status := e.callProblem(http.MethodPost, "/schedules", e.Token(api.ScopeWrite), map[string]any{
		"name": "cyclic", "tasks": []string{"metrics_collection", "quota_check"},
		"task_dependencies": []map[string]any{
			{"task_type": "quota_check", "depends_on": []string{"metrics_collection"}},
			{"task_type": "metrics_collection", "depends_on": []string{"quota_check"}},
		}}, &p)
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, p.Detail, "dependency cycle")
	require.Equal(t, "task_dependencies", p.Field)

	spec := domain.NewScheduleSpec("demo")
	spec.Name, spec.Enabled = "Graph", false
	spec.Tasks = []domain.TaskType{m, q, f}
	spec.TaskDependencies = []domain.TaskDependency{{TaskType: q, DependsOn: []domain.TaskType{m}}}
	sc, err := e.Service.CreateSchedule(ctx, spec, "test")
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Service.DeleteSchedule(ctx, sc.ID, "test") })
	got, err := e.Service.GetSchedule(ctx, sc.ID)
	require.NoError(t, err)
	require.Equal(t, spec.TaskDependencies, got.TaskDependencies, "the dependencies are stored in the Temporal Schedule")

	job, err := e.Service.RunSchedule(ctx, sc.ID, true, "test")
	require.NoError(t, err)
	job = e.WaitJob(job.ID, 2*time.Minute, Terminal)
	require.Equal(t, domain.StateSucceeded, job.State, job.ErrorMessage)

	// In the history: metrics_collection and fragmentation_monitoring are
	// both scheduled before the first completion; quota_check only after
	// metrics_collection completed.
	scheduled := map[int64]string{}
	var order []string
	iter := e.Client.GetWorkflowHistory(ctx, job.ID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(t, err)
		switch ev.GetEventType() {
		case enums.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			name := ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
			scheduled[ev.GetEventId()] = name
			order = append(order, "scheduled "+name)
		case enums.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			order = append(order, "completed "+scheduled[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()])
		}
	}
	t.Logf("activity order: %s", strings.Join(order, ", "))
	idx := func(s string) int {
		for i, o := range order {
			if o == s {
				return i
			}
		}
		t.Fatalf("%q not in the history: %v", s, order)
		return -1
	}
	// The first completion of a task activity (the job's own steps, such
	// as predict_durations, come before the tasks).
	isTask := func(name string) bool { return domain.TaskType(name).Valid() }
	firstCompletion := len(order)
	for i, o := range order {
		if name, ok := strings.CutPrefix(o, "completed "); ok && isTask(name) {
			firstCompletion = i
			break
		}
	}
	require.Less(t, idx("scheduled metrics_collection"), firstCompletion)
	require.Less(t, idx("scheduled fragmentation_monitoring"), firstCompletion, "the independent task started beside the first")
	require.Greater(t, idx("scheduled quota_check"), idx("completed metrics_collection"))
	e.RecordHistory(job.ID, "maintenance_task_graph")
}
