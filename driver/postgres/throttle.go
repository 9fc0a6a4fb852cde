package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/commandlog"
)

// Throttling and pacing of heavy tasks (docs/MAINTENANCE_SCHEDULE.md,
// "Throttling and pacing"). Between units of work (a table, an index, a
// relation checked) a task consults its pacer: while any throttle signal is
// up — replica lag over max_lag_ms, active backends over
// max_active_backends, other sessions waiting on the task's locks, a manual
// pause of the target — it waits, polling every throttlePoll and
// heartbeating why. A critical level (critical_lag_ms,
// critical_active_backends) makes it hibernate for hibernate_s instead; a
// unit whose statement blocks other sessions past lock_timeout while a
// critical level is up is cancelled and redone after the hibernation.
// intensity < 1 sleeps after each unit its duration × (1/intensity − 1).

// throttlePoll is how often a throttled task re-reads its signals, and the
// longest a reading is reused.
var throttlePoll = time.Second

// maxThrottleEvents bounds the events kept in a task's result.
const maxThrottleEvents = 50

// errCriticalCancel is the cause of a unit's context cancelled by the
// pacer: the unit is redone after the hibernation.
var errCriticalCancel = errors.New("cancelled by the pacer: critical load while the statement blocked other sessions")

// pauseReader is the history store's view of manual pauses
// (internal/history.Store implements it).
type pauseReader interface {
	ManualPause(ctx context.Context, target string, now time.Time) (until time.Time, reason string, ok bool, err error)
}

// throttleOpts are the pacing options of a task.
type throttleOpts struct {
	MaxLagMs, CriticalLagMs   int64
	MaxActive, CriticalActive int64
	Hibernate                 time.Duration
	Intensity                 float64
	LockTimeout               time.Duration
	ReplicaDSNs               []string
	// Query is a custom probe returning one number; above Threshold the
	// task waits ("" = none).
	Query     string
	Threshold float64
	// ownName is the application_name of the task's sessions.
	ownName         string
	pauses          pauseReader
	target          string
	criticalEnabled bool
}

// signal is one reading of the throttle signals.
type signal struct {
	// Reason says why the task should wait ("" = go on).
	Reason string
	// Critical is set when a critical level is crossed.
	Critical bool
	// CriticalReason says which.
	CriticalReason string
	// Blocking is how long, at most, another session has waited on a lock
	// a session of this task holds.
	Blocking time.Duration
}

// throttleEvent is one period the task waited.
type throttleEvent struct {
	Kind       string `json:"kind"` // throttled, hibernated
	Reason     string `json:"reason"`
	StartedAt  int64  `json:"started_at_ms"`
	DurationMs int64  `json:"duration_ms"`
}

// pacer paces one run. It is safe for concurrent use by the run's workers.
type pacer struct {
	r   *run
	o   throttleOpts
	rec *commandlog.Recorder

	readMu   sync.Mutex // one reading at a time
	lastRead time.Time
	last     signal
	replicas map[string]*pgx.Conn

	mu          sync.Mutex
	waiting     int
	waitStart   time.Time
	waitKind    string
	waitReason  string
	throttled   time.Duration
	hibernated  time.Duration
	slept       time.Duration
	cancels     int
	events      []throttleEvent
	eventsTotal int
}

// pacerFor returns the run's pacer, or nil when the task has no pacing
// options.
func (r *run) pacerFor(ctx context.Context) (*pacer, error) {
	r.pacerOnce.Do(func() {
		o := r.opts()
		if _, ok := o.Spec("max_lag_ms"); !ok {
			return
		}
		var to throttleOpts
		var err error
		read := func(key string, dst *int64) {
			if err == nil {
				*dst, err = intOpt(o, key)
			}
		}
		read("max_lag_ms", &to.MaxLagMs)
		read("critical_lag_ms", &to.CriticalLagMs)
		read("max_active_backends", &to.MaxActive)
		read("critical_active_backends", &to.CriticalActive)
		var hib int64
		read("hibernate_s", &hib)
		if err == nil {
			to.Intensity, err = floatOpt(o, "intensity")
		}
		if err == nil {
			to.Threshold, err = floatOpt(o, "throttle_threshold")
		}
		if err == nil && o.IsSet("throttle_query") {
			q, ok := o.Value("throttle_query").(string)
			if !ok {
				err = driver.Permanentf(driver.KindInvalidInput, "option throttle_query must be a string, got %T", o.Value("throttle_query"))
			}
			to.Query = strings.TrimSpace(q)
		}
		var tos sessionSettings
		if err == nil {
			tos, err = r.timeoutOpts()
		}
		if err != nil {
			r.pacerErr = err
			return
		}
		to.Hibernate = time.Duration(hib) * time.Second
		to.LockTimeout = time.Duration(tos.LockMs) * time.Millisecond
		to.ReplicaDSNs = r.target().ReplicaDSNs
		to.target = r.target().Name
		to.pauses, _ = r.req.History.(pauseReader)
		to.ownName = sessionName(r.req.JobID, r.req.Task, r.req.Attempt)
		if to.ownName == "" {
			to.ownName = ApplicationName
		}
		to.criticalEnabled = to.CriticalLagMs > 0 || to.CriticalActive > 0
		r.pacer = &pacer{r: r, o: to, rec: commandlog.FromContext(ctx), replicas: map[string]*pgx.Conn{}}
	})
	return r.pacer, r.pacerErr
}

// close releases the pacer's replica connections.
func (p *pacer) close() {
	if p == nil {
		return
	}
	p.readMu.Lock()
	defer p.readMu.Unlock()
	for k, c := range p.replicas {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = c.Close(ctx)
		cancel()
		delete(p.replicas, k)
	}
}

// read returns the signals, read afresh when the last reading is older than
// throttlePoll. A signal that cannot be read (a replica down, a failed
// query) does not throttle: it is reported in the reason of nothing, and
// the work goes on, as replica_validation reports unreachable replicas.
func (p *pacer) read(ctx context.Context) signal {
	p.readMu.Lock()
	defer p.readMu.Unlock()
	if !p.lastRead.IsZero() && time.Since(p.lastRead) < throttlePoll {
		return p.last
	}
	// The readings are the pacer's, not maintenance: they stay out of the
	// command log.
	p.last = p.readNow(commandlog.WithRecorder(ctx, nil))
	p.lastRead = time.Now()
	return p.last
}

func (p *pacer) readNow(ctx context.Context) signal {
	var s signal
	var reasons, critical []string
	if p.o.MaxLagMs > 0 || p.o.CriticalLagMs > 0 {
		if lag, who, ok := p.lagMs(ctx); ok {
			if p.o.MaxLagMs > 0 && lag > p.o.MaxLagMs {
				reasons = append(reasons, fmt.Sprintf("replica lag %d ms > %d ms (%s)", lag, p.o.MaxLagMs, who))
			}
			if p.o.CriticalLagMs > 0 && lag >= p.o.CriticalLagMs {
				critical = append(critical, fmt.Sprintf("replica lag %d ms >= critical %d ms (%s)", lag, p.o.CriticalLagMs, who))
			}
		}
	}
	var active, waiters int64
	var blockMs float64
	err := p.r.pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM pg_stat_activity a
		        WHERE a.state = 'active' AND a.backend_type = 'client backend'
		          AND a.pid <> pg_backend_pid() AND a.application_name <> $1),
		       count(w.pid),
		       coalesce(max(extract(epoch FROM now() - coalesce(w.state_change, w.query_start)) * 1000), 0)
		FROM pg_stat_activity w
		WHERE w.wait_event_type = 'Lock' AND w.application_name <> $1
		  AND EXISTS (SELECT 1 FROM pg_stat_activity o
		              WHERE o.pid = ANY (pg_blocking_pids(w.pid)) AND o.application_name = $1)`,
		p.o.ownName).Scan(&active, &waiters, &blockMs)
	if err == nil {
		if p.o.MaxActive > 0 && active > p.o.MaxActive {
			reasons = append(reasons, fmt.Sprintf("active backends %d > %d", active, p.o.MaxActive))
		}
		if p.o.CriticalActive > 0 && active >= p.o.CriticalActive {
			critical = append(critical, fmt.Sprintf("active backends %d >= critical %d", active, p.o.CriticalActive))
		}
		if waiters > 0 {
			reasons = append(reasons, fmt.Sprintf("%d session(s) waiting on the task's locks", waiters))
			s.Blocking = time.Duration(blockMs) * time.Millisecond
		}
	}
	if p.o.Query != "" {
		v, err := p.probe(ctx)
		if err == nil && v > p.o.Threshold {
			reasons = append(reasons, fmt.Sprintf("throttle_query %g > %g", v, p.o.Threshold))
		}
	}
	if p.o.pauses != nil {
		until, why, ok, err := p.o.pauses.ManualPause(ctx, p.o.target, time.Now())
		if err == nil && ok {
			r := "manual pause until " + until.UTC().Format(time.RFC3339)
			if why != "" {
				r += ": " + why
			}
			reasons = append(reasons, r)
		}
	}
	s.Reason = strings.Join(reasons, "; ")
	if len(critical) > 0 {
		s.Critical, s.CriticalReason = true, strings.Join(critical, "; ")
	}
	return s
}

// probe runs throttle_query in a read-only transaction bounded by
// throttleProbeTimeout and returns the first column of its first row.
func (p *pacer) probe(ctx context.Context) (float64, error) {
	var v *float64
	err := pgx.BeginTxFunc(ctx, p.r.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", throttleProbeTimeout.Milliseconds())); err != nil {
			return err
		}
		return tx.QueryRow(ctx, p.o.Query).Scan(&v)
	})
	if err != nil {
		return 0, err
	}
	if v == nil {
		return 0, errors.New("throttle_query returned NULL")
	}
	return *v, nil
}

// throttleProbeTimeout bounds one run of throttle_query.
const throttleProbeTimeout = 5 * time.Second

// lagMs is the largest replay lag of the target's standbys: as the primary
// sees them (pg_stat_replication.replay_lag) and, for each
// Target.ReplicaDSNs entry, from inside (now() −
// pg_last_xact_replay_timestamp() unless all WAL received is replayed).
func (p *pacer) lagMs(ctx context.Context) (lag int64, who string, ok bool) {
	rows, err := p.r.pool.Query(ctx, `
		SELECT coalesce(application_name, ''), coalesce((extract(epoch FROM replay_lag) * 1000)::int8, 0)
		FROM pg_stat_replication`)
	if err == nil {
		for rows.Next() {
			var name string
			var ms int64
			if rows.Scan(&name, &ms) == nil {
				ok = true
				if ms > lag || who == "" {
					lag, who = max(lag, ms), "standby "+name
				}
			}
		}
		rows.Close()
	}
	for i, dsn := range p.o.ReplicaDSNs {
		ms, err := p.replicaLag(ctx, dsn)
		if err != nil {
			continue
		}
		ok = true
		if ms > lag || who == "" {
			lag, who = max(lag, ms), fmt.Sprintf("replica_dsns[%d]", i)
		}
	}
	return lag, who, ok
}

// replicaLag measures one standby from inside, keeping its connection for
// the next reading. Called under readMu.
func (p *pacer) replicaLag(ctx context.Context, dsn string) (int64, error) {
	c := p.replicas[dsn]
	if c == nil || c.IsClosed() {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return 0, err
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err = connectOnce(cctx, cfg, p.r.d.opts.ConnectionCheckInterval)
		cancel()
		if err != nil {
			return 0, err
		}
		p.replicas[dsn] = c
	}
	var ms int64
	err := c.QueryRow(ctx, `
		SELECT CASE WHEN NOT pg_is_in_recovery()
		              OR pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn()
		              OR pg_last_xact_replay_timestamp() IS NULL THEN 0
		            ELSE greatest(0, (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::int8) END`).Scan(&ms)
	if err != nil {
		_ = c.Close(context.WithoutCancel(ctx))
		delete(p.replicas, dsn)
	}
	return ms, err
}

// wait returns once no signal throttles, waiting (and heartbeating why)
// while one does, and hibernating while a critical level is up. It returns
// ctx.Err() when ctx is cancelled. One continuous wait of one kind is one
// throttle event.
func (p *pacer) wait(ctx context.Context) error {
	if p == nil {
		return ctx.Err()
	}
	kind := ""
	defer func() {
		if kind != "" {
			p.end()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		s := p.read(ctx)
		var k, why string
		var d time.Duration
		switch {
		case s.Critical:
			k, why, d = "hibernated", s.CriticalReason, p.o.Hibernate
		case s.Reason != "":
			k, why, d = "throttled", s.Reason, throttlePoll
		default:
			return nil
		}
		if k != kind {
			if kind != "" {
				p.end()
			}
			p.begin(k, why)
			kind = k
		}
		if err := p.sleep(ctx, k, why, d); err != nil {
			return err
		}
	}
}

// hibernate waits hibernate_s, heartbeating every throttlePoll.
func (p *pacer) hibernate(ctx context.Context, why string) error {
	p.begin("hibernated", why)
	defer p.end()
	return p.sleep(ctx, "hibernated", why, p.o.Hibernate)
}

// sleep waits d, heartbeating why every throttlePoll.
func (p *pacer) sleep(ctx context.Context, kind, why string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		p.note(kind, why, left)
		t := time.NewTimer(min(left, throttlePoll))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (p *pacer) note(kind, why string, left time.Duration) {
	p.mu.Lock()
	waited := time.Since(p.waitStart)
	total := (p.throttled + p.hibernated + waited).Round(time.Second)
	p.mu.Unlock()
	note := fmt.Sprintf("throttled: %s (waiting %s; %s so far)", why, waited.Round(time.Second), total)
	if kind == "hibernated" {
		note = fmt.Sprintf("hibernating %s more: %s (%s so far)", left.Round(time.Second), why, total)
	}
	p.r.progress(p.r.lastPct(), note, nil)
}

// begin and end bracket one worker's wait; the task's throttled time is
// the union of its workers' waits.
func (p *pacer) begin(kind, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waiting == 0 {
		p.waitStart, p.waitKind, p.waitReason = time.Now(), kind, why
	} else if kind == "hibernated" && p.waitKind != kind {
		// A hibernation that starts while others are throttled: the
		// episode is closed and a hibernation begins.
		p.closeEpisodeLocked()
		p.waitStart, p.waitKind, p.waitReason = time.Now(), kind, why
	}
	p.waiting++
}

func (p *pacer) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.waiting--
	if p.waiting == 0 {
		p.closeEpisodeLocked()
	}
}

func (p *pacer) closeEpisodeLocked() {
	d := time.Since(p.waitStart)
	if p.waitKind == "hibernated" {
		p.hibernated += d
	} else {
		p.throttled += d
	}
	p.eventsTotal++
	if len(p.events) < maxThrottleEvents {
		p.events = append(p.events, throttleEvent{Kind: p.waitKind, Reason: p.waitReason,
			StartedAt: p.waitStart.UnixMilli(), DurationMs: d.Milliseconds()})
	}
	p.waitStart = time.Now()
	p.rec.Throttled(d)
}

// sleepAfter sleeps after a unit that took took, per intensity.
func (p *pacer) sleepAfter(ctx context.Context, took time.Duration) error {
	if p == nil || p.o.Intensity >= 1 || p.o.Intensity <= 0 || took <= 0 {
		return ctx.Err()
	}
	d := time.Duration(float64(took) * (1/p.o.Intensity - 1))
	t := time.NewTimer(d)
	defer t.Stop()
	start := time.Now()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	slept := time.Since(start)
	p.mu.Lock()
	p.slept += slept
	p.mu.Unlock()
	p.rec.Throttled(slept)
	return nil
}

// guard runs one unit of work. While it runs, and a critical level is up,
// a statement of the task that other sessions have waited on for longer
// than lock_timeout is cancelled; the unit is then redone after the
// hibernation.
func (p *pacer) guard(ctx context.Context, unit func(ctx context.Context) error) error {
	if p == nil || !p.o.criticalEnabled {
		return unit(ctx)
	}
	for {
		uctx, cancel := context.WithCancelCause(ctx)
		done := make(chan struct{})
		var why string
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(throttlePoll)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
				}
				s := p.read(ctx)
				if s.Critical && s.Blocking > p.o.LockTimeout {
					why = fmt.Sprintf("%s; the task's statement blocked others for %s > lock_timeout %s",
						s.CriticalReason, s.Blocking.Round(time.Millisecond), p.o.LockTimeout)
					cancel(errCriticalCancel)
					return
				}
			}
		}()
		err := unit(uctx)
		close(done)
		wg.Wait()
		cancelled := errors.Is(context.Cause(uctx), errCriticalCancel)
		cancel(nil)
		if !cancelled || ctx.Err() != nil {
			return err
		}
		p.mu.Lock()
		p.cancels++
		p.mu.Unlock()
		if err := p.hibernate(ctx, "statement cancelled: "+why); err != nil {
			return err
		}
		if err := p.wait(ctx); err != nil {
			return err
		}
	}
}

// details adds the pacing figures to a task's result details.
func (p *pacer) details(d map[string]any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	d["throttled_ms"] = p.throttled.Milliseconds()
	d["hibernated_ms"] = p.hibernated.Milliseconds()
	d["intensity_slept_ms"] = p.slept.Milliseconds()
	d["intensity"] = p.o.Intensity
	d["max_lag_ms"] = p.o.MaxLagMs
	if p.cancels > 0 {
		d["throttle_cancelled_statements"] = p.cancels
	}
	events := p.events
	if events == nil {
		events = []throttleEvent{}
	}
	d["throttle_events"] = events
	if p.eventsTotal > len(events) {
		d["throttle_events_total"] = p.eventsTotal
	}
}
