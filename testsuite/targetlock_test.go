package testsuite

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/client"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/sqlite"
	"github.com/themis-maintenance/themis/internal/daemon"
	"github.com/themis-maintenance/themis/worker"
	"github.com/themis-maintenance/themis/workflows"
)

// runSpan is one task run as the driver saw it.
type runSpan struct {
	job, host  string
	task       domain.TaskType
	start, end time.Time
}

// runLog collects the driver runs of every worker in the test.
type runLog struct {
	mu    sync.Mutex
	spans []runSpan
}

// recordingDriver is the slowed SQLite driver, noting when each task ran.
type recordingDriver struct {
	*sqlite.Driver
	host string
	log  *runLog
}

func (d recordingDriver) Run(ctx context.Context, req driver.Request) (driver.Result, error) {
	start := time.Now()
	res, err := d.Driver.Run(ctx, req)
	d.log.mu.Lock()
	d.log.spans = append(d.log.spans, runSpan{job: req.JobID, host: d.host, task: req.Task, start: start, end: time.Now()})
	d.log.mu.Unlock()
	return res, err
}

// hostWorkers replaces the Env's worker with one worker per host, each with
// its own deps and slowed, recording driver: as many worker processes on as
// many hosts would be.
func (e *Env) hostWorkers(log *runLog, stepDelay time.Duration, hosts ...string) map[string]*worker.Worker {
	e.T.Helper()
	e.StopWorker()
	out := map[string]*worker.Worker{}
	for _, h := range hosts {
		slow := sqlite.NewWithOptions(sqlite.Options{StepDelay: stepDelay, HeartbeatInterval: 200 * time.Millisecond})
		deps, err := daemon.NewWorkerDeps(e.Config, nil, []driver.Driver{recordingDriver{Driver: slow, host: h, log: log}})
		require.NoError(e.T, err)
		deps.Activities.HeartbeatInterval = 200 * time.Millisecond
		e.T.Cleanup(func() { _ = deps.Close() })
		w := worker.New(e.Client, e.TaskQueue, deps.Activities, worker.Options{StopTimeout: -1, HostID: h})
		require.NoError(e.T, w.Start())
		e.T.Cleanup(w.Stop)
		out[h] = w
	}
	return out
}

// Two jobs with heavy tasks on one target, two workers: the heavy tasks
// never overlap (from the driver's own start and finish times), the second
// job shows waiting while the first holds the target, light tasks run
// beside them, and both jobs end.
func TestTargetLockTwoWorkersNeverOverlap(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	log := &runLog{}
	e.hostWorkers(log, 250*time.Millisecond, "host-a", "host-b")
	ctx := context.Background()

	sc1 := e.CreateSchedule("Heavy one", domain.TaskIndexRebuild, domain.TaskMVCCCleanup)
	sc2 := e.CreateSchedule("Heavy two", domain.TaskMVCCCleanup, domain.TaskQuotaCheck)
	job1, err := e.Service.RunSchedule(ctx, sc1.ID, true, "test")
	require.NoError(t, err)
	e.WaitJob(job1.ID, time.Minute, func(j domain.Job) bool { return j.Tasks[0].State == domain.StateRunning })
	job2, err := e.Service.RunSchedule(ctx, sc2.ID, true, "test")
	require.NoError(t, err)

	waiting := e.WaitJob(job2.ID, time.Minute, func(j domain.Job) bool { return j.State == domain.StateWaiting })
	require.Equal(t, domain.StateWaiting, waiting.Tasks[0].State)
	require.Contains(t, waiting.Tasks[0].ResultSummary, "Waiting for target demo: held by "+job1.ID)
	// What the Temporal UI shows as the job's current details.
	v, err := e.Client.QueryWorkflow(ctx, job2.ID, "", "__temporal_workflow_metadata")
	require.NoError(t, err)
	var meta sdkpb.WorkflowMetadata
	require.NoError(t, v.Get(&meta))
	require.Contains(t, meta.GetCurrentDetails(), "Waiting for target demo: held by "+job1.ID)

	done1 := e.WaitJob(job1.ID, 3*time.Minute, Terminal)
	done2 := e.WaitJob(job2.ID, 3*time.Minute, Terminal)
	require.Equal(t, domain.StateSucceeded, done1.State, done1.ErrorMessage)
	require.Equal(t, domain.StateSucceeded, done2.State, done2.ErrorMessage)
	waited, _ := done2.Tasks[0].Details["waited_for_target_ms"].(float64)
	require.Greater(t, waited, 0.0)
	t.Logf("job 2 waited %.0f ms for the target", waited)

	log.mu.Lock()
	var heavy []runSpan
	hosts := map[string]bool{}
	for _, s := range log.spans {
		if s.task.Heavy() {
			heavy = append(heavy, s)
			hosts[s.host] = true
		}
	}
	log.mu.Unlock()
	require.Len(t, heavy, 3)
	sort.Slice(heavy, func(i, j int) bool { return heavy[i].start.Before(heavy[j].start) })
	for i := 1; i < len(heavy); i++ {
		prev, cur := heavy[i-1], heavy[i]
		t.Logf("%s %s on %s: %s → %s", cur.job, cur.task, cur.host, cur.start.Format("15:04:05.000"), cur.end.Format("15:04:05.000"))
		require.False(t, cur.start.Before(prev.end), "%s %s started at %s before %s %s ended at %s",
			cur.job, cur.task, cur.start, prev.job, prev.task, prev.end)
	}
	t.Logf("heavy tasks ran on hosts %v", hosts)

	e.RecordHistory(job2.ID, "maintenance_waited_for_target")
	lockID := workflows.TargetLockID(e.TaskQueue, "demo")
	require.Eventually(t, func() bool {
		d, err := e.Client.DescribeWorkflowExecution(ctx, lockID, "")
		return err == nil && d.GetWorkflowExecutionInfo().GetCloseTime() != nil
	}, 2*time.Minute, time.Second, "the idle lock ends")
	e.RecordHistory(lockID, "target_lock")
}

// A drill's verify and clean-up run on the host whose restore made the
// scratch instance. A host back after a restart still cleans up; a host
// gone for good is reported, the canary is removed from another host and
// the scratch instance stays for orphan_cleanup on that host.
func TestDrillStaysOnItsHost(t *testing.T) {
	e := NewEnv(t, EnvOptions{})
	log := &runLog{}
	hosts := []string{"host-a", "host-b"}
	ws := e.hostWorkers(log, 0, hosts...)
	ctx := context.Background()

	e.verifiedBackup("demo") // preflight wants one
	drill := func(name string, restart bool) {
		id := fmt.Sprintf("drill-host-%s-%d", name, time.Now().UnixNano())
		_, err := e.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: e.TaskQueue}, workflows.DrillWorkflowName, workflows.DrillInput{
			Target: "demo", RequestedBy: "test", CanaryInterval: 100 * time.Millisecond, CanaryDuration: time.Second,
			HostTimeout: 5 * time.Second,
		})
		require.NoError(t, err)
		e.waitDrill(id, time.Minute, awaiting(domain.ApprovalStart))
		e.verifiedBackup("demo") // the drill restores it: RPO is its age at the failure instant
		_, err = e.Service.DecideDrill(ctx, id, true, domain.ApprovalStart, "go", "test")
		require.NoError(t, err)
		mid := e.waitDrill(id, 2*time.Minute, awaiting(domain.ApprovalComplete))
		host := ""
		for _, s := range mid.Steps {
			if s.Name == "restore" {
				_, host, _ = strings.Cut(s.Detail, " on host ")
				host, _, _ = strings.Cut(host, ";")
			}
		}
		require.Equal(t, "host "+host, mid.ClockSource, "the canary ran on the restoring host")
		require.Contains(t, hosts, host, "the restore step names its host: %+v", mid.Steps)
		ws[host].Stop()
		_, err = e.Service.DecideDrill(ctx, id, true, domain.ApprovalComplete, "ok", "test")
		require.NoError(t, err)
		if restart {
			time.Sleep(time.Second)
			ws[host] = worker.New(e.Client, e.TaskQueue, e.Deps.Activities, worker.Options{StopTimeout: -1, HostID: host})
			require.NoError(t, ws[host].Start())
			t.Cleanup(ws[host].Stop)
		}
		done := e.waitDrill(id, time.Minute, finished)
		for _, s := range done.Steps {
			t.Logf("  %s step %-15s %-10s %6d ms  %s", name, s.Name, s.State, s.DurationMs, s.Detail)
		}
		var cleanup domain.DrillStep
		for _, s := range done.Steps {
			if s.Name == "cleanup" {
				cleanup = s
			}
		}
		if restart {
			require.Equal(t, domain.DrillPassed, done.State, done.Reason)
			require.Contains(t, cleanup.Detail, "on host "+host)
			e.assertNothingLeft(done)
			e.RecordHistory(id, "drill_host_restarted")
			return
		}
		require.Equal(t, domain.DrillFailed, done.State)
		require.False(t, done.CleanedUp)
		require.Contains(t, cleanup.Detail, "could not reach host "+host)
		require.Contains(t, cleanup.Detail, "orphan_cleanup runs on "+host)
		require.Contains(t, cleanup.Detail, "canary removed")
		require.Contains(t, done.Reason, "could not reach host "+host)
		entries, _ := os.ReadDir(e.Config.Targets[0].ScratchDir)
		left := false
		for _, en := range entries {
			left = left || strings.Contains(en.Name(), "drill")
		}
		require.True(t, left, "the scratch instance stays on the unreachable host")
		e.RecordHistory(id, "drill_host_gone")
	}
	drill("restarted", true)
	drill("gone", false)
}
