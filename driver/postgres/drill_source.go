package postgres

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/driver"
)

// restoreSource is where DrillRestore takes its base backup from.
type restoreSource struct {
	Role string // "standby" or "primary"
	Name string // host:port, never the DSN
	DSN  string
	Lag  string // the standby's lag when it was chosen
}

func (s restoreSource) String() string {
	out := s.Role + " " + s.Name
	if s.Lag != "" {
		out += " (" + s.Lag + ")"
	}
	return out
}

// dsnName is host:port of a connection string (never the DSN itself).
func dsnName(dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "(unparsable connection string)"
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

// walSource reads whether the server q reaches can serve pg_basebackup:
// wal_level, max_wal_senders and the REPLICATION attribute of the user.
func walSource(ctx context.Context, q queryRowFunc) (walLevel string, senders int, replication bool, err error) {
	err = q(ctx, `SELECT current_setting('wal_level'), current_setting('max_wal_senders')::int,
		       coalesce((SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user), false)`).
		Scan(&walLevel, &senders, &replication)
	return
}

func walSourceProblem(walLevel string, senders int, replication bool) string {
	switch {
	case walLevel == "minimal":
		return "wal_level is minimal"
	case senders <= 0:
		return "max_wal_senders is 0"
	case !replication:
		return "the connecting role has neither REPLICATION nor SUPERUSER"
	}
	return ""
}

// chooseSource picks the restore source: the first standby in
// ReplicaDSNs that is reachable, in recovery and able to serve
// pg_basebackup, else the primary. notes say why others were passed over.
func (r *run) chooseSource(ctx context.Context) (restoreSource, []string, error) {
	t := r.target()
	var notes []string
	for i, dsn := range t.ReplicaDSNs {
		name := dsnName(dsn)
		src, why := inspectStandby(ctx, dsn, r.d.opts.ConnectionCheckInterval)
		if why != "" {
			notes = append(notes, fmt.Sprintf("replica[%d] %s not used: %s", i, name, why))
			continue
		}
		return src, notes, nil
	}
	walLevel, senders, replication, err := walSource(ctx, r.pool.QueryRow)
	if err != nil {
		return restoreSource{}, notes, classify(ctx, err, "read the primary's WAL settings")
	}
	if why := walSourceProblem(walLevel, senders, replication); why != "" {
		standbys := "no replica_dsns configured"
		if len(notes) > 0 {
			standbys = strings.Join(notes, "; ")
		}
		return restoreSource{}, notes, driver.Permanentf(driver.KindMisconfigured,
			"target %s: no restore source: the primary cannot serve pg_basebackup (%s), and no standby can (%s)", t.Name, why, standbys)
	}
	return restoreSource{Role: "primary", Name: dsnName(t.DSN), DSN: t.DSN}, notes, nil
}

// inspectStandby connects to a configured replica; why is "" when it can be
// the restore source.
func inspectStandby(ctx context.Context, dsn string, check time.Duration) (restoreSource, string) {
	src := restoreSource{Role: "standby", Name: dsnName(dsn), DSN: dsn}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return src, "connection string does not parse"
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := connectOnce(cctx, cfg, check)
	if err != nil {
		return src, "unreachable: " + pgMessage(err)
	}
	defer conn.Close(context.Background())
	var inRecovery bool
	if err := conn.QueryRow(cctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err != nil {
		return src, "query failed: " + pgMessage(err)
	}
	if !inRecovery {
		return src, "not in recovery (promoted, or not a standby)"
	}
	walLevel, senders, replication, err := walSource(cctx, conn.QueryRow)
	if err != nil {
		return src, "query failed: " + pgMessage(err)
	}
	if why := walSourceProblem(walLevel, senders, replication); why != "" {
		return src, "cannot serve pg_basebackup: " + why
	}
	if l, err := standbyLag(cctx, conn.QueryRow); err == nil {
		switch {
		case l.ReplayPaused:
			src.Lag = "replay paused"
		case l.LagMs != nil:
			src.Lag = fmt.Sprintf("replay lag %d ms", *l.LagMs)
		}
	}
	return src, ""
}
