package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgerrcode"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// The canary table. It is created in the public schema of the target's
// database and dropped once no drill has rows in it.
const (
	canaryTable = "public.themis_drill_canary"
	canaryDDL   = `CREATE TABLE IF NOT EXISTS public.themis_drill_canary (
		drill_id text, seq bigint, written_at timestamptz, PRIMARY KEY (drill_id, seq))`
)

// canaryRun is a run on the target's pool without server facts (canary
// writes are frequent and need none).
func (d *Driver) canaryRun(ctx context.Context, t driver.Target, drillID string) (*run, error) {
	if drillID == "" {
		return nil, driver.Permanentf(driver.KindInvalidInput, "drill id is empty")
	}
	pool, err := d.pool(ctx, t)
	if err != nil {
		return nil, err
	}
	return &run{d: d, req: driver.Request{Target: t, Task: domain.TaskDisasterRecoveryDrill}, pool: pool}, nil
}

// classifyCanary is classify, with a read-only server (a standby) as
// Misconfigured.
func classifyCanary(ctx context.Context, t driver.Target, err error, what string) error {
	if isCode(err, pgerrcode.ReadOnlySQLTransaction) && ctx.Err() == nil {
		return driver.Permanentf(driver.KindMisconfigured, "target %s: %s: the server is read-only (a standby?); the canary is written on the primary: %v", t.Name, what, err)
	}
	return classify(ctx, err, "%s", what)
}

// CanaryWrite implements driver.Driller: it creates the canary table when
// missing and inserts row (drillID, seq) stamped at (microseconds), each
// statement in autocommit. Writing the same seq again changes nothing.
// This is the only write a drill makes to production.
func (d *Driver) CanaryWrite(ctx context.Context, t driver.Target, drillID string, seq int64, at time.Time) error {
	r, err := d.canaryRun(ctx, t, drillID)
	if err != nil {
		return err
	}
	s, err := r.session(ctx, sessionSettings{LockMs: canaryLockTimeout.Milliseconds(), StatementMs: canaryStatementTimeout.Milliseconds()})
	if err != nil {
		return err
	}
	defer s.release()
	if err := s.exec(ctx, canaryDDL); err != nil {
		return classifyCanary(ctx, t, err, "create the canary table")
	}
	err = s.exec(ctx, `INSERT INTO `+canaryTable+` (drill_id, seq, written_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		drillID, seq, at.Truncate(time.Microsecond))
	return classifyCanary(ctx, t, err, fmt.Sprintf("insert canary row %d", seq))
}

// CanaryCleanup implements driver.Driller: in one transaction it locks the
// canary table, deletes the drill's rows and drops the table when no other
// drill has rows left in it. A missing table is success.
func (d *Driver) CanaryCleanup(ctx context.Context, t driver.Target, drillID string) error {
	r, err := d.canaryRun(ctx, t, drillID)
	if err != nil {
		return err
	}
	s, err := r.session(ctx, sessionSettings{LockMs: r.d.opts.LockTimeout.Milliseconds(), StatementMs: canaryStatementTimeout.Milliseconds()})
	if err != nil {
		return err
	}
	defer s.release()
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return classify(ctx, err, "begin canary clean-up")
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, canaryTable).Scan(&exists); err != nil {
		return classify(ctx, err, "look for the canary table")
	}
	if !exists {
		return nil
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE `+canaryTable+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		if isGone(err) {
			return nil
		}
		return classifyCanary(ctx, t, err, "lock the canary table")
	}
	if _, err := tx.Exec(ctx, `DELETE FROM `+canaryTable+` WHERE drill_id = $1`, drillID); err != nil {
		return classifyCanary(ctx, t, err, "delete the drill's canary rows")
	}
	var others bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+canaryTable+`)`).Scan(&others); err != nil {
		return classify(ctx, err, "count canary rows")
	}
	if !others {
		if _, err := tx.Exec(ctx, `DROP TABLE `+canaryTable); err != nil {
			return classifyCanary(ctx, t, err, "drop the canary table")
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return classify(ctx, err, "commit canary clean-up")
	}
	return nil
}
