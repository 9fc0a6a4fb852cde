package replicaconsistency

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres"
)

// TaskType is the wire name of the example's task type.
const TaskType domain.TaskType = "replica_consistency_check"

// TaskDef is the registration of TaskType: everything the API, schedule
// validation, the OpenAPI document and the workflow know about it.
var TaskDef = domain.TaskDef{
	Type:  TaskType,
	Title: "Replica consistency check",
	Description: "Compare the largest tables of the primary with each replica (row count and a checksum of the first rows " +
		"by primary key) after the replica has replayed up to the primary's WAL position",
	Timeout: domain.TimeoutShort, // reads only: at most 2 h per attempt
	Heavy:   false,               // takes no lock that blocks writers: may overlap any task
	Options: map[string]domain.OptionSpec{
		"max_lag_ms": {Kind: domain.OptionInt, Min: 0, Max: 3_600_000, Default: 1000,
			Help: "a replica lagging more than this when the check starts is a WARNING"},
		"sample_tables": {Kind: domain.OptionInt, Min: 1, Max: 1000, Default: 20,
			Help: "the largest tables compared"},
		"sample_rows": {Kind: domain.OptionInt, Min: 0, Max: 1_000_000, Default: 1000,
			Help: "rows per table checksummed, first by primary key (0: row counts only)"},
		"catchup_timeout_s": {Kind: domain.OptionInt, Min: 1, Max: 3600, Default: 60,
			Help: "how long to wait for a replica to replay up to the primary's position"},
	},
}

// Table outcomes.
const (
	tableConsistent = "consistent"
	tableMismatch   = "mismatch"
	tableBusy       = "busy"    // written to during each of three comparisons
	tableLagging    = "lagging" // the replica did not catch up in time
)

// table is one user table of the primary, with its primary key columns.
type table struct {
	Schema, Name string
	Key          []string
}

func (t table) String() string { return t.Schema + "." + t.Name }

// fingerprint is a table's row count and the md5 of its first rows.
type fingerprint struct {
	Rows     int64  `json:"rows"`
	Checksum string `json:"checksum,omitempty"`
}

// tableResult is the outcome of one table on one replica.
type tableResult struct {
	Replica   string       `json:"replica"`
	Table     string       `json:"table"`
	Status    string       `json:"status"`
	Primary   *fingerprint `json:"primary,omitempty"`
	OnReplica *fingerprint `json:"on_replica,omitempty"`
}

// checkpoint is what a retried attempt resumes from: the results so far.
type checkpoint struct {
	Done []tableResult `json:"done"`
}

// runCheck implements TaskType on PostgreSQL (driver.Implement).
func runCheck(ctx context.Context, req driver.Request) (driver.Result, error) {
	maxLag, nTables, nRows := req.Int("max_lag_ms"), req.Int("sample_tables"), req.Int("sample_rows")
	catchup := time.Duration(req.Int("catchup_timeout_s")) * time.Second
	if len(req.Target.ReplicaDSNs) == 0 {
		return driver.Result{}, driver.Permanentf(driver.KindMisconfigured,
			"target %s has no replica_dsns: there is no replica to compare", req.Target.Name)
	}
	// The sessions carry the attempt's application_name, as the built-in
	// tasks' do: monitoring sees whose they are.
	app := postgres.SessionName(req.JobID, req.Task, req.Attempt)
	primary, err := connect(ctx, req.Target.DSN, app, 30*time.Second)
	if err != nil {
		return driver.Result{}, fmt.Errorf("connect to the primary of %s: %w", req.Target.Name, err) // retried
	}
	defer primary.Close(context.Background())
	var inRecovery bool
	if err := primary.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err != nil {
		return driver.Result{}, fmt.Errorf("query the primary: %w", err)
	}
	if inRecovery {
		return driver.Result{}, driver.Permanentf(driver.KindMisconfigured, "target %s is a standby: point its dsn at the primary", req.Target.Name)
	}
	tables, err := largestTables(ctx, primary, nTables)
	if err != nil {
		return driver.Result{}, err
	}

	var cp checkpoint
	driver.DecodeCheckpoint(req.Checkpoint, &cp)
	done := map[string]bool{}
	for _, r := range cp.Done {
		done[r.Replica+" "+r.Table] = true
	}
	var alerts []domain.Alert
	var lags []replicaLag
	total := len(tables) * len(req.Target.ReplicaDSNs)
	for i, dsn := range req.Target.ReplicaDSNs {
		name := replicaName(dsn, i)
		replica, err := connect(ctx, dsn, app, 30*time.Second)
		var lag *int64
		if err == nil {
			lag, err = standbyLagMs(ctx, replica)
		}
		if err != nil {
			if ctx.Err() != nil {
				return driver.Result{}, ctx.Err()
			}
			lags = append(lags, replicaLag{Replica: name, Status: "unreachable", Note: err.Error()})
			alerts = append(alerts, domain.Alert{Level: domain.AlertCritical, Subject: name,
				Message: fmt.Sprintf("replica %s cannot be compared: %v", name, err)})
			if replica != nil {
				replica.Close(context.Background())
			}
			continue
		}
		l := replicaLag{Replica: name, LagMs: lag, Status: "ok"}
		if lag != nil && *lag > maxLag {
			l.Status = "lagging"
			alerts = append(alerts, domain.Alert{Level: domain.AlertWarning, Subject: name,
				Message: fmt.Sprintf("replica %s lags %d ms (> max_lag_ms %d)", name, *lag, maxLag)})
		}
		lags = append(lags, l)
		for _, t := range tables {
			if done[name+" "+t.String()] {
				continue
			}
			res, err := compareTable(ctx, primary, replica, t, nRows, catchup)
			if err != nil {
				replica.Close(context.Background())
				return driver.Result{}, fmt.Errorf("compare %s on %s: %w", t, name, err)
			}
			res.Replica = name
			cp.Done = append(cp.Done, res)
			req.Progress(driver.Progress{Pct: 100 * float64(len(cp.Done)) / float64(total),
				Note: fmt.Sprintf("%s on %s: %s", t, name, res.Status), Checkpoint: cp})
		}
		replica.Close(context.Background())
	}

	counts := map[string]int{}
	for _, r := range cp.Done {
		counts[r.Status]++
		switch r.Status {
		case tableMismatch:
			alerts = append(alerts, domain.Alert{Level: domain.AlertCritical, Subject: r.Replica + " " + r.Table,
				Message: fmt.Sprintf("%s differs on replica %s: primary %d rows (%s), replica %d rows (%s)",
					r.Table, r.Replica, r.Primary.Rows, r.Primary.Checksum, r.OnReplica.Rows, r.OnReplica.Checksum)})
		case tableLagging:
			alerts = append(alerts, domain.Alert{Level: domain.AlertHigh, Subject: r.Replica + " " + r.Table,
				Message: fmt.Sprintf("replica %s did not replay up to the primary within %s; %s not compared", r.Replica, catchup, r.Table)})
		}
	}
	return driver.Result{
		Summary: fmt.Sprintf("%d replica(s), %d table(s): %d consistent, %d mismatched, %d busy, %d lagging",
			len(req.Target.ReplicaDSNs), len(tables), counts[tableConsistent], counts[tableMismatch], counts[tableBusy], counts[tableLagging]),
		Details: map[string]any{
			"replicas": lags, "tables": cp.Done, "compared": len(cp.Done),
			"consistent": counts[tableConsistent], "mismatched": counts[tableMismatch],
			"busy": counts[tableBusy], "lagging": counts[tableLagging],
			"max_lag_ms": maxLag, "sample_tables": nTables, "sample_rows": nRows,
		},
		Alerts: alerts,
	}, nil
}

// largestTables lists the n largest permanent user tables of the primary
// (unlogged tables are not replicated), with their primary key columns.
func largestTables(ctx context.Context, conn *pgx.Conn, n int64) ([]table, error) {
	rows, err := conn.Query(ctx, `
		SELECT n.nspname::text, c.relname::text,
		       coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord)
		                 FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
		                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		                 WHERE i.indrelid = c.oid AND i.indisprimary), '{}')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND c.relpersistence = 'p'
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
		ORDER BY pg_total_relation_size(c.oid) DESC, 1, 2
		LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (table, error) {
		var t table
		err := row.Scan(&t.Schema, &t.Name, &t.Key)
		return t, err
	})
}

// compareTable compares t on the primary and the replica. The primary keeps
// changing, so it reads the primary (p1), waits for the replica to replay
// past that, reads the replica (r), reads the primary again (p2): the
// replica is consistent when it shows a state the primary had (r == p1 or
// r == p2), inconsistent when the primary did not change (p1 == p2) and r
// differs, and the table is busy when neither holds three times in a row.
func compareTable(ctx context.Context, primary, replica *pgx.Conn, t table, nRows int64, catchup time.Duration) (tableResult, error) {
	res := tableResult{Table: t.String(), Status: tableBusy}
	for range 3 {
		p1, err := fingerprintOf(ctx, primary, t, nRows)
		if err != nil {
			return res, err
		}
		caughtUp, err := waitReplay(ctx, primary, replica, catchup)
		if err != nil {
			return res, err
		}
		if !caughtUp {
			res.Status = tableLagging
			return res, nil
		}
		r, err := fingerprintOf(ctx, replica, t, nRows)
		if err != nil {
			return res, err
		}
		p2, err := fingerprintOf(ctx, primary, t, nRows)
		if err != nil {
			return res, err
		}
		res.Primary, res.OnReplica = &p2, &r
		if res.Status = verdict(p1, r, p2); res.Status != tableBusy {
			return res, nil
		}
	}
	return res, nil
}

// verdict judges one comparison: the replica's fingerprint r read between
// two of the primary's, p1 and p2.
func verdict(p1, r, p2 fingerprint) string {
	switch {
	case r == p1 || r == p2:
		return tableConsistent // a state the primary had
	case p1 == p2:
		return tableMismatch // the primary stood still, the replica differs
	}
	return tableBusy // written to meanwhile: try again
}

// fingerprintOf reads t's row count and the md5 of its first nRows rows by
// primary key, in one statement (one snapshot). A table without a primary
// key has no stable order: only its rows are counted.
func fingerprintOf(ctx context.Context, conn *pgx.Conn, t table, nRows int64) (fingerprint, error) {
	rel := pgx.Identifier{t.Schema, t.Name}.Sanitize()
	sum := `''`
	if len(t.Key) > 0 && nRows > 0 {
		key := make([]string, len(t.Key))
		for i, c := range t.Key {
			key[i] = "s." + pgx.Identifier{c}.Sanitize()
		}
		order := strings.Join(key, ", ")
		sum = fmt.Sprintf(`(SELECT coalesce(md5(string_agg(md5(s::text), ',' ORDER BY %s)), '')
			FROM (SELECT * FROM %s s ORDER BY %s LIMIT %d) s)`, order, rel, order, nRows)
	}
	var fp fingerprint
	err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT (SELECT count(*) FROM %s), %s`, rel, sum)).Scan(&fp.Rows, &fp.Checksum)
	if err != nil {
		return fp, fmt.Errorf("fingerprint %s: %w", t, err)
	}
	return fp, nil
}

// waitReplay waits until the replica has replayed up to the primary's
// current WAL insert position (what has been committed, written or not);
// false when it has not within timeout.
func waitReplay(ctx context.Context, primary, replica *pgx.Conn, timeout time.Duration) (bool, error) {
	var lsn string
	if err := primary.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
		return false, fmt.Errorf("read the primary's WAL position: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		var replayed bool
		if err := replica.QueryRow(ctx, `SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)`, lsn).Scan(&replayed); err != nil {
			return false, fmt.Errorf("read the replica's replay position: %w", err)
		}
		if replayed {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
