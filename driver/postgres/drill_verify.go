package postgres

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
)

// DrillVerify implements driver.Driller. It connects to the drill's
// scratch instance (started again if it had stopped) and checks it with
// amcheck (the extension is created in the scratch instance only), counts
// the rows of every table of the target's database (unlogged tables and
// the canary table apart), reads the drill's canary rows, and times a
// SELECT 1. Damage is reported with IntegrityOK false and the problems
// listed, not as an error; so is a copy amcheck cannot check.
func (d *Driver) DrillVerify(ctx context.Context, t driver.Target, s driver.Scratch) (driver.DrillVerification, error) {
	v := driver.DrillVerification{RowCounts: map[string]int64{}}
	p, err := drillPathsOf(t, s.DrillID)
	if err != nil {
		return v, err
	}
	if p.dir == "" || (s.Dir != "" && filepath.Clean(s.Dir) != p.dir) {
		return v, driver.Permanentf(driver.KindInvalidInput, "scratch %q is not the scratch directory of drill %s on %s", s.Dir, s.DrillID, t.Name)
	}
	unlock, err := lockDrill(ctx, p.dir)
	if err != nil {
		return v, err
	}
	defer unlock()
	m, err := readDrillMeta(p)
	if err != nil || m.State != drillReady || m.DrillID != s.DrillID {
		return v, driver.Permanentf(driver.KindVerificationFailed, "drill %s: no restored instance in %s (never restored, or cleaned up)", s.DrillID, p.dir)
	}
	now := time.Now()
	_ = os.Chtimes(p.marker(), now, now)
	user, err := pgbin.ResolveUser(t.OSUser)
	if err != nil {
		return v, driver.Permanent(driver.KindMisconfigured, err)
	}
	r := &run{d: d, req: driver.Request{Target: t, Task: domain.TaskDisasterRecoveryDrill}}
	if m, err = r.ensureScratchRunning(ctx, p, m, user); err != nil {
		if ctx.Err() != nil {
			return v, ctx.Err()
		}
		return v, fmt.Errorf("scratch instance of drill %s: %w", s.DrillID, err)
	}
	conn, err := scratchConnect(ctx, m, m.Database)
	if err != nil {
		if ctx.Err() != nil {
			return v, ctx.Err()
		}
		return v, fmt.Errorf("connect to the scratch instance on port %d: %w", m.Port, err)
	}
	defer conn.Close(context.Background())

	var problems []string
	// damaged turns corruption into problems; other errors are returned.
	damaged := func(what string, err error) error {
		err = classify(ctx, err, "%s", what)
		if permanentKind(err) == driver.KindIntegrityViolation {
			problems = append(problems, err.Error())
			return nil
		}
		return err
	}

	checked, found, err := amcheckRestored(ctx, conn)
	if err != nil {
		if err := damaged("amcheck", err); err != nil {
			return v, err
		}
	}
	problems = append(problems, found...)
	if checked.Unavailable != "" {
		problems = append(problems, "integrity not checked: amcheck "+checked.Unavailable)
	}

	tables, err := countableTables(ctx, conn.Query)
	if err != nil {
		if err := damaged("list tables", err); err != nil {
			return v, err
		}
	}
	for _, tb := range tables {
		if !tb.Physical || tb.String() == canaryTable {
			continue
		}
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+tb.ident()).Scan(&n); err != nil {
			if isGone(err) {
				continue
			}
			if err := damaged("count rows of "+tb.String(), err); err != nil {
				return v, err
			}
			continue
		}
		v.RowCounts[tb.String()] = n
	}
	v.Tables = len(v.RowCounts)

	var hasCanary bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, canaryTable).Scan(&hasCanary); err != nil {
		return v, classify(ctx, err, "look for the canary table")
	}
	if hasCanary {
		var newest *time.Time
		err := conn.QueryRow(ctx, `SELECT count(*), max(written_at) FROM `+canaryTable+` WHERE drill_id = $1`, s.DrillID).Scan(&v.CanaryRows, &newest)
		if err != nil {
			if err := damaged("read canary rows", err); err != nil {
				return v, err
			}
		} else if newest != nil {
			v.NewestCanaryAt = newest.UTC()
		}
	}

	var one int
	if err := conn.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
		return v, classify(ctx, err, "SELECT 1 on the scratch instance")
	}
	v.ServingAt = time.Now()
	v.Problems = problems
	v.IntegrityOK = len(problems) == 0
	return v, nil
}
