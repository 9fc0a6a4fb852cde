package postgres

import (
	"context"
	"time"

	"github.com/themis-maintenance/themis/driver"
)

var _ driver.Prober = (*Driver)(nil)

// Probe implements driver.Prober: a few read-only catalog queries on the
// target's pool (seconds, no locks): server version, whether it is a
// standby, the database size against the quota, the worst replica lag (the
// standby's own replay lag, or the largest replay/flush/write lag in
// pg_stat_replication; -1 with no replicas), and the age of the newest
// verified backup in h with the WAL-chain status recorded with it.
func (d *Driver) Probe(ctx context.Context, t driver.Target, h driver.History) (driver.TargetHealth, error) {
	th := driver.TargetHealth{ReplicaLagMs: -1, LastVerifiedBackupAgeS: -1}
	pool, err := d.pool(ctx, t)
	if err != nil {
		return th, err
	}
	r := &run{d: d, req: driver.Request{Target: t}, pool: pool}
	if err := r.loadServer(ctx); err != nil {
		return th, classify(ctx, err, "probe %s", t.Name)
	}
	th.Reachable, th.Version, th.InRecovery = true, r.srv.Version, r.srv.InRecovery
	if th.SizeBytes, err = r.databaseSize(ctx); err != nil {
		return th, err
	}
	if t.QuotaBytes > 0 {
		th.QuotaUsedPct = round1(float64(th.SizeBytes) * 100 / float64(t.QuotaBytes))
	}
	if r.srv.InRecovery {
		if l, err := standbyLag(ctx, pool.QueryRow); err == nil && l.LagMs != nil {
			th.ReplicaLagMs = *l.LagMs
		}
	} else if reps, err := primaryReplicas(ctx, r); err == nil {
		for _, l := range reps {
			if l.LagMs != nil && *l.LagMs > th.ReplicaLagMs {
				th.ReplicaLagMs = *l.LagMs
			}
		}
	}
	if h != nil {
		if rec, ok, err := h.LatestBackup(ctx, t.Name); err == nil && ok {
			th.LastVerifiedBackupAgeS = int64(time.Since(rec.TakenAt).Seconds())
			th.WALChain, th.WALChainDetail = recordedWALChain(rec)
		}
	}
	return th, nil
}
