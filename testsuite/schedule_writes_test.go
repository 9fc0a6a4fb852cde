package testsuite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/daemon"
	"github.com/themis-maintenance/themis/starter"
	"github.com/themis-maintenance/themis/workflows"
)

// These tests run several starter.Service instances, each on a client of
// its own, against one dev server: what two API replicas do. Nothing in
// the service may rely on a lock of its own process.

// replica returns another "API process" on e's namespace and task queue:
// its own Temporal client and service, with the worker's capabilities.
func replica(t *testing.T, e *Env, namespace string) *starter.Service {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: e.Config.Temporal.Address, Namespace: namespace, Logger: logAdapter(t)})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return starter.New(c, starter.Options{
		Namespace: namespace, TaskQueue: e.TaskQueue, Address: e.Config.Temporal.Address,
		Targets: e.Config.TargetInfos(), DefaultTarget: "demo",
		Capabilities: e.Deps.Registry.Capabilities(),
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

// pausedInTemporal reads the Schedule's paused state from Temporal itself.
func pausedInTemporal(t *testing.T, e *Env, id string) bool {
	t.Helper()
	d, err := e.Client.ScheduleClient().GetHandle(context.Background(), id).Describe(context.Background())
	require.NoError(t, err)
	return d.Schedule.State != nil && d.Schedule.State.Paused
}

// enable→disable in quick succession ends paused, through the API (and
// across two replicas), read back from Temporal, not from the API.
func TestScheduleEnableThenDisableEndsPaused(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	other := replica(t, e, "default")
	ctx := context.Background()
	sc := e.CreateSchedule("Toggle", domain.TaskQuotaCheck)
	write := e.Token(api.ScopeWrite)
	path := "/schedules/" + sc.ID
	for round := range 3 {
		var got domain.Schedule
		require.Equal(t, http.StatusOK, e.call("PATCH", path, write, map[string]any{"enabled": true}, &got))
		require.True(t, got.Enabled, "round %d: the answer is the stored state", round)
		require.Equal(t, http.StatusOK, e.call("PATCH", path, write, map[string]any{"enabled": false}, &got))
		require.False(t, got.Enabled, "round %d", round)
		require.Zero(t, got.NextRunMs, "round %d: a paused schedule has no next run", round)
		require.True(t, pausedInTemporal(t, e, sc.ID), "round %d: Temporal shows the Schedule paused", round)
	}
	// The same through two replicas, one call each.
	for round := range 3 {
		up, err := e.Service.UpdateSchedule(ctx, sc.ID, "a", func(s *domain.ScheduleSpec) error { s.Enabled = true; return nil })
		require.NoError(t, err)
		require.True(t, up.Enabled)
		down, err := other.UpdateSchedule(ctx, sc.ID, "b", func(s *domain.ScheduleSpec) error { s.Enabled = false; return nil })
		require.NoError(t, err)
		require.False(t, down.Enabled)
		require.True(t, pausedInTemporal(t, e, sc.ID), "replica round %d", round)
	}
	time.Sleep(time.Second)
	require.True(t, pausedInTemporal(t, e, sc.ID), "and it stays paused")
}

// 20 concurrent read-modify-write updates through two replicas: none is
// lost, and every answer is a state Temporal stored (its own change in it,
// on the way to the final one).
func TestConcurrentScheduleUpdatesLoseNothing(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	services := []*starter.Service{e.Service, replica(t, e, "default")}
	ctx := context.Background()
	sc := e.CreateSchedule("Concurrent", domain.TaskQuotaCheck)
	const n = 20
	answers := make([]domain.Schedule, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			suffix := fmt.Sprintf(" w%02d", i)
			answers[i], errs[i] = services[i%2].UpdateSchedule(ctx, sc.ID, fmt.Sprintf("p%02d", i), func(s *domain.ScheduleSpec) error {
				s.Description += suffix
				s.Enabled = i%2 == 0 // the paused state travels in the same update
				return nil
			})
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d concurrent updates through 2 replicas took %s", n, time.Since(began))
	final, err := e.Service.GetSchedule(ctx, sc.ID)
	require.NoError(t, err)
	for i := range n {
		require.NoError(t, errs[i], "update %d", i)
		suffix := fmt.Sprintf(" w%02d", i)
		require.Equal(t, 1, strings.Count(final.Description, suffix), "update %d is in the final state exactly once: %q", i, final.Description)
	}
	for i := range n {
		suffix := fmt.Sprintf(" w%02d", i)
		require.True(t, strings.HasSuffix(answers[i].Description, suffix), "answer %d is the state its own write stored: %q", i, answers[i].Description)
		require.True(t, strings.HasPrefix(final.Description, answers[i].Description),
			"answer %d (%q) is a state on the way to the final one (%q)", i, answers[i].Description, final.Description)
	}
	require.Equal(t, final.Enabled, !pausedInTemporal(t, e, sc.ID))
}

// Two replicas creating one name at once: exactly one succeeds, the others
// are 409 naming it. A rename frees the old name and takes the new one.
func TestScheduleNamesUniqueAcrossReplicas(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	services := []*starter.Service{e.Service, replica(t, e, "default")}
	ctx := context.Background()
	name := fmt.Sprintf("Unique %d", time.Now().UnixNano())
	const n = 6
	var (
		mu      sync.Mutex
		created []domain.Schedule
		errs    []error
		wg      sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			spec := domain.NewScheduleSpec("demo")
			spec.Name, spec.Tasks, spec.Enabled = name, []domain.TaskType{domain.TaskQuotaCheck}, false
			<-start
			sc, err := services[i%2].CreateSchedule(ctx, spec, fmt.Sprintf("p%d", i))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				created = append(created, sc)
			} else {
				errs = append(errs, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	for _, sc := range created {
		t.Cleanup(func() { _ = e.Service.DeleteSchedule(context.Background(), sc.ID, "test") })
	}
	require.Len(t, created, 1, "exactly one create succeeds (errors: %v)", errs)
	for _, err := range errs {
		require.True(t, errors.Is(err, domain.ErrConflict), "%v", err)
		require.Contains(t, err.Error(), created[0].ID, "the conflict names the schedule that has the name")
	}

	// Rename: the new name is taken, the old one free again.
	renamed := name + " renamed"
	up, err := services[1].UpdateSchedule(ctx, created[0].ID, "r", func(s *domain.ScheduleSpec) error { s.Name = renamed; return nil })
	require.NoError(t, err)
	require.Equal(t, renamed, up.Name)
	again := domain.NewScheduleSpec("demo")
	again.Name, again.Tasks, again.Enabled = name, []domain.TaskType{domain.TaskQuotaCheck}, false
	reused, err := services[0].CreateSchedule(ctx, again, "test")
	require.NoError(t, err, "the old name is free after the rename")
	t.Cleanup(func() { _ = e.Service.DeleteSchedule(context.Background(), reused.ID, "test") })
	again.Name = renamed
	_, err = services[0].CreateSchedule(ctx, again, "test")
	require.True(t, errors.Is(err, domain.ErrConflict), "the new name is taken: %v", err)
	_, err = services[1].UpdateSchedule(ctx, reused.ID, "r", func(s *domain.ScheduleSpec) error { s.Name = renamed; return nil })
	require.True(t, errors.Is(err, domain.ErrConflict), "renaming onto a taken name: %v", err)

	// Delete frees the name.
	require.NoError(t, services[1].DeleteSchedule(ctx, up.ID, "test"))
	again.Name = renamed
	third, err := services[0].CreateSchedule(ctx, again, "test")
	require.NoError(t, err, "a deleted schedule's name is free")
	require.NoError(t, services[0].DeleteSchedule(ctx, third.ID, "test"))
}

// The defaults are installed once per namespace: a default an operator
// deleted is not brought back by a later start (of any replica). The
// SQLite target's defaults leave out what SQLite cannot run. Runs in a
// namespace of its own, as the default ids are fixed.
func TestDeletedDefaultStaysDeleted(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	ctx := context.Background()
	ns := fmt.Sprintf("themis-defaults-%d", time.Now().UnixNano())
	_, err := e.Client.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return starter.EnsureSearchAttributes(ctx, e.Client, ns) == nil
	}, 30*time.Second, 250*time.Millisecond, "the namespace takes search attributes")

	first := replica(t, e, ns)
	require.Eventually(t, func() bool {
		err = first.EnsureDefaultSchedules(ctx, "demo")
		return err == nil
	}, 30*time.Second, 500*time.Millisecond, "defaults installed: %v", err)
	weekly, err := first.GetSchedule(ctx, "weekly-maintenance")
	require.NoError(t, err)
	require.Equal(t, []domain.TaskType{domain.TaskConsistencyCheck, domain.TaskMVCCCleanup}, weekly.Tasks)
	require.Equal(t, "Default weekly maintenance (replica_validation, performance_analysis not supported by sqlite)", weekly.Description)

	require.NoError(t, first.DeleteSchedule(ctx, "weekly-maintenance", "operator"))
	for range 2 { // two more starts, each a new replica
		require.NoError(t, replica(t, e, ns).EnsureDefaultSchedules(ctx, "demo"))
	}
	_, err = first.GetSchedule(ctx, "weekly-maintenance")
	require.True(t, errors.Is(err, domain.ErrNotFound), "the deleted default stays deleted: %v", err)
	_, err = first.GetSchedule(ctx, "daily-maintenance")
	require.NoError(t, err, "the others are still there")
}

// A task the target's driver cannot run is 400 naming the task and the
// driver, on create and on update, through the real gateway.
func TestUnsupportedTaskIs400(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	svc := replica(t, e, "default")
	h, err := daemon.Handler(svc, e.Config, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), daemon.HandlerOptions{})
	require.NoError(t, err)
	srv := httptest.NewServer(apitest.NewValidator(t).Handler(t, h))
	t.Cleanup(srv.Close)
	other := &Env{T: t, API: srv, tokens: e.tokens}
	write := e.Token(api.ScopeWrite)

	body := map[string]any{"name": fmt.Sprintf("Unsupported %d", time.Now().UnixNano()), "target": "demo",
		"tasks": []string{"quota_check", "replica_validation"}, "enabled": false}
	var p api.Problem
	require.Equal(t, http.StatusBadRequest, other.callProblem("POST", "/schedules", write, body, &p))
	require.Equal(t, api.CodeValidationFailed, p.Code)
	require.Equal(t, "tasks[1]", p.Field)
	require.Contains(t, p.Detail, "replica_validation")
	require.Contains(t, p.Detail, "sqlite")

	sc := e.CreateSchedule("Supported", domain.TaskQuotaCheck)
	require.Equal(t, http.StatusBadRequest, other.callProblem("PATCH", "/schedules/"+sc.ID, write,
		map[string]any{"tasks": []string{"performance_analysis"}}, &p))
	require.Contains(t, p.Detail, "performance_analysis")
	require.Contains(t, p.Detail, "sqlite")
	still, err := svc.GetSchedule(context.Background(), sc.ID)
	require.NoError(t, err)
	require.Equal(t, []domain.TaskType{domain.TaskQuotaCheck}, still.Tasks, "a refused update changes nothing")
}

// callProblem is call for answers that are problems: it decodes p from an
// error answer.
func (e *Env) callProblem(method, path, token string, body any, p *api.Problem) int {
	e.T.Helper()
	raw, err := json.Marshal(body)
	require.NoError(e.T, err)
	req, err := http.NewRequest(method, e.API.URL+"/api/v1/maintenance"+path, bytes.NewReader(raw))
	require.NoError(e.T, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.T, err)
	defer resp.Body.Close()
	*p = api.Problem{}
	if resp.StatusCode >= 400 {
		require.NoError(e.T, json.NewDecoder(resp.Body).Decode(p))
	}
	return resp.StatusCode
}

// A manual run of a schedule with an active job is 409 naming the job; of
// concurrent runs through two replicas exactly one starts. Once the job has
// ended, the next run starts.
func TestManualRunConflictsWithActiveJob(t *testing.T) {
	e := NewEnv(t, EnvOptions{StepDelay: 300 * time.Millisecond})
	services := []*starter.Service{e.Service, replica(t, e, "default")}
	ctx := context.Background()
	sc := e.CreateSchedule("Busy", domain.TaskFragmentationMonitoring, domain.TaskIndexFragmentationReport)

	const n = 6
	var (
		mu      sync.Mutex
		started []domain.Job
		active  []*domain.ActiveJobError
		wg      sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			j, err := services[i%2].RunSchedule(ctx, sc.ID, true, fmt.Sprintf("p%d", i))
			mu.Lock()
			defer mu.Unlock()
			var ae *domain.ActiveJobError
			switch {
			case err == nil:
				started = append(started, j)
			case errors.As(err, &ae):
				active = append(active, ae)
			default:
				t.Errorf("run %d: %v", i, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	require.Len(t, started, 1, "exactly one manual run starts")
	require.Len(t, active, n-1)
	for _, ae := range active {
		require.Equal(t, started[0].ID, ae.JobID, "the 409 names the active job")
	}
	require.True(t, strings.HasPrefix(started[0].ID, workflows.ManualJobID(sc.ID, 0)[:len(sc.ID)+len("-manual-")]))

	// Through the API: 409 with active_job_id.
	var p api.Problem
	require.Equal(t, http.StatusConflict, e.callProblem("POST", "/schedules/"+sc.ID+"/run", e.Token(api.ScopeAdmin), map[string]any{"force": true}, &p))
	require.Equal(t, started[0].ID, p.ActiveJobID)

	_, err := e.Service.CancelJob(ctx, started[0].ID, "test")
	require.NoError(t, err)
	e.WaitJob(started[0].ID, time.Minute, Terminal)
	// The job reads cancelled as soon as its tasks are; its workflow
	// closes a moment later, and until then the schedule's job is active.
	_ = e.Client.GetWorkflow(ctx, started[0].ID, "").Get(ctx, nil)
	next, err := services[1].RunSchedule(ctx, sc.ID, true, "test")
	require.NoError(t, err, "the ended job's claim is taken over")
	require.NotEqual(t, started[0].ID, next.ID)
	require.Greater(t, next.ID, started[0].ID, "job ids sort by start")
	_, _ = e.Service.CancelJob(ctx, next.ID, "test")
	e.WaitJob(next.ID, time.Minute, Terminal)
}

// forgetDefaultsInstalled ends the "defaults installed for demo" claim, so
// that the next EnsureDefaultSchedules installs the defaults again: tests
// that want them share one namespace with tests that delete them.
func forgetDefaultsInstalled(t *testing.T, e *Env) {
	t.Helper()
	err := e.Client.TerminateWorkflow(context.Background(), workflows.ClaimID(workflows.ClaimDefaultsInstalled, "demo"), "", "test: install the defaults again")
	var nf *serviceerror.NotFound
	if err != nil && !errors.As(err, &nf) {
		t.Fatalf("forget defaults installed: %v", err)
	}
}

// The default Weekly of the SQLite demo, as installed (without what SQLite
// cannot run), succeeds.
func TestDefaultWeeklySucceedsOnSQLite(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	svc := replica(t, e, "default")
	caps := e.Deps.Registry.Capabilities()
	var weekly domain.ScheduleSpec
	for _, d := range domain.DefaultSchedules("demo", "sqlite", domain.SupportedBy(caps, "sqlite")) {
		if d.ID == "weekly-maintenance" {
			weekly = d.Spec
		}
	}
	require.Equal(t, []domain.TaskType{domain.TaskConsistencyCheck, domain.TaskMVCCCleanup}, weekly.Tasks)
	weekly.Name = fmt.Sprintf("Weekly copy %d", time.Now().UnixNano())
	sc, err := svc.CreateSchedule(context.Background(), weekly, "test")
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.DeleteSchedule(context.Background(), sc.ID, "test") })
	job, err := svc.RunSchedule(context.Background(), sc.ID, true, "test")
	require.NoError(t, err)
	done := e.WaitJob(job.ID, 2*time.Minute, Terminal)
	require.Equal(t, domain.StateSucceeded, done.State, done.ErrorMessage)
}
