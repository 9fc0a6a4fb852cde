package replicaconsistency

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/health"
)

// ProbeName is the module name the probe reports under in GET /health.
const ProbeName = "replica-consistency"

// Default lag thresholds of the probe (and of the task's max_lag_ms).
const (
	DefaultDegradedLag = 1000 * time.Millisecond
	DefaultCriticalLag = 5000 * time.Millisecond
)

// TargetSource returns the configured targets (DSNs resolved). The probe
// calls it on every round, so a changed config file is picked up.
type TargetSource func(ctx context.Context) ([]driver.Target, error)

// ProbeOptions configure NewProbe. Zero values take the defaults.
type ProbeOptions struct {
	// DegradedLag and CriticalLag: a replica lagging more than
	// DegradedLag is degraded, more than CriticalLag critical.
	DegradedLag, CriticalLag time.Duration
	// ConnectTimeout bounds each connection (default 3 s), so that one
	// unreachable replica does not use up the probe's whole timeout.
	ConnectTimeout time.Duration
}

// Probe reports the replica lag of every PostgreSQL target that has
// replicas.
type Probe struct {
	targets TargetSource
	opts    ProbeOptions
}

// NewProbe returns a probe over the targets of src. It refuses thresholds
// out of order.
func NewProbe(src TargetSource, opts ProbeOptions) (*Probe, error) {
	if opts.DegradedLag <= 0 {
		opts.DegradedLag = DefaultDegradedLag
	}
	if opts.CriticalLag <= 0 {
		opts.CriticalLag = DefaultCriticalLag
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 3 * time.Second
	}
	if opts.CriticalLag < opts.DegradedLag {
		return nil, fmt.Errorf("replica-consistency probe: critical lag %s is below degraded lag %s", opts.CriticalLag, opts.DegradedLag)
	}
	if src == nil {
		return nil, fmt.Errorf("replica-consistency probe: no target source")
	}
	return &Probe{targets: src, opts: opts}, nil
}

// Judge rates one replica's lag: OK up to DegradedLag, Degraded above it,
// Critical above CriticalLag; Critical when the lag is unknown (nil).
func (p *Probe) Judge(lagMs *int64) health.Status {
	switch {
	case lagMs == nil:
		return health.Critical
	case *lagMs > p.opts.CriticalLag.Milliseconds():
		return health.Critical
	case *lagMs > p.opts.DegradedLag.Milliseconds():
		return health.Degraded
	}
	return health.OK
}

// Check is the health.ProbeFunc: it measures every replica of every
// PostgreSQL target (each replica_dsns entry from inside; a target without
// replica_dsns through its primary's pg_stat_replication) and reports the
// worst. Targets without replicas are left out; with none at all the probe
// is OK and says so.
func (p *Probe) Check(ctx context.Context) health.Signal {
	targets, err := p.targets(ctx)
	if err != nil {
		return health.Signal{Status: health.Unknown, Message: "cannot read the targets: " + err.Error()}
	}
	var lags []replicaLag
	for _, t := range targets {
		if t.Driver != "postgres" {
			continue
		}
		lags = append(lags, p.measureTarget(ctx, t)...)
	}
	if len(lags) == 0 {
		return health.Signal{Status: health.OK, Message: "no PostgreSQL target has replicas",
			Details: map[string]any{"replicas": []replicaLag{}}}
	}
	var maxLag int64
	statuses := make([]health.Status, 0, len(lags))
	var problems []string
	for _, l := range lags {
		st := health.Status(l.Status)
		statuses = append(statuses, st)
		if l.LagMs != nil {
			maxLag = max(maxLag, *l.LagMs)
		}
		if st != health.OK {
			problems = append(problems, fmt.Sprintf("%s %s: %s", l.Target, l.Replica, l.Note))
		}
	}
	sig := health.Signal{Status: health.Worst(statuses...), Details: map[string]any{
		"replicas": lags, "max_lag_ms": maxLag,
		"degraded_lag_ms": p.opts.DegradedLag.Milliseconds(), "critical_lag_ms": p.opts.CriticalLag.Milliseconds(),
	}}
	if len(problems) == 0 {
		sig.Message = fmt.Sprintf("%d replica(s), max lag %d ms", len(lags), maxLag)
	} else {
		sig.Message = strings.Join(problems, "; ")
	}
	return sig
}

// measureTarget returns the lag of each replica of t (none when t has no
// replicas).
func (p *Probe) measureTarget(ctx context.Context, t driver.Target) []replicaLag {
	var out []replicaLag
	rate := func(l replicaLag) replicaLag {
		l.Target = t.Name
		if l.Status == "" {
			l.Status = string(p.Judge(l.LagMs))
			switch {
			case l.LagMs == nil && l.Note == "":
				l.Note = "lag unknown (no transaction replayed yet, or the role lacks pg_monitor)"
			case health.Status(l.Status) != health.OK:
				l.Note = fmt.Sprintf("lag %d ms", *l.LagMs)
			}
		}
		return l
	}
	for i, dsn := range t.ReplicaDSNs {
		l := replicaLag{Replica: replicaName(dsn, i)}
		lag, err := p.standbyLag(ctx, dsn)
		if err != nil {
			l.Status, l.Note = string(health.Critical), "unreachable: "+err.Error()
		}
		l.LagMs = lag
		out = append(out, rate(l))
	}
	if len(t.ReplicaDSNs) > 0 {
		return out
	}
	conn, err := connect(ctx, t.DSN, "themis-replica-consistency-probe", p.opts.ConnectTimeout)
	if err != nil {
		// A primary we cannot reach tells nothing about its replicas; its
		// own target:<name> probe reports it unreachable.
		return []replicaLag{{Target: t.Name, Replica: "(primary)", Status: string(health.Unknown), Note: "cannot reach the primary: " + err.Error()}}
	}
	defer conn.Close(context.Background())
	lags, err := primaryLags(ctx, conn)
	if err != nil {
		return []replicaLag{{Target: t.Name, Replica: "(primary)", Status: string(health.Unknown), Note: err.Error()}}
	}
	for _, l := range lags {
		out = append(out, rate(l))
	}
	return out
}

func (p *Probe) standbyLag(ctx context.Context, dsn string) (*int64, error) {
	conn, err := connect(ctx, dsn, "themis-replica-consistency-probe", p.opts.ConnectTimeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	return standbyLagMs(ctx, conn)
}
