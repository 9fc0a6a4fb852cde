package testsuite

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/temporalclient"
	"github.com/themis-maintenance/themis/starter"
)

// callCounter counts the gRPC calls a Temporal client makes, by method.
type callCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *callCounter) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	c.mu.Lock()
	c.calls[method]++
	c.mu.Unlock()
	return invoker(ctx, method, req, reply, cc, opts...)
}

func (c *callCounter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.calls {
		n += v
	}
	return n
}

// replica builds a second API service (another API replica) on the Env's
// Temporal namespace and task queue, with its own counted client.
func (e *Env) replica(t *testing.T, interval time.Duration) (*starter.Service, *callCounter) {
	t.Helper()
	counter := &callCounter{calls: map[string]int{}}
	copts, err := temporalclient.Options(e.Config.Temporal, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	copts.Logger = logAdapter(t)
	copts.ConnectionOptions.DialOptions = append(copts.ConnectionOptions.DialOptions, grpc.WithChainUnaryInterceptor(counter.intercept))
	c, err := client.Dial(copts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	svc := starter.New(c, starter.Options{
		Namespace: "default", TaskQueue: e.TaskQueue, Targets: e.Config.TargetInfos(), DefaultTarget: "demo",
		ReadModelInterval: interval, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return svc, counter
}

// Lists are served from the replica's read model: once it is loaded, list
// requests make no Temporal call at all, whatever their number; the
// replica's own writes show at once; and another replica's writes show
// after its background refresh.
func TestReadModelListsWithoutTemporalCalls(t *testing.T) {
	e := NewEnv(t, EnvOptions{StepDelay: 300 * time.Millisecond})
	ctx := context.Background()
	sc := e.CreateSchedule("readmodel", domain.TaskQuotaCheck)
	job, err := e.Service.RunSchedule(ctx, sc.ID, true, "test")
	if err != nil {
		t.Fatal(err)
	}
	e.WaitJob(job.ID, time.Minute, Terminal)
	// The workflow has closed (its record is final) before the lists load.
	_ = e.Client.GetWorkflow(ctx, job.ID, "").Get(ctx, nil)

	// A replica that refreshes only on demand, at most once an hour.
	quiet, calls := e.replica(t, time.Hour)
	first, err := quiet.ListSchedules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(first.Schedules, func(s domain.Schedule) bool { return s.ID == sc.ID }) {
		t.Fatalf("schedule %s not in the first list: %+v", sc.ID, first.Schedules)
	}
	if now := time.Now().UnixMilli(); first.AsOfMs <= 0 || first.AsOfMs > now {
		t.Errorf("as_of_ms %d, now %d", first.AsOfMs, now)
	}
	loadCalls := calls.total()
	const requests = 500
	start := time.Now()
	for i := 0; i < requests; i++ {
		if _, err := quiet.ListSchedules(ctx); err != nil {
			t.Fatal(err)
		}
		page, err := quiet.ListJobs(ctx, api.JobFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			k := slices.IndexFunc(page.Jobs, func(j domain.Job) bool { return j.ID == job.ID })
			if k < 0 || page.Jobs[k].State != domain.StateSucceeded || len(page.Jobs[k].Tasks) != 1 || page.Jobs[k].Tasks[0].State != domain.StateSucceeded {
				t.Errorf("job %s in the list: %+v", job.ID, page.Jobs)
			}
		}
		if _, err := quiet.ListDrills(ctx, 50); err != nil {
			t.Fatal(err)
		}
		if _, err := quiet.Status(ctx); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	if extra := calls.total() - loadCalls; extra != 0 {
		t.Errorf("%d list requests made %d Temporal calls after the first load (want 0): %v", 4*requests, extra, calls.calls)
	}
	t.Logf("read model: first load %d Temporal calls; then %d list requests in %s (%.0f req/s), 0 calls",
		loadCalls, 4*requests, elapsed.Round(time.Millisecond), float64(4*requests)/elapsed.Seconds())

	// Its own write shows in its next list, without a refresh.
	spec := domain.NewScheduleSpec("demo")
	spec.Name = fmt.Sprintf("readmodel own %d", time.Now().UnixNano())
	spec.Tasks = []domain.TaskType{domain.TaskQuotaCheck}
	own, err := quiet.CreateSchedule(ctx, spec, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = quiet.DeleteSchedule(context.Background(), own.ID, "test") })
	list, err := quiet.ListSchedules(ctx)
	if err != nil || !slices.ContainsFunc(list.Schedules, func(s domain.Schedule) bool { return s.ID == own.ID }) {
		t.Errorf("own write not listed: %v %+v", err, list.Schedules)
	}

	// A running job's progress is read with one describe: the task states
	// from the progress memo, the running task's from its heartbeat; no
	// workflow query.
	slow := e.CreateSchedule("readmodel progress", domain.TaskQuotaCheck, domain.TaskIndexRebuild)
	run, err := e.Service.RunSchedule(ctx, slow.ID, true, "test")
	if err != nil {
		t.Fatal(err)
	}
	e.WaitJob(run.ID, time.Minute, func(j domain.Job) bool {
		return j.Tasks[1].State == domain.StateRunning && j.Tasks[1].ProgressPct > 0
	})
	queries := func() int {
		calls.mu.Lock()
		defer calls.mu.Unlock()
		return calls.calls["/temporal.api.workflowservice.v1.WorkflowService/QueryWorkflow"]
	}
	before := queries()
	got, err := quiet.GetJob(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Tasks[0].State != domain.StateSucceeded || got.Tasks[1].State != domain.StateRunning || got.Tasks[1].ProgressPct <= 0 {
		t.Errorf("running job read without a query: %+v", got.Tasks)
	}
	if n := queries() - before; n != 0 {
		t.Errorf("GET of a running job made %d workflow queries, want 0", n)
	}
	e.WaitJob(run.ID, time.Minute, Terminal)
	_ = e.Client.GetWorkflow(ctx, run.ID, "").Get(ctx, nil)
	e.RecordHistory(run.ID, "maintenance_progress_memo")

	// Another replica's writes show after the background refresh: a new
	// schedule, a changed task list (only a describe shows it), a deletion.
	live, _ := e.replica(t, 200*time.Millisecond)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go live.RunReadModel(rctx)
	other := e.CreateSchedule("readmodel other", domain.TaskQuotaCheck)
	eventually := func(what string, ok func([]domain.Schedule) bool) {
		t.Helper()
		// A delete shows when Temporal's schedule list drops the entry, or
		// when the read model's revisits (20 a second, least recently read
		// first) reach it: in this namespace, shared with every other
		// test's schedules and loaded by them, that can take longer than
		// the list's own lag.
		deadline := time.Now().Add(90 * time.Second)
		for {
			l, err := live.ListSchedules(ctx)
			if err == nil && ok(l.Schedules) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not seen by the other replica within 90 s: %v", what, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	find := func(l []domain.Schedule, id string) (domain.Schedule, bool) {
		i := slices.IndexFunc(l, func(s domain.Schedule) bool { return s.ID == id })
		if i < 0 {
			return domain.Schedule{}, false
		}
		return l[i], true
	}
	eventually("create", func(l []domain.Schedule) bool { _, ok := find(l, other.ID); return ok })
	if _, err := e.Service.UpdateSchedule(ctx, other.ID, "test", func(s *domain.ScheduleSpec) error {
		s.Tasks = []domain.TaskType{domain.TaskQuotaCheck, domain.TaskStatisticsUpdate}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	eventually("task list edit", func(l []domain.Schedule) bool {
		s, ok := find(l, other.ID)
		return ok && len(s.Tasks) == 2
	})
	if err := e.Service.DeleteSchedule(ctx, other.ID, "test"); err != nil {
		t.Fatal(err)
	}
	eventually("delete", func(l []domain.Schedule) bool { _, ok := find(l, other.ID); return !ok })
}
