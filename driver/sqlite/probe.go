package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"time"

	"github.com/themis-maintenance/themis/driver"
)

var _ driver.Prober = (*Driver)(nil)

// Probe reports the health of a SQLite target: the file opens and answers,
// its size against the quota, and the age of the newest verified backup.
// It only reads.
func (d *Driver) Probe(ctx context.Context, t driver.Target, h driver.History) (driver.TargetHealth, error) {
	th := driver.TargetHealth{ReplicaLagMs: -1, LastVerifiedBackupAgeS: -1}
	f, err := targetFile(t)
	if err != nil {
		return th, err
	}
	if _, err := os.Stat(f.Path); err != nil {
		return th, fmt.Errorf("probe %s: database file: %w", t.Name, err)
	}
	db, err := sql.Open("sqlite", f.uri("ro", d.opts.BusyTimeout))
	if err != nil {
		return th, fmt.Errorf("probe %s: %w", t.Name, err)
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&th.Version); err != nil {
		return th, fmt.Errorf("probe %s: %w", t.Name, err)
	}
	th.Reachable = true
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if st, err := os.Stat(f.Path + suffix); err == nil {
			th.SizeBytes += st.Size()
		}
	}
	if t.QuotaBytes > 0 {
		th.QuotaUsedPct = float64(th.SizeBytes) * 100 / float64(t.QuotaBytes)
	}
	if h != nil {
		if rec, ok, err := h.LatestBackup(ctx, t.Name); err == nil && ok {
			th.LastVerifiedBackupAgeS = int64(time.Since(rec.TakenAt).Seconds())
		}
	}
	return th, nil
}
