package daemon

import (
	"context"
	"fmt"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/health"
)

// Thresholds of the target health probe (docs/TARGETS.md).
const (
	quotaDegradedPct   = 80
	quotaCriticalPct   = 95
	lagDegradedMs      = 1000
	lagCriticalMs      = 5000
	backupStaleSeconds = 35 * 24 * 3600 // the monthly verification plus slack
)

// targetProbe is the probe "target:<name>": the target driver's Probe,
// judged against the thresholds. Its context carries the runner's timeout.
func targetProbe(name string, reg *driver.Registry, hist driver.History) health.ProbeFunc {
	return func(ctx context.Context) health.Signal {
		t, d, err := reg.Lookup(name)
		if err != nil {
			// Its DSN is not readable by this process (a target group's
			// secret mounted on that group's workers only).
			return health.Signal{Status: health.Degraded, Message: "this process cannot open the target (its DSN is not readable here); no probe"}
		}
		prober, ok := d.(driver.Prober)
		if !ok {
			return health.Signal{Status: health.Degraded, Message: "no probe available for this target"}
		}
		th, err := prober.Probe(ctx, t, hist)
		if err != nil {
			return health.Signal{Status: health.Critical, Message: "unreachable: " + redact(err)}
		}
		status, msg := judge(th)
		return health.Signal{Status: status, Message: msg, Details: map[string]any{
			"reachable": th.Reachable, "version": th.Version, "in_recovery": th.InRecovery,
			"replica_lag_ms": th.ReplicaLagMs, "size_bytes": th.SizeBytes, "quota_used_pct": th.QuotaUsedPct,
			"last_verified_backup_age_s": th.LastVerifiedBackupAgeS, "wal_chain": th.WALChain,
		}}
	}
}

func judge(th driver.TargetHealth) (health.Status, string) {
	status, msg := health.OK, fmt.Sprintf("reachable, %s", th.Version)
	raise := func(s health.Status, m string) {
		if s == health.Critical || status == health.OK {
			status = s
		}
		msg += "; " + m
	}
	switch {
	case th.QuotaUsedPct >= quotaCriticalPct:
		raise(health.Critical, fmt.Sprintf("quota %.1f %% used", th.QuotaUsedPct))
	case th.QuotaUsedPct >= quotaDegradedPct:
		raise(health.Degraded, fmt.Sprintf("quota %.1f %% used", th.QuotaUsedPct))
	}
	switch {
	case th.ReplicaLagMs > lagCriticalMs:
		raise(health.Critical, fmt.Sprintf("replica lag %d ms", th.ReplicaLagMs))
	case th.ReplicaLagMs > lagDegradedMs:
		raise(health.Degraded, fmt.Sprintf("replica lag %d ms", th.ReplicaLagMs))
	}
	switch th.WALChain {
	case "FAILURE":
		raise(health.Critical, th.WALChainDetail)
	case "WARNING":
		raise(health.Degraded, th.WALChainDetail)
	}
	if th.LastVerifiedBackupAgeS > backupStaleSeconds {
		raise(health.Degraded, fmt.Sprintf("newest verified backup is %d days old", th.LastVerifiedBackupAgeS/86400))
	}
	return status, msg
}

// redact keeps probe errors short; drivers never put DSNs in errors, but a
// health body is world-readable to read-scoped tokens, so cap it anyway.
func redact(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
