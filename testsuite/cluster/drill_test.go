package cluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apiclient "github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// A PostgreSQL DR drill passes, approved through both API processes, while
// jobs keep both workers busy; its clean-up leaves nothing on any host: no
// scratch postmaster running, every host's scratch directory empty, no
// canary table on production.
func TestDrillWhileWorkersBusy(t *testing.T) {
	t.Parallel()
	c := Start(t, Options{Postgres: true, HistoryOnPostgres: true})
	ctx := context.Background()
	seedTables(t, c, 20, 10000)

	light := []domain.Schedule{
		c.CreateSchedule(0, apiclient.ScheduleInput{Name: "Busy 1", Target: PGTarget,
			Tasks: []domain.TaskType{domain.TaskConsistencyCheck, domain.TaskStatisticsUpdate, domain.TaskReplicaValidation}}),
		c.CreateSchedule(1, apiclient.ScheduleInput{Name: "Busy 2", Target: PGTarget,
			Tasks: []domain.TaskType{domain.TaskPerformanceAnalysis, domain.TaskMetricsCollection, domain.TaskConsistencyCheck}}),
		c.CreateSchedule(0, apiclient.ScheduleInput{Name: "Busy demo", Target: DemoTarget,
			Tasks: []domain.TaskType{domain.TaskMetricsCollection, domain.TaskQuotaCheck, domain.TaskConsistencyCheck}}),
	}

	// Background load: each schedule run again as soon as its job ends,
	// through alternating API processes; every 200 ms, which workers have a
	// task running.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bg []string
	busySamples, bothBusy := 0, 0
	perWorker := map[int]int{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := 0
		active := map[string]string{} // schedule → job
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			busy := map[int]bool{}
			for _, sc := range light {
				if id, ok := active[sc.ID]; ok {
					if j, err := c.APIs[n%2].GetJob(ctx, id); err == nil && !j.State.Terminal() {
						if _, _, ident, err := c.PendingActivity(id); err == nil && ident != "" {
							busy[c.WorkerOfIdentity(ident)] = true
						}
						continue
					}
				}
				n++
				j, err := c.APIs[n%2].RunSchedule(ctx, sc.ID, true)
				if err != nil {
					continue
				}
				active[sc.ID] = j.ID
				mu.Lock()
				bg = append(bg, j.ID)
				mu.Unlock()
			}
			mu.Lock()
			busySamples++
			for w := range busy {
				perWorker[w]++
			}
			if busy[0] && busy[1] {
				bothBusy++
			}
			mu.Unlock()
		}
	}()

	d, err := c.APIs[0].StartDrill(ctx, PGTarget)
	if err != nil {
		t.Fatalf("start drill through api-1: %v", err)
	}
	waitDrill := func(api int, timeout time.Duration, cond func(domain.Drill) bool) domain.Drill {
		t.Helper()
		var last domain.Drill
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			got, err := c.APIs[api].GetDrill(ctx, d.ID)
			if err == nil {
				last = got
				if cond(got) {
					return got
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("drill %s: condition not met in %s; last state %s step %s awaiting %q reason %q", d.ID, timeout, last.State, last.Step, last.Awaiting, last.Reason)
		return last
	}
	waitDrill(1, 2*time.Minute, func(d domain.Drill) bool { return d.Awaiting == domain.ApprovalStart || d.FinishedAtMs > 0 })
	if _, err := c.APIs[1].ApproveDrill(ctx, d.ID, domain.ApprovalStart, "go"); err != nil {
		t.Fatalf("approve start through api-2: %v", err)
	}
	mid := waitDrill(0, 4*time.Minute, func(d domain.Drill) bool { return d.Awaiting == domain.ApprovalComplete || d.FinishedAtMs > 0 })
	if mid.Awaiting != domain.ApprovalComplete {
		t.Fatalf("drill stopped before the complete approval: %s %s", mid.State, mid.Reason)
	}
	if _, err := c.APIs[0].ApproveDrill(ctx, d.ID, domain.ApprovalComplete, "restored copy checked"); err != nil {
		t.Fatalf("approve complete through api-1: %v", err)
	}
	done := waitDrill(1, 3*time.Minute, func(d domain.Drill) bool { return d.FinishedAtMs > 0 })
	close(stop)
	wg.Wait()

	for _, s := range done.Steps {
		t.Logf("  step %-15s %-10s %6d ms  %s", s.Name, s.State, s.DurationMs, s.Detail)
	}
	mu.Lock()
	t.Logf("drill %s %s: RTO %d ms, RPO %d ms, restored from %s, scratch %s, cleaned up %v; %d background jobs started during it, busy samples %d (host-a %d, host-b %d, both at once %d)",
		done.ID, done.State, done.RTOMs, done.RPOMs, done.RestoredFrom, done.Scratch, done.CleanedUp,
		len(bg), busySamples, perWorker[0], perWorker[1], bothBusy)
	jobs := append([]string(nil), bg...)
	mu.Unlock()
	if done.State != domain.DrillPassed {
		t.Errorf("drill ended %s, want passed: %s", done.State, done.Reason)
	}
	if !done.CleanedUp {
		t.Errorf("drill reports its clean-up did not run")
	}
	if bothBusy == 0 {
		t.Errorf("the background jobs never kept both workers busy at once (%d samples): the drill ran on an idle cluster", busySamples)
	}

	failed := 0
	for _, id := range jobs {
		j := c.WaitJob(0, id, 3*time.Minute, Terminal)
		if j.State != domain.StateSucceeded {
			failed++
			t.Errorf("background job %s ended %s: %s (%s)", id, j.State, j.ErrorMessage, TaskLine(j))
		}
	}

	// Nothing left on any host.
	hosts, _ := os.ReadDir(filepath.Join(c.Dir, "hosts"))
	for _, h := range hosts {
		scratch := c.ScratchDir(h.Name(), PGTarget)
		entries, err := os.ReadDir(scratch)
		if err != nil && !os.IsNotExist(err) {
			t.Errorf("read %s: %v", scratch, err)
		}
		for _, e := range entries {
			t.Errorf("host %s: %s left in its scratch directory", h.Name(), filepath.Join(scratch, e.Name()))
		}
	}
	out, _ := exec.Command("pgrep", "-af", filepath.Join(c.Dir, "hosts")).Output()
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("processes still run on a host's data directory (a scratch postmaster?):\n%s", s)
	}
	n := pgcluster.Scalar[int64](t, c.Primary, PGDatabase, "SELECT count(*) FROM pg_tables WHERE tablename = 'themis_drill_canary'")
	if n != 0 {
		t.Errorf("the canary table is still on production")
	}
	t.Logf("drill clean-up: %d hosts checked, background jobs failed = %d of %d", len(hosts), failed, len(jobs))
}
