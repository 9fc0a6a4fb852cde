package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/themis-maintenance/themis/activities"
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
