package workflows

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/themis-maintenance/themis/activities"
	"github.com/themis-maintenance/themis/domain"
)

// freeLock stands in for the lock workflow of a target nobody else uses:
// every request is granted at once (from the test environment's main loop,
// after the request activity completed); releases are recorded.
type freeLock struct {
	mu       sync.Mutex
	pending  []activities.LockRequest
	requests []activities.LockRequest
	releases []LockRelease
	// hold, when set, keeps requests unanswered (the test answers them).
	hold bool
}

func installFreeLock(env *testsuite.TestWorkflowEnvironment) *freeLock {
	l := &freeLock{}
	env.RegisterActivityWithOptions(func(ctx context.Context, in activities.TargetSlotInput) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.pending = append(l.pending, in.Request)
		l.requests = append(l.requests, in.Request)
		return nil
	}, activity.RegisterOptions{Name: RequestTargetSlotActivity})
	env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, err error) {
		if info.ActivityType.Name != RequestTargetSlotActivity || err != nil {
			return
		}
		l.mu.Lock()
		pending := l.pending
		l.pending = nil
		hold := l.hold
		l.mu.Unlock()
		for _, r := range pending {
			if !hold {
				_ = env.SignalWorkflowByID(r.WorkflowID, LockGrantedSignal, LockGrant{RequestID: r.RequestID})
			}
		}
	})
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", LockReleaseSignal, mock.Anything).Return(
		func(_, _, _, _ string, arg any) error {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.releases = append(l.releases, arg.(LockRelease))
			return nil
		})
	return l
}

func (l *freeLock) snapshot() ([]activities.LockRequest, []LockRelease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]activities.LockRequest(nil), l.requests...), append([]LockRelease(nil), l.releases...)
}

// lockEnv runs TargetLockWorkflow alone; its signals to requesters are
// recorded, and requesters named in dead are closed (signalling fails).
type lockEnv struct {
	env  *testsuite.TestWorkflowEnvironment
	mu   sync.Mutex
	sent []sentSignal
	dead map[string]bool
	gone []string // what the holder check reports
}

type sentSignal struct {
	to, name, request string
	holders           []string
}

func newLockEnv(t *testing.T) *lockEnv {
	var s testsuite.WorkflowTestSuite
	e := &lockEnv{env: s.NewTestWorkflowEnvironment(), dead: map[string]bool{}}
	e.env.RegisterWorkflowWithOptions(TargetLockWorkflow, workflow.RegisterOptions{Name: TargetLockWorkflowName})
	e.env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(
		func(_, workflowID, _, name string, arg any) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.dead[workflowID] {
				return serviceerror.NewNotFound("workflow closed")
			}
			s := sentSignal{to: workflowID, name: name}
			switch a := arg.(type) {
			case LockGrant:
				s.request = a.RequestID
			case LockQueued:
				s.request, s.holders = a.RequestID, a.Holders
			}
			e.sent = append(e.sent, s)
			return nil
		})
	e.env.RegisterActivityWithOptions(func(ctx context.Context, holders []activities.LockHolder) ([]string, error) {
		e.mu.Lock()
		defer e.mu.Unlock()
		var out []string
		for _, h := range holders {
			for _, g := range e.gone {
				if g == h.WorkflowID {
					out = append(out, h.RequestID)
				}
			}
		}
		return out, nil
	}, activity.RegisterOptions{Name: GoneHoldersActivity})
	return e
}

func req(job string) activities.LockRequest {
	return activities.LockRequest{RequestID: job + "/run/task-1", WorkflowID: job, RunID: "run", Owner: job, Task: "mvcc_cleanup", MaxSlots: 0}
}

func (e *lockEnv) at(d time.Duration, f func()) { e.env.RegisterDelayedCallback(f, d) }

func (e *lockEnv) request(d time.Duration, r activities.LockRequest) {
	e.at(d, func() { e.env.SignalWorkflow(LockRequestSignal, r) })
}

func (e *lockEnv) release(d time.Duration, job string) {
	e.at(d, func() { e.env.SignalWorkflow(LockReleaseSignal, LockRelease{RequestID: job + "/run/task-1"}) })
}

// grants lists the jobs granted a slot, in order.
func (e *lockEnv) grants() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, s := range e.sent {
		if s.name == LockGrantedSignal {
			out = append(out, s.to)
		}
	}
	return out
}

func (e *lockEnv) state(t *testing.T) TargetLockInput {
	v, err := e.env.QueryWorkflow(LockStateQuery)
	require.NoError(t, err)
	var s TargetLockInput
	require.NoError(t, v.Get(&s))
	return s
}

func holderOwners(s TargetLockInput) []string {
	var out []string
	for _, h := range s.Holders {
		out = append(out, h.Owner)
	}
	return out
}

// One slot: requests are granted one at a time, first come first served;
// a waiting requester is told whom it waits for; the lock ends when idle.
func TestTargetLockGrantsOneSlotFIFO(t *testing.T) {
	e := newLockEnv(t)
	e.request(time.Second, req("job-a"))
	e.request(2*time.Second, req("job-b"))
	e.request(3*time.Second, req("job-c"))
	e.at(4*time.Second, func() {
		s := e.state(t)
		require.Equal(t, []string{"job-a"}, holderOwners(s))
		require.Len(t, s.Queue, 2)
		require.Equal(t, []string{"job-a"}, e.grants())
	})
	e.release(10*time.Second, "job-a")
	e.at(11*time.Second, func() { require.Equal(t, []string{"job-a", "job-b"}, e.grants()) })
	e.release(20*time.Second, "job-b")
	e.release(30*time.Second, "job-c")
	e.env.ExecuteWorkflow(TargetLockWorkflowName, TargetLockInput{Target: "demo", MaxSlots: 1})
	require.True(t, e.env.IsWorkflowCompleted())
	require.NoError(t, e.env.GetWorkflowError(), "an idle lock ends")
	require.Equal(t, []string{"job-a", "job-b", "job-c"}, e.grants())

	var queuedB []string
	for _, s := range e.sent {
		if s.name == LockQueuedSignal && s.to == "job-b" && queuedB == nil {
			queuedB = s.holders
		}
	}
	require.Equal(t, []string{"job-a (mvcc_cleanup)"}, queuedB, "job-b learns it waits for job-a")
}

// N slots: up to N holders at once; the newest request's max applies.
func TestTargetLockGrantsNSlots(t *testing.T) {
	e := newLockEnv(t)
	for i, j := range []string{"job-a", "job-b", "job-c"} {
		r := req(j)
		r.MaxSlots = 2
		e.request(time.Duration(i+1)*time.Second, r)
	}
	e.at(5*time.Second, func() {
		s := e.state(t)
		require.Equal(t, 2, s.MaxSlots)
		require.Equal(t, []string{"job-a", "job-b"}, holderOwners(s))
		require.Len(t, s.Queue, 1)
	})
	e.release(10*time.Second, "job-b")
	e.at(11*time.Second, func() { require.Equal(t, []string{"job-a", "job-c"}, holderOwners(e.state(t))) })
	e.release(20*time.Second, "job-a")
	e.release(21*time.Second, "job-c")
	e.env.ExecuteWorkflow(TargetLockWorkflowName, TargetLockInput{Target: "demo", MaxSlots: 1})
	require.NoError(t, e.env.GetWorkflowError())
	require.Equal(t, []string{"job-a", "job-b", "job-c"}, e.grants())
}

// A duplicate delivery (a retried request activity) is not queued twice; a
// withdrawn request is not granted; a closed requester is skipped.
func TestTargetLockDuplicateWithdrawnAndClosedRequesters(t *testing.T) {
	e := newLockEnv(t)
	e.dead["job-dead"] = true
	e.request(time.Second, req("job-a"))
	e.request(2*time.Second, req("job-a"))
	e.request(3*time.Second, req("job-gaveup"))
	e.request(4*time.Second, req("job-dead"))
	e.request(5*time.Second, req("job-b"))
	e.release(6*time.Second, "job-gaveup") // the window closed while it waited
	e.at(7*time.Second, func() {
		s := e.state(t)
		require.Len(t, s.Queue, 1, "job-a once, job-gaveup withdrawn, job-dead dropped: %+v", s.Queue)
	})
	e.release(10*time.Second, "job-a")
	e.release(20*time.Second, "job-b")
	e.env.ExecuteWorkflow(TargetLockWorkflowName, TargetLockInput{Target: "demo", MaxSlots: 1})
	require.NoError(t, e.env.GetWorkflowError())
	require.Equal(t, []string{"job-a", "job-b"}, e.grants())
}

// A holder that closed without releasing (terminated) is found by the
// periodic holder check and its slot handed on.
func TestTargetLockFreesSlotOfHolderThatDied(t *testing.T) {
	e := newLockEnv(t)
	e.request(time.Second, req("job-a"))
	e.request(2*time.Second, req("job-b"))
	e.at(3*time.Second, func() {
		e.mu.Lock()
		e.gone = []string{"job-a"} // terminated while holding
		e.mu.Unlock()
	})
	var grantedAt time.Duration
	e.at(40*time.Second, func() {
		require.Equal(t, []string{"job-a", "job-b"}, e.grants(), "job-b got the slot after the check (30 s)")
		require.Equal(t, []string{"job-b"}, holderOwners(e.state(t)))
		grantedAt = 40 * time.Second
	})
	e.release(50*time.Second, "job-b")
	e.env.ExecuteWorkflow(TargetLockWorkflowName, TargetLockInput{Target: "demo", MaxSlots: 1})
	require.NoError(t, e.env.GetWorkflowError())
	require.NotZero(t, grantedAt)
}

// After ContinueAfter signals the lock continues as new, carrying its
// holders and queue.
func TestTargetLockContinuesAsNew(t *testing.T) {
	e := newLockEnv(t)
	for i, j := range []string{"job-a", "job-b", "job-c", "job-d"} {
		e.request(time.Duration(i+1)*time.Second, req(j))
	}
	e.env.ExecuteWorkflow(TargetLockWorkflowName, TargetLockInput{Target: "demo", MaxSlots: 1, ContinueAfter: 3})
	err := e.env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &can), "got %v", err)
	require.Equal(t, TargetLockWorkflowName, can.WorkflowType.Name)
	var next TargetLockInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.Equal(t, []string{"job-a"}, holderOwners(next))
	require.Len(t, next.Queue, 3, "the signal that arrived with the third is carried too")
	require.Equal(t, 3, next.ContinueAfter)
}

// A job whose heavy task must wait: state waiting (progress query, search
// attribute) while queued, the Temporal UI says whom for; light tasks never
// ask; the slot is released after the heavy task.
func TestMaintenanceWaitsForTargetSlot(t *testing.T) {
	env, f := newEnv(t, inWindowTime)
	f.lock.hold = true
	id := "default-test-run-id/task-2"
	var during domain.Job
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(LockQueuedSignal, LockQueued{RequestID: id, Holders: []string{"other-job (index_rebuild)"}})
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(ProgressQuery)
		require.NoError(t, err)
		require.NoError(t, v.Get(&during))
		require.Equal(t, []domain.TaskType{domain.TaskMetricsCollection}, f.calls, "the heavy task waits")
	}, 10*time.Minute)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(LockGrantedSignal, LockGrant{RequestID: "an-older-request"}) // ignored
		env.SignalWorkflow(LockGrantedSignal, LockGrant{RequestID: id})
	}, 20*time.Minute)
	env.ExecuteWorkflow(MaintenanceWorkflowName, input(domain.TaskMetricsCollection, domain.TaskMVCCCleanup, domain.TaskQuotaCheck))
	require.NoError(t, env.GetWorkflowError())

	require.Equal(t, domain.StateWaiting, during.State)
	require.Equal(t, domain.StateSucceeded, during.Tasks[0].State)
	require.Equal(t, domain.StateWaiting, during.Tasks[1].State)
	require.Equal(t, "Waiting for target demo: held by other-job (index_rebuild)", during.Tasks[1].ResultSummary)

	job := result(t, env)
	require.Equal(t, domain.StateSucceeded, job.State, job.ErrorMessage)
	require.Equal(t, []domain.TaskType{domain.TaskMetricsCollection, domain.TaskMVCCCleanup, domain.TaskQuotaCheck}, f.calls)
	require.InDelta(t, float64((20 * time.Minute).Milliseconds()), job.Tasks[1].Details["waited_for_target_ms"], 1000, "%v", job.Tasks[1].Details)
	requests, releases := f.lock.snapshot()
	require.Len(t, requests, 1, "only the heavy task asks for a slot")
	require.Equal(t, id, requests[0].RequestID)
	require.Equal(t, "default-test-workflow-id", requests[0].Owner)
	require.Len(t, releases, 1)
	require.Equal(t, id, releases[0].RequestID)
}

// The wait counts against the window: when it closes while the job waits,
// the request is withdrawn and the remaining tasks are skipped, saying why.
func TestMaintenanceWindowClosesWhileWaiting(t *testing.T) {
	env, f := newEnv(t, inWindowTime) // 03:00, window 02–06
	f.lock.hold = true
	id := "default-test-run-id/task-1"
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(LockQueuedSignal, LockQueued{RequestID: id, Holders: []string{"long-job (mvcc_cleanup)"}})
	}, time.Second)
	env.ExecuteWorkflow(MaintenanceWorkflowName, input(domain.TaskIndexRebuild, domain.TaskQuotaCheck))
	require.NoError(t, env.GetWorkflowError())
	job := result(t, env)
	require.Empty(t, f.calls)
	require.Equal(t, domain.StateSkipped, job.State, job.ResultSummary)
	require.Contains(t, job.ResultSummary, "the maintenance window closed at 2026-11-22T06:00:00Z while waiting for target demo (held by long-job (mvcc_cleanup))")
	for _, tr := range job.Tasks {
		require.Equal(t, domain.StateSkipped, tr.State)
		require.Contains(t, tr.ResultSummary, "window closed")
	}
	_, releases := f.lock.snapshot()
	require.Len(t, releases, 1, "the request is withdrawn")
	require.Equal(t, id, releases[0].RequestID)
}

// Outcome counters are counted by the workflow, once per job and task.
func TestMaintenanceCountsOutcomesOnce(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	h := &countingHandler{counts: map[string]int64{}}
	s.SetMetricsHandler(h)
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(inWindowTime)
	f := &fakeTasks{behave: map[domain.TaskType]func(context.Context, int32) (activities.TaskOutput, error){}}
	f.register(env)
	env.RegisterWorkflowWithOptions(MaintenanceWorkflow, workflowRegisterOptions())
	installFreeLock(env)
	f.behave[domain.TaskQuotaCheck] = func(ctx context.Context, attempt int32) (activities.TaskOutput, error) {
		if attempt < 3 {
			return activities.TaskOutput{}, errors.New("transient")
		}
		return activities.TaskOutput{Attempt: int(attempt)}, nil
	}
	env.ExecuteWorkflow(MaintenanceWorkflowName, input(domain.TaskMVCCCleanup, domain.TaskQuotaCheck))
	require.NoError(t, env.GetWorkflowError())
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Equal(t, int64(1), h.counts["themis_jobs_triggered_total{target=demo,triggered_by=schedule}"], "%v", h.counts)
	require.Equal(t, int64(1), h.counts["themis_jobs_total{state=succeeded,target=demo,triggered_by=schedule}"], "%v", h.counts)
	require.Equal(t, int64(1), h.counts["themis_tasks_total{state=succeeded,target=demo,task=quota_check}"], "one outcome for three attempts: %v", h.counts)
	require.Equal(t, int64(1), h.counts["themis_tasks_total{state=succeeded,target=demo,task=mvcc_cleanup}"], "%v", h.counts)
}

// countingHandler records counters by name and sorted tags.
type countingHandler struct {
	mu     *sync.Mutex
	tags   map[string]string
	counts map[string]int64
}

func (h *countingHandler) WithTags(tags map[string]string) client.MetricsHandler {
	if h.mu == nil {
		h.mu = &sync.Mutex{}
	}
	merged := map[string]string{}
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	return &countingHandler{mu: h.mu, tags: merged, counts: h.counts}
}

func (h *countingHandler) Counter(name string) client.MetricsCounter {
	if h.mu == nil {
		h.mu = &sync.Mutex{}
	}
	keys := make([]string, 0, len(h.tags))
	for k := range h.tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + h.tags[k]
	}
	key := name + "{" + strings.Join(parts, ",") + "}"
	return counterFunc(func(d int64) {
		h.mu.Lock()
		h.counts[key] += d
		h.mu.Unlock()
	})
}

type counterFunc func(int64)

func (c counterFunc) Inc(d int64) { c(d) }

func (h *countingHandler) Gauge(string) client.MetricsGauge {
	return client.MetricsNopHandler.Gauge("")
}
func (h *countingHandler) Timer(string) client.MetricsTimer {
	return client.MetricsNopHandler.Timer("")
}

// The drill holds a slot of its target around restore and verify, and runs
// verify and clean-up on the queue of the host whose restore made the
// scratch instance.
func TestDrillTakesSlotAndStaysOnItsHost(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	failure := time.Date(2026, 11, 22, 3, 0, 10, 0, time.UTC)
	f := &fakeDrill{
		failureAt: failure, newestAt: failure.Add(-400 * time.Millisecond), servingAt: failure.Add(3 * time.Second),
		rpoObjective: time.Minute, host: activities.Host{ID: "host-a", Queue: "themis@host-a"},
	}
	f.register(env)
	env.RegisterWorkflowWithOptions(DrillWorkflow, drillRegisterOptions())
	lock := installFreeLock(env)
	var mu sync.Mutex
	queues := map[string]string{}
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		mu.Lock()
		queues[info.ActivityType.Name] = info.TaskQueue
		mu.Unlock()
	})
	signal(env, ApproveSignal, domain.ApprovalStart, time.Minute)
	signal(env, ApproveSignal, domain.ApprovalComplete, time.Hour)
	env.ExecuteWorkflow(DrillWorkflowName, DrillInput{Target: "demo", RequestedBy: "alice"})
	require.NoError(t, env.GetWorkflowError())
	d := drillResult(t, env)
	require.Equal(t, domain.DrillPassed, d.State, d.Reason)
	mu.Lock()
	require.Equal(t, "themis@host-a", queues[DrillVerifyActivity])
	require.Equal(t, "themis@host-a", queues[DrillCleanupActivity])
	require.NotEqual(t, "themis@host-a", queues[DrillRestoreActivity])
	mu.Unlock()
	var restore, cleanup string
	for _, st := range d.Steps {
		switch st.Name {
		case "restore":
			restore = st.Detail
		case "cleanup":
			cleanup = st.Detail
		}
	}
	require.Contains(t, restore, "on host host-a")
	require.Contains(t, cleanup, "on host host-a")
	requests, releases := lock.snapshot()
	require.Len(t, requests, 1)
	require.Equal(t, "drill restore", requests[0].Task)
	require.Len(t, releases, 1, "released once, after verify")
}
