package orchestration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/themis-maintenance/themis/api"
	apiclient "github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/devserver"
)

// Targets of issue 10.
const (
	targetRatio      = 1.10
	targetListP99    = 20 * time.Millisecond
	targetListRate   = 2000.0
	targetHealthP99  = 10 * time.Millisecond
	targetJobsPerMin = 600.0
)

// ExtraProbesEnv tells the themisctl-bench-health binary how many probes
// to register beside the built-in ones, one of them hanging.
const ExtraProbesEnv = "BENCH_HEALTH_EXTRA_PROBES"

// HangingProbe is the name of the extra probe that never answers.
const HangingProbe = "bench-hanging"

// Run starts the stack, runs every phase and returns the report. An error
// is returned when the stack cannot be started; a phase that fails is named
// in Report.Failed, and one that falls short of its size in the notes.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	began := time.Now()
	logf := func(format string, a ...any) {
		fmt.Fprintf(cfg.Log, "[%6.1fs] %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, a...))
	}
	if cfg.TemporalBin == "" {
		bin, err := devserver.FindBinary()
		if err != nil {
			return nil, err
		}
		cfg.TemporalBin = bin
	}
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "themis-bench-orch-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}

	logf("starting the dev server, the API and the worker (logs in %s/logs)", dir)
	s, err := startStack(ctx, cfg, dir)
	if err != nil {
		return nil, err
	}
	defer s.close()
	bw, err := startBareWorker(s.temporal)
	if err != nil {
		return nil, fmt.Errorf("bare SDK worker: %w", err)
	}
	defer bw.Stop()

	rep := &Report{CPUs: runtime.NumCPU(), Machine: machine(cfg)}
	b := &bench{cfg: cfg, s: s, rep: rep, logf: logf}
	// A phase that fails is reported and the others still run (those that
	// need the light schedules say so).
	for _, phase := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"Daily runs", b.daily}, {"schedules", b.schedules}, {"jobs per minute", b.throughput}, {"jobs", b.fillJobs},
		{"list load", b.lists}, {"GET /health", b.health}, {"memory", b.memory},
	} {
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		if err := phase.run(ctx); err != nil {
			rep.Failed = append(rep.Failed, phase.name+": "+err.Error())
			logf("%s FAILED: %v", phase.name, err)
		}
	}
	rep.Notes = append(rep.Notes, "the bench process (HTTP load, SDK clients, the bare SDK worker) runs on the same cores as the dev server, worker and API")
	if cfg.Dir != "" {
		rep.Notes = append(rep.Notes, fmt.Sprintf("logs of the processes: %s/logs", dir))
	}
	rep.Total = time.Since(began)
	return rep, nil
}

// bench carries the state between phases.
type bench struct {
	cfg  Config
	s    *stack
	rep  *Report
	logf func(string, ...any)

	light []lightSchedule
	ids   jobIDs
}

func (b *bench) row(r Row)               { b.rep.Rows = append(b.rep.Rows, r) }
func (b *bench) note(f string, a ...any) { b.rep.Notes = append(b.rep.Notes, fmt.Sprintf(f, a...)) }

func machine(cfg Config) string {
	out, err := exec.Command(cfg.TemporalBin, "--version").Output()
	v := strings.TrimSpace(string(out))
	if err != nil || v == "" {
		v = "temporal (version unknown)"
	}
	return fmt.Sprintf("%s/%s, %s, file-backed dev server, loopback", runtime.GOOS, runtime.GOARCH, v)
}

// dailySchedule is the default Daily Maintenance schedule when it has its
// three tasks on the demo target, otherwise a 3-task schedule of its tasks
// created for the bench.
func (b *bench) dailySchedule(ctx context.Context) (domain.Schedule, error) {
	sc, err := b.s.api.GetSchedule(ctx, "daily-maintenance")
	if err == nil && len(sc.Tasks) == 3 && sc.Target == demoTarget {
		return sc, nil
	}
	disabled := false
	return b.s.api.CreateSchedule(ctx, apiclient.ScheduleInput{
		Name: "Bench Daily", Target: demoTarget, Enabled: &disabled,
		Tasks: []domain.TaskType{domain.TaskMetricsCollection, domain.TaskFragmentationMonitoring, domain.TaskQuotaCheck},
	})
}

// daily measures forced 3-task Daily runs through the API with wait against
// the bare SDK workflow, interleaved, then reads both kinds of histories.
func (b *bench) daily(ctx context.Context) error {
	sc, err := b.dailySchedule(ctx)
	if err != nil {
		return fmt.Errorf("daily schedule: %w", err)
	}
	b.logf("forced %q runs (%v) vs bare SDK workflow: %d warm-up + %d measured of each, interleaved", sc.Name, sc.Tasks, b.cfg.Warmup, b.cfg.Runs)
	var apiWall, bareWall durations
	var jobIDs, bareIDs []string
	for i := range b.cfg.Warmup + b.cfg.Runs {
		measured := i >= b.cfg.Warmup
		runAPI := func() error {
			t0 := time.Now()
			job, err := runThroughAPI(ctx, b.s.apiLong, sc.ID)
			if err != nil {
				return err
			}
			if measured {
				apiWall = append(apiWall, time.Since(t0))
				jobIDs = append(jobIDs, job.ID)
			}
			return nil
		}
		runSDK := func() error {
			id := fmt.Sprintf("bench-bare-%d-%d", i, time.Now().UnixNano())
			d, err := runBare(ctx, b.s.temporal, id, 3)
			if err != nil {
				return fmt.Errorf("bare workflow: %w", err)
			}
			if measured {
				bareWall = append(bareWall, d)
				bareIDs = append(bareIDs, id)
			}
			return nil
		}
		first, second := runAPI, runSDK
		if i%2 == 1 {
			first, second = runSDK, runAPI
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
	}

	var apiServer, bareServer, taskOver, bareOver, taskQueueWait durations
	for _, id := range jobIDs {
		h, err := readHistory(ctx, b.s.temporal, id)
		if err != nil {
			return err
		}
		apiServer = append(apiServer, h.StartToClose)
		for _, a := range h.Activities {
			if a.IsTask {
				taskOver = append(taskOver, a.Overhead())
				if !a.Started.IsZero() {
					taskQueueWait = append(taskQueueWait, a.Started.Sub(a.Scheduled))
				}
			}
		}
	}
	for _, id := range bareIDs {
		h, err := readHistory(ctx, b.s.temporal, id)
		if err != nil {
			return err
		}
		bareServer = append(bareServer, h.StartToClose)
		for _, a := range h.Activities {
			bareOver = append(bareOver, a.Overhead())
		}
	}
	if len(taskOver) != 3*len(jobIDs) {
		b.note("per-task overhead: %d task activities found in %d job histories (want %d)", len(taskOver), len(jobIDs), 3*len(jobIDs))
	}

	pair := func(figure string, q string, ours, ref durations) {
		var o, r time.Duration
		if q == "p50" {
			o, r = ours.p50(), ref.p50()
		} else {
			o, r = ours.p99(), ref.p99()
		}
		rt, x := ratioText(o, r)
		b.row(Row{Figure: figure + " " + q, Measured: msText(o), Reference: "bare SDK 3 no-op activities " + msText(r),
			Ratio: rt, Target: fmt.Sprintf("≤ %.2f×", targetRatio), Met: yesNo(x > 0 && x <= targetRatio)})
	}
	name := fmt.Sprintf("forced 3-task Daily, POST run {force, wait} (client, n=%d)", len(apiWall))
	pair(name, "p50", apiWall, bareWall)
	pair(name, "p99", apiWall, bareWall)
	name = "forced 3-task Daily, server-side start → close"
	pair(name, "p50", apiServer, bareServer)
	pair(name, "p99", apiServer, bareServer)
	for _, q := range []string{"p50", "p99"} {
		o, r := taskOver.p50(), bareOver.p50()
		qw := taskQueueWait.p50()
		if q == "p99" {
			o, r, qw = taskOver.p99(), bareOver.p99(), taskQueueWait.p99()
		}
		rt, _ := ratioText(o, r)
		b.row(Row{Figure: fmt.Sprintf("per-task overhead: scheduled → completed − task's work %s (n=%d)", q, len(taskOver)),
			Measured:  fmt.Sprintf("%s (scheduled → started %s)", msText(o), msText(qw)),
			Reference: "bare no-op activity scheduled → completed " + msText(r), Ratio: rt})
	}
	b.note("Daily runs: schedule %q (%s), forced, through the API with wait 60s; the bare SDK workflow runs 3 no-op activities on its own worker in the bench process; %d warm-up runs of each not counted; order alternates",
		sc.ID, joinTasks(sc.Tasks), b.cfg.Warmup)
	b.note("task's work = the activity's own reported finished_at − started_at (TaskOutput, millisecond resolution); event times from the job workflows' histories")
	return nil
}

func joinTasks(ts []domain.TaskType) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// schedules creates the light 1-task schedules behind GET /schedules:
// through the API for as long as cfg.ScheduleTimeout allows, then the rest
// directly in Temporal in the API's shape (copySchedules).
func (b *bench) schedules(ctx context.Context) error {
	b.logf("creating up to %d disabled 1-task schedules through the API (%d at a time, at most %s)", b.cfg.Schedules, createConcurrency, b.cfg.ScheduleTimeout)
	t0 := time.Now()
	light, failed, err := createSchedules(ctx, b.s.api, b.cfg.Schedules, b.cfg.ScheduleTimeout, func(n int) { b.logf("  %d schedules", n) })
	if err != nil {
		return err
	}
	viaAPI, took := len(light), time.Since(t0)
	b.note("schedules: %d light schedules (%s on %s, disabled) created through the API in %s (%.1f/s, %d at a time, %d failed after 3 tries)",
		viaAPI, lightTask, demoTarget, took.Round(time.Second), float64(viaAPI)/took.Seconds(), createConcurrency, failed)
	if viaAPI < b.cfg.Schedules {
		b.logf("copying %d more directly into Temporal in the API's shape", b.cfg.Schedules-viaAPI)
		more, err := copySchedules(ctx, b.s.temporal, light[0], b.cfg.Schedules-viaAPI)
		if err != nil {
			b.note("schedules: copying into Temporal: %v", err)
		}
		light = append(light, more...)
		b.note("schedules: %d more created directly as Temporal Schedules shaped as the API creates them (the API's create lists every schedule to check the name, so creating 1,000 through it does not fit the bench's time)", len(more))
	}
	b.light = light
	return nil
}

// throughput measures the light jobs per minute one worker sustains, started
// directly on its task queue, beside bare SDK workflows of one no-op
// activity at the same concurrency (the Temporal floor of this machine).
func (b *bench) throughput(ctx context.Context) error {
	if len(b.light) == 0 {
		return errors.New("no light schedule to run")
	}
	conc := b.cfg.Concurrency
	warm := min(5*time.Second, b.cfg.Duration/2)
	b.logf("light jobs per minute: %d in flight, %s warm-up + %s", conc, warm, b.cfg.Duration)
	direct := sustain(ctx, conc, warm, b.cfg.Duration, func(ctx context.Context, i int) error {
		return startLightJob(ctx, b.s.temporal, &b.ids, b.light[i%len(b.light)])
	})
	b.logf("bare SDK workflows of one no-op activity per minute: %d in flight, %s warm-up + %s", conc, warm, b.cfg.Duration)
	var seq atomic.Int64
	bare := sustain(ctx, conc, warm, b.cfg.Duration, func(ctx context.Context, i int) error {
		_, err := runBare(ctx, b.s.temporal, fmt.Sprintf("bench-bare-tp-%d-%d", i, seq.Add(1)), 1)
		return err
	})
	b.row(Row{Figure: fmt.Sprintf("light 1-task jobs per minute, one worker (%d in flight)", conc),
		Measured:  fmt.Sprintf("%.0f/min (%d in %s, p50 %s each, %d errors)", direct.perMinute(), direct.Completed, direct.Window, msText(direct.Latencies.p50()), direct.Errors),
		Reference: fmt.Sprintf("bare SDK 1 no-op activity %.0f/min (p50 %s)", bare.perMinute(), msText(bare.Latencies.p50())),
		Ratio:     fmt.Sprintf("%.2f× target, %.2f× bare", direct.perMinute()/targetJobsPerMin, safeDiv(direct.perMinute(), bare.perMinute())),
		Target:    fmt.Sprintf("≥ %.0f/min", targetJobsPerMin),
		Met:       yesNo(direct.perMinute() >= targetJobsPerMin && direct.Errors == 0)})
	for _, e := range []struct {
		what string
		t    throughput
	}{{"jobs", direct}, {"bare workflows", bare}} {
		if e.t.FirstErr != "" {
			b.note("per minute, %s: %d errors, the first: %s", e.what, e.t.Errors, e.t.FirstErr)
		}
	}
	b.note("light job: one %s task on the SQLite demo target, started directly on the worker's task queue as POST /schedules/{id}/run starts it (%d light schedules round-robin); a job counts when it ends succeeded within the window, after a %s warm-up with the loop already full",
		lightTask, len(b.light), warm)
	return nil
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// fillJobs runs light jobs until there are cfg.Jobs behind GET /jobs.
func (b *bench) fillJobs(ctx context.Context) error {
	b.logf("running light jobs until %d jobs exist (at most %s)", b.cfg.Jobs, b.cfg.JobsTimeout)
	t0 := time.Now()
	n, err := fillJobs(ctx, b.s.temporal, &b.ids, b.light, b.cfg.Jobs, 2*b.cfg.Concurrency, b.cfg.JobsTimeout)
	if err != nil {
		return err
	}
	b.logf("  %d jobs", n)
	b.note("jobs: %d jobs behind GET /jobs (aimed at %d; topped up with light jobs started directly, %s)", n, b.cfg.Jobs, time.Since(t0).Round(time.Second))
	return nil
}

// lists loads GET /schedules and GET /jobs?limit=100 and counts the
// Temporal calls they cause, net of those of the idle system.
func (b *bench) lists(ctx context.Context) error {
	idle := min(10*time.Second, b.cfg.Duration)
	b.logf("idle baseline of Temporal frontend calls (%s)", idle)
	before, err := scrapeFrontend(ctx, b.s.metricsURL)
	if err != nil {
		return err
	}
	time.Sleep(idle)
	after, err := scrapeFrontend(ctx, b.s.metricsURL)
	if err != nil {
		return err
	}
	idleDelta := after.minus(before)
	idleRate := func(ops []string) float64 { return idleDelta.sum(ops) / idle.Seconds() }

	base := b.s.apiURL + api.BasePath
	for _, ep := range []struct {
		name, path string
		check      func(context.Context) (string, error)
	}{
		{fmt.Sprintf("GET /schedules (%d bench schedules + the defaults)", len(b.light)), "/schedules", func(ctx context.Context) (string, error) {
			l, err := b.s.api.ListSchedules(ctx)
			return fmt.Sprintf("%d schedules listed", len(l)), err
		}},
		{"GET /jobs?limit=100", "/jobs?limit=100", func(ctx context.Context) (string, error) {
			p, err := b.s.api.ListJobs(ctx, api.JobFilter{Limit: 100})
			return fmt.Sprintf("%d jobs on the page", p.Count), err
		}},
	} {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		seen, err := ep.check(cctx)
		cancel()
		if err != nil {
			seen = "the check request failed: " + err.Error()
		}
		b.logf("%s: %s; %d connections for %s", ep.name, seen, b.cfg.Conns, b.cfg.Duration)
		before, err := scrapeFrontend(ctx, b.s.metricsURL)
		if err != nil {
			return err
		}
		res := loadHTTP(ctx, base+ep.path, b.s.token, b.cfg.Conns, b.cfg.Duration, b.cfg.RequestTimeout)
		after, err := scrapeFrontend(ctx, b.s.metricsURL)
		if err != nil {
			return err
		}
		b.loadRow(ep.name, res, targetListP99, targetListRate)
		b.note("%s: before the load, %s", ep.name, seen)
		if res.FirstErr != "" {
			b.note("%s: first error: %s", ep.name, res.FirstErr)
		}
		delta := after.minus(before)
		// Every request sent counts, those cut at the end too: they made
		// their calls.
		reqs := res.Requests + res.Cut
		per1000 := func(ops []string) float64 {
			net := delta.sum(ops) - idleRate(ops)*res.Elapsed.Seconds()
			return max(net, 0) / float64(max(reqs, 1)) * 1000
		}
		vis, item := per1000(visibilityOps), per1000(perItemOps)
		b.row(Row{Figure: "Temporal visibility calls per 1,000 " + ep.name,
			Measured:  fmt.Sprintf("%.0f (+ %.0f per-item describe/query calls; %d requests)", vis, item, reqs),
			Reference: fmt.Sprintf("idle: %.1f visibility calls/s", idleRate(visibilityOps)),
			Target:    "0", Met: yesNo(reqs > 0 && vis < 0.5 && item < 0.5)})
		b.note("%s: frontend calls during the load by operation: %s", ep.name, opsText(delta))
	}
	b.note("visibility calls = frontend %s; per-item = %s; counted on the dev server's Prometheus endpoint, minus the idle rate × the load's duration",
		strings.Join(visibilityOps, "/"), strings.Join(perItemOps, "/"))
	return nil
}

// loadRow adds the row of an endpoint under load.
func (b *bench) loadRow(name string, res loadResult, p99Target time.Duration, rateTarget float64) {
	p50, p99 := res.Latencies.p50(), res.Latencies.p99()
	target := fmt.Sprintf("p99 ≤ %s, ≥ %.0f req/s, 0 errors", msText(p99Target), rateTarget)
	met := len(res.Latencies) > 0 && p99 <= p99Target && res.rate() >= rateTarget && res.Errors == 0
	ratio := fmt.Sprintf("p99 %.2f×, rate %.2f×", float64(p99)/float64(p99Target), res.rate()/rateTarget)
	if rateTarget == 0 {
		target = fmt.Sprintf("p99 < %s", msText(p99Target))
		met = len(res.Latencies) > 0 && p99 < p99Target
		ratio = fmt.Sprintf("p99 %.2f×", float64(p99)/float64(p99Target))
	}
	measured := fmt.Sprintf("p50 %s, p99 %s, %.0f req/s, %d errors / %d", msText(p50), msText(p99), res.rate(), res.Errors, res.Requests)
	if len(res.Latencies) == 0 {
		measured = fmt.Sprintf("no 200 answer: %d errors / %d", res.Errors, res.Requests)
		ratio = ""
	}
	if res.Cut > 0 {
		measured += fmt.Sprintf(", %d cut at the end", res.Cut)
	}
	b.row(Row{Figure: fmt.Sprintf("%s, %d connections, %s", name, b.cfg.Conns, b.cfg.Duration),
		Measured: measured, Target: target, Ratio: ratio, Met: yesNo(met)})
}

func opsText(c frontendCounts) string {
	var parts []string
	for _, op := range append(append([]string{}, visibilityOps...), perItemOps...) {
		if v := c[op]; v >= 1 {
			parts = append(parts, fmt.Sprintf("%s %.0f", op, v))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// health loads GET /health on an API process of the variant binary with
// extra probes, one of them hanging.
func (b *bench) health(ctx context.Context) error {
	if b.cfg.HealthBin == "" {
		b.note("GET /health: skipped (no -health-bin)")
		return nil
	}
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	rep, err := b.s.api.Health(hctx)
	cancel()
	if err != nil {
		return fmt.Errorf("GET /health: %w", err)
	}
	builtin := len(rep.Modules)
	extra := max(1, b.cfg.HealthProbes-builtin)
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	b.logf("GET /health: API process with %d built-in + %d extra probes (one hanging)", builtin, extra)
	p, err := b.s.startAPI(ctx, "api-health", b.cfg.HealthBin, addr, []string{fmt.Sprintf("%s=%d", ExtraProbesEnv, extra)})
	if err != nil {
		return err
	}
	defer p.stop(10 * time.Second)
	hc, err := apiclient.New("http://"+addr, b.s.token, nil)
	if err != nil {
		return err
	}
	// Wait until the hanging probe's first call has been reported: the
	// runner marks it unknown after its timeout (10 s and a grace).
	var modules int
	hanging := "not seen"
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r, err := hc.Health(hctx)
		cancel()
		if err == nil {
			modules = len(r.Modules)
			for _, m := range r.Modules {
				if m.Name == HangingProbe {
					hanging = m.Status + ": " + m.Message
				}
			}
			if strings.HasPrefix(hanging, api.HealthUnknown) {
				break
			}
		}
		time.Sleep(time.Second)
	}
	b.logf("  %d modules; %s is %s; %d connections for %s", modules, HangingProbe, hanging, b.cfg.Conns, b.cfg.Duration)
	res := loadHTTP(ctx, "http://"+addr+api.BasePath+"/health", b.s.token, b.cfg.Conns, b.cfg.Duration, b.cfg.RequestTimeout)
	b.loadRow(fmt.Sprintf("GET /health (%d probes, 1 hanging)", modules), res, targetHealthP99, 0)
	b.note("GET /health: an API process of themisctl-bench-health (%d extra probes registered with health.RegisterProbe); the hanging probe was %q during the load", extra, hanging)
	if res.FirstErr != "" {
		b.note("GET /health: first error: %s", res.FirstErr)
	}
	return nil
}

// memory reads the worker's and the API's resident memory.
func (b *bench) memory(context.Context) error {
	for _, p := range []*process{b.s.worker, b.s.apiProc} {
		m, err := readMemory(p.pid())
		if err != nil {
			b.note("%s memory: %v", p.name, err)
			continue
		}
		b.row(Row{Figure: p.name + " RSS (VmRSS now, VmHWM peak)", Measured: fmt.Sprintf("%s now, %s peak", mib(m.RSS), mib(m.HWM))})
	}
	return nil
}
