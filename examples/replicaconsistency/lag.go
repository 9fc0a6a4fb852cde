package replicaconsistency

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// replicaLag is one replica's lag as the probe and the task report it.
type replicaLag struct {
	Target string `json:"target"`
	// Replica is host:port of a replica_dsns entry, or the
	// application_name of a pg_stat_replication row; never a DSN, which
	// may hold a password.
	Replica string `json:"replica"`
	// LagMs is nil when the lag cannot be told (unreachable, or no
	// transaction replayed yet).
	LagMs  *int64 `json:"lag_ms,omitempty"`
	Status string `json:"status"`
	Note   string `json:"note,omitempty"`
}

// replicaName is how a replica DSN is shown: host:port, or replica[i] when
// the DSN does not parse.
func replicaName(dsn string, i int) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fmt.Sprintf("replica[%d]", i)
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

// connect opens one connection named appName, giving up after timeout.
// Errors never carry the DSN.
func connect(ctx context.Context, dsn, appName string, timeout time.Duration) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("connection string does not parse")
	}
	cfg.RuntimeParams["application_name"] = appName
	cfg.ConnectTimeout = timeout
	return pgx.ConnectConfig(ctx, cfg)
}

// standbyLagMs measures a standby from inside, as driver/postgres does for
// replica_validation: now() - pg_last_xact_replay_timestamp(), except that
// a standby that has replayed everything it received lags 0 ms (an idle
// primary commits nothing, and must not read as lag). It fails when the
// server is not in recovery (promoted, or not a standby at all). The lag is
// nil when no transaction has been replayed yet.
func standbyLagMs(ctx context.Context, conn *pgx.Conn) (*int64, error) {
	var inRecovery bool
	var lag *int64
	err := conn.QueryRow(ctx, `
		SELECT pg_is_in_recovery(),
		       CASE
		         WHEN pg_last_wal_receive_lsn() IS NOT NULL AND pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
		         WHEN pg_last_xact_replay_timestamp() IS NULL THEN NULL
		         ELSE greatest(0, (extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::int8)
		       END`).Scan(&inRecovery, &lag)
	if err != nil {
		return nil, fmt.Errorf("measure lag: %w", err)
	}
	if !inRecovery {
		return nil, errors.New("server is not in recovery (promoted, or not a standby)")
	}
	return lag, nil
}

// primaryLags reads the primary's view of its standbys (pg_stat_replication):
// the worst of replay, flush and write lag, or 0 when a standby has replayed
// every byte (the lag columns are NULL on an idle primary). The lag columns
// need pg_monitor (or superuser); without it the lag is nil.
func primaryLags(ctx context.Context, conn *pgx.Conn) ([]replicaLag, error) {
	rows, err := conn.Query(ctx, `
		SELECT coalesce(nullif(application_name, ''), 'walsender@' || coalesce(host(client_addr), 'local')),
		       CASE WHEN pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) = 0 THEN 0
		            ELSE (extract(epoch FROM greatest(replay_lag, flush_lag, write_lag)) * 1000)::int8 END
		FROM pg_stat_replication ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("read pg_stat_replication: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (replicaLag, error) {
		var l replicaLag
		err := row.Scan(&l.Replica, &l.LagMs)
		return l, err
	})
}
