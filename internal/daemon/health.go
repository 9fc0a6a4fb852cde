package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/internal/config"
)

// Thresholds of the target health probe (SPEC §4).
const (
	quotaDegradedPct   = 80
	quotaCriticalPct   = 95
	lagDegradedMs      = 1000
	lagCriticalMs      = 5000
	backupStaleSeconds = 35 * 24 * 3600 // the monthly verification plus slack
)

// targetProber returns the probe the API's health cache runs in the
// background: each target's driver Probe, judged against the thresholds.
func targetProber(cfg *config.Config, reg *driver.Registry, hist driver.History) func(context.Context) []api.HealthSignal {
	return func(ctx context.Context) []api.HealthSignal {
		var out []api.HealthSignal
		for _, tc := range cfg.Targets {
			now := time.Now().UnixMilli()
			sig := api.HealthSignal{Name: "target:" + tc.Name, CheckedAtMs: now}
			t, d, err := reg.Lookup(tc.Name)
			prober, ok := d.(driver.Prober)
			if err != nil || !ok {
				sig.Status, sig.Message = api.HealthDegraded, "no probe available for this target"
				out = append(out, sig)
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			th, err := prober.Probe(pctx, t, hist)
			cancel()
			if err != nil {
				sig.Status, sig.Message = api.HealthCritical, "unreachable: "+redact(err)
				out = append(out, sig)
				continue
			}
			sig.Status, sig.Message = judge(th)
			sig.Details = map[string]any{
				"reachable": th.Reachable, "version": th.Version, "in_recovery": th.InRecovery,
				"replica_lag_ms": th.ReplicaLagMs, "size_bytes": th.SizeBytes, "quota_used_pct": th.QuotaUsedPct,
				"last_verified_backup_age_s": th.LastVerifiedBackupAgeS,
			}
			out = append(out, sig)
		}
		return out
	}
}

func judge(th driver.TargetHealth) (string, string) {
	status, msg := api.HealthOK, fmt.Sprintf("reachable, %s", th.Version)
	raise := func(s, m string) {
		if s == api.HealthCritical || status == api.HealthOK {
			status = s
		}
		msg += "; " + m
	}
	switch {
	case th.QuotaUsedPct >= quotaCriticalPct:
		raise(api.HealthCritical, fmt.Sprintf("quota %.1f %% used", th.QuotaUsedPct))
	case th.QuotaUsedPct >= quotaDegradedPct:
		raise(api.HealthDegraded, fmt.Sprintf("quota %.1f %% used", th.QuotaUsedPct))
	}
	switch {
	case th.ReplicaLagMs > lagCriticalMs:
		raise(api.HealthCritical, fmt.Sprintf("replica lag %d ms", th.ReplicaLagMs))
	case th.ReplicaLagMs > lagDegradedMs:
		raise(api.HealthDegraded, fmt.Sprintf("replica lag %d ms", th.ReplicaLagMs))
	}
	if th.LastVerifiedBackupAgeS > backupStaleSeconds {
		raise(api.HealthDegraded, fmt.Sprintf("newest verified backup is %d days old", th.LastVerifiedBackupAgeS/86400))
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
