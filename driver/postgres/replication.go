package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// Replica states, worst last.
const (
	replicaOK          = "ok"
	replicaDegraded    = "degraded"
	replicaCritical    = "critical"
	replicaUnreachable = "unreachable"
)

// replicaLag is one view of a replica: as the primary sees it
// (pg_stat_replication), or from inside (the target itself when it is a
// standby, or a Target.ReplicaDSNs entry).
type replicaLag struct {
	Name         string `json:"name"`
	Source       string `json:"source"` // pg_stat_replication, target_standby or replica_dsn
	State        string `json:"state,omitempty"`
	SyncState    string `json:"sync_state,omitempty"`
	ClientAddr   string `json:"client_addr,omitempty"`
	LagBytes     *int64 `json:"lag_bytes,omitempty"`
	LagMs        *int64 `json:"lag_ms,omitempty"`
	ReplayPaused bool   `json:"replay_paused,omitempty"`
	// WalsenderPID is the primary's WAL sender process serving the
	// standby: on a pg_stat_replication entry, and on the replica_dsn entry
	// of the same standby.
	WalsenderPID int32 `json:"walsender_pid,omitempty"`
	// SameStandbyAs, on a replica_dsn entry, names the pg_stat_replication
	// entry that is the same standby seen from the primary: the two entries
	// count as one replica.
	SameStandbyAs string `json:"same_standby_as,omitempty"`
	Status        string `json:"status"`
	Note          string `json:"note,omitempty"`

	// appName is pg_stat_replication.application_name.
	appName string
	// upstream is what a replica_dsn standby streams from; nil when unknown.
	upstream *upstream
}

// slotInfo is a replication slot on the primary.
type slotInfo struct {
	Name          string `json:"name"`
	Type          string `json:"type"`
	Active        bool   `json:"active"`
	RetainedBytes *int64 `json:"retained_bytes,omitempty"`
	WALStatus     string `json:"wal_status,omitempty"`

	activePID int32
}

// replicaValidation measures replication lag. On a primary: every row of
// pg_stat_replication (bytes behind via pg_wal_lsn_diff against
// pg_current_wal_lsn, time via replay_lag, falling back to flush/write lag)
// and the replication slots (an inactive slot retaining WAL is a WARNING, a
// lost one HIGH). On a standby target: now() - pg_last_xact_replay_timestamp()
// unless everything received has been replayed (then 0, so an idle primary
// does not read as lag). Every Target.ReplicaDSNs entry is connected to and
// measured the same way; an unreachable one is critical. A ReplicaDSNs
// standby that streams from this primary is also one of its
// pg_stat_replication rows: the two views are linked (same_standby_as,
// walsender_pid) and count as one replica (see linkStandbys).
//
// Lag above degraded_lag_ms (default 1000) is a WARNING alert, above
// critical_lag_ms (default 5000) a CRITICAL alert. Crossing a threshold does
// not fail the task: the measurement succeeded, and the alerts (and
// details.status) are how it reports replicas in trouble. Only failing to
// measure the target itself is an error. No locks are taken.
func replicaValidation(ctx context.Context, r *run) (driver.Result, error) {
	degraded, err := intOpt(r.opts(), "degraded_lag_ms")
	if err != nil {
		return driver.Result{}, err
	}
	critical, err := intOpt(r.opts(), "critical_lag_ms")
	if err != nil {
		return driver.Result{}, err
	}
	if critical < degraded {
		return driver.Result{}, driver.Permanentf(driver.KindInvalidInput, "critical_lag_ms (%d) is below degraded_lag_ms (%d)", critical, degraded)
	}
	rate := func(l *replicaLag) {
		if l.Status != "" {
			return
		}
		l.Status = replicaOK
		if l.LagMs != nil {
			switch {
			case *l.LagMs > critical:
				l.Status = replicaCritical
			case *l.LagMs > degraded:
				l.Status = replicaDegraded
			}
		}
	}
	var replicas []replicaLag
	var slots []slotInfo
	role := "primary"
	if r.srv.InRecovery {
		role = "standby"
		l, err := standbyLag(ctx, r.pool.QueryRow)
		if err != nil {
			return driver.Result{}, classify(ctx, err, "measure standby lag")
		}
		l.Name, l.Source = r.target().Name, "target_standby"
		rate(&l)
		replicas = append(replicas, l)
	} else {
		if replicas, err = primaryReplicas(ctx, r); err != nil {
			return driver.Result{}, classify(ctx, err, "read pg_stat_replication")
		}
		for i := range replicas {
			rate(&replicas[i])
		}
		if slots, err = replicationSlots(ctx, r); err != nil {
			return driver.Result{}, classify(ctx, err, "read pg_replication_slots")
		}
	}
	r.progress(40, fmt.Sprintf("%s: %d replica(s) seen", role, len(replicas)), nil)
	for i, dsn := range r.target().ReplicaDSNs {
		if err := ctx.Err(); err != nil {
			return driver.Result{}, err
		}
		l := inspectReplica(ctx, dsn, i, r.d.opts.ConnectionCheckInterval)
		rate(&l)
		replicas = append(replicas, l)
		r.progress(40+60*float64(i+1)/float64(len(r.target().ReplicaDSNs)), "inspected "+l.Name, nil)
	}
	if err := ctx.Err(); err != nil {
		return driver.Result{}, err
	}

	if !r.srv.InRecovery && len(r.target().ReplicaDSNs) > 0 {
		// Without the primary's identity no view is linked: each counts.
		if id, err := readPrimaryIdentity(ctx, r); err == nil {
			linkStandbys(id, replicas, slots)
		} else if ctx.Err() != nil {
			return driver.Result{}, ctx.Err()
		}
	}

	var alerts []domain.Alert
	worst := replicaOK
	counts := map[string]int{}
	standbys := standbyStatuses(replicas)
	for _, status := range standbys {
		counts[status]++
	}
	for _, l := range replicas {
		if replicaRank[l.Status] > replicaRank[worst] {
			worst = l.Status
		}
		lag := "unknown"
		if l.LagMs != nil {
			lag = (time.Duration(*l.LagMs) * time.Millisecond).String()
		}
		switch l.Status {
		case replicaDegraded:
			alerts = append(alerts, domain.Alert{Level: domain.AlertWarning, Subject: l.Name,
				Message: fmt.Sprintf("replica %s is degraded: lag %s > %d ms", l.Name, lag, degraded)})
		case replicaCritical:
			alerts = append(alerts, domain.Alert{Level: domain.AlertCritical, Subject: l.Name,
				Message: fmt.Sprintf("replica %s is critical: lag %s > %d ms", l.Name, lag, critical)})
		case replicaUnreachable:
			alerts = append(alerts, domain.Alert{Level: domain.AlertCritical, Subject: l.Name,
				Message: fmt.Sprintf("replica %s is unreachable or not a standby: %s", l.Name, l.Note)})
		}
	}
	for _, s := range slots {
		switch {
		case s.WALStatus == "lost":
			alerts = append(alerts, domain.Alert{Level: domain.AlertHigh, Subject: "slot " + s.Name,
				Message: fmt.Sprintf("replication slot %s has lost required WAL; its consumer cannot resume", s.Name)})
		case !s.Active && s.RetainedBytes != nil && *s.RetainedBytes > 0:
			alerts = append(alerts, domain.Alert{Level: domain.AlertWarning, Subject: "slot " + s.Name,
				Message: fmt.Sprintf("replication slot %s is inactive and retains %s of WAL", s.Name, bytesHuman(*s.RetainedBytes))})
		}
	}
	summary := fmt.Sprintf("%s with %d replica(s): %d ok, %d degraded, %d critical, %d unreachable",
		role, len(standbys), counts[replicaOK], counts[replicaDegraded], counts[replicaCritical], counts[replicaUnreachable])
	if len(replicas) == 0 {
		summary = "primary has no replicas attached and none configured"
	}
	if r.req.History != nil {
		var maxLag int64
		for _, l := range replicas {
			if l.LagMs != nil && *l.LagMs > maxLag {
				maxLag = *l.LagMs
			}
		}
		if len(replicas) > 0 {
			_ = r.req.History.RecordSamples(ctx, driver.Sample{Target: r.target().Name, Metric: "replica_max_lag_ms", At: time.Now().UTC(), Value: float64(maxLag)})
		}
	}
	return driver.Result{
		Summary: summary,
		Details: map[string]any{
			"role": role, "status": worst, "replicas": replicas, "standbys": len(standbys), "slots": slots,
			"degraded_lag_ms": degraded, "critical_lag_ms": critical,
		},
		Alerts: alerts,
	}, nil
}

// replicaRank orders replica states, worst highest.
var replicaRank = map[string]int{replicaOK: 0, replicaDegraded: 1, replicaCritical: 2, replicaUnreachable: 3}

// standbyStatuses returns the status of each distinct standby among
// replicas: a replica_dsn entry linked to a pg_stat_replication entry
// (SameStandbyAs) is the same standby, whose status is the worse of the
// two views.
func standbyStatuses(replicas []replicaLag) []string {
	var out []string
	byPID := map[int32]int{} // walsender pid of a pg_stat_replication entry → index in out
	for _, l := range replicas {
		if l.SameStandbyAs != "" {
			continue
		}
		if l.Source == "pg_stat_replication" && l.WalsenderPID != 0 {
			byPID[l.WalsenderPID] = len(out)
		}
		out = append(out, l.Status)
	}
	for _, l := range replicas {
		if l.SameStandbyAs == "" {
			continue
		}
		i, ok := byPID[l.WalsenderPID]
		if !ok {
			out = append(out, l.Status)
			continue
		}
		if replicaRank[l.Status] > replicaRank[out[i]] {
			out[i] = l.Status
		}
	}
	return out
}

type queryRowFunc func(ctx context.Context, sql string, args ...any) pgx.Row

// standbyLag measures a standby from inside.
func standbyLag(ctx context.Context, q queryRowFunc) (replicaLag, error) {
	var l replicaLag
	var receiver *string
	err := q(ctx, `
		SELECT CASE
		         WHEN pg_last_wal_receive_lsn() IS NOT NULL AND pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
		         WHEN pg_last_xact_replay_timestamp() IS NULL THEN NULL
		         ELSE greatest(0, (extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::int8)
		       END,
		       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::int8,
		       pg_is_wal_replay_paused(),
		       (SELECT status FROM pg_stat_wal_receiver LIMIT 1)`).Scan(&l.LagMs, &l.LagBytes, &l.ReplayPaused, &receiver)
	if err != nil {
		return l, err
	}
	if receiver != nil {
		l.State = *receiver
	} else {
		l.State = "no wal receiver"
	}
	if l.ReplayPaused {
		l.Note = "WAL replay is paused (pg_wal_replay_pause)"
	}
	if l.LagMs == nil {
		l.Note = "no transaction replayed yet; lag unknown"
	}
	return l, nil
}

func primaryReplicas(ctx context.Context, r *run) ([]replicaLag, error) {
	rows, err := r.pool.Query(ctx, `
		SELECT pid, coalesce(application_name, ''), coalesce(host(client_addr), ''), coalesce(state, ''), coalesce(sync_state, ''),
		       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::int8,
		       (extract(epoch FROM replay_lag) * 1000)::int8,
		       (extract(epoch FROM flush_lag) * 1000)::int8,
		       (extract(epoch FROM write_lag) * 1000)::int8
		FROM pg_stat_replication
		ORDER BY application_name, client_addr`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []replicaLag
	for rows.Next() {
		var l replicaLag
		var replay, flush, write *int64
		if err := rows.Scan(&l.WalsenderPID, &l.Name, &l.ClientAddr, &l.State, &l.SyncState, &l.LagBytes, &replay, &flush, &write); err != nil {
			return nil, err
		}
		l.Source, l.appName = "pg_stat_replication", l.Name
		if l.Name == "" {
			l.Name = "walsender@" + l.ClientAddr
		}
		for _, v := range []*int64{replay, flush, write} {
			if v != nil && (l.LagMs == nil || *v > *l.LagMs) {
				l.LagMs = v
			}
		}
		if l.LagMs == nil {
			zero := int64(0)
			if l.LagBytes != nil && *l.LagBytes == 0 {
				l.LagMs = &zero
			} else if l.LagBytes == nil {
				l.Note = "lag columns are hidden: the role needs pg_monitor"
			} else {
				l.Note = "bytes behind but no lag sample yet"
			}
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

func replicationSlots(ctx context.Context, r *run) ([]slotInfo, error) {
	rows, err := r.pool.Query(ctx, `
		SELECT slot_name::text, slot_type, active,
		       pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::int8,
		       coalesce(wal_status, ''), coalesce(active_pid, 0)
		FROM pg_replication_slots ORDER BY slot_name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []slotInfo
	for rows.Next() {
		var s slotInfo
		if err := rows.Scan(&s.Name, &s.Type, &s.Active, &s.RetainedBytes, &s.WALStatus, &s.activePID); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// inspectReplica connects to a configured replica and measures it from
// inside. Its name is host:port (never the DSN, which may hold a password).
func inspectReplica(ctx context.Context, dsn string, i int, check time.Duration) replicaLag {
	l := replicaLag{Name: fmt.Sprintf("replica[%d]", i), Source: "replica_dsn"}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		l.Status, l.Note = replicaUnreachable, "connection string does not parse"
		return l
	}
	l.Name = net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := connectOnce(cctx, cfg, check)
	if err != nil {
		l.Status, l.Note = replicaUnreachable, "connect failed: "+pgMessage(err)
		return l
	}
	defer conn.Close(context.Background())
	var inRecovery bool
	if err := conn.QueryRow(cctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err != nil {
		l.Status, l.Note = replicaUnreachable, "query failed: "+pgMessage(err)
		return l
	}
	if !inRecovery {
		l.Status, l.Note = replicaUnreachable, "server is not in recovery (promoted, or not a standby)"
		return l
	}
	m, err := standbyLag(cctx, conn.QueryRow)
	if err != nil {
		l.Status, l.Note = replicaUnreachable, "lag query failed: "+pgMessage(err)
		return l
	}
	m.Name, m.Source = l.Name, l.Source
	if up, err := readUpstream(cctx, conn.QueryRow); err == nil {
		m.upstream = up
	}
	return m
}

// upstream is what a standby streams from, as its pg_stat_wal_receiver
// shows it (the address columns need superuser or pg_read_all_stats).
type upstream struct {
	SystemID int64  // the standby's system identifier (its primary's)
	Host     string // sender_host: a host name, an address or a socket directory
	Port     int    // sender_port
	Slot     string // slot_name, "" without a slot
	AppName  string // the application name its WAL receiver connects with
}

// readUpstream reads what the standby q reaches streams from; nil when its
// WAL receiver is not streaming.
func readUpstream(ctx context.Context, q queryRowFunc) (*upstream, error) {
	var up upstream
	var conninfo string
	err := q(ctx, `
		SELECT (SELECT system_identifier FROM pg_control_system()), coalesce(sender_host, ''), coalesce(sender_port, 0),
		       coalesce(slot_name, ''), coalesce(conninfo, '')
		FROM pg_stat_wal_receiver WHERE status = 'streaming'`).Scan(&up.SystemID, &up.Host, &up.Port, &up.Slot, &conninfo)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	up.AppName = conninfoAppName(conninfo)
	return &up, nil
}

// conninfoAppName is the application name a WAL receiver with the
// (obfuscated, unquoted) connection string conninfo connects with:
// application_name, else fallback_application_name (cluster_name or
// "walreceiver"); "" when neither shows.
func conninfoAppName(conninfo string) string {
	var app, fallback string
	for _, kv := range strings.Fields(conninfo) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "application_name":
			app = v
		case "fallback_application_name":
			fallback = v
		}
	}
	if app != "" {
		return app
	}
	return fallback
}

// primaryIdentity is how a standby streaming from this primary names it.
type primaryIdentity struct {
	SystemID int64
	Port     int
	// Hosts are the names under which standbys may reach the primary: the
	// hosts of the target's DSN, the address this session reached it at,
	// and its socket directories.
	Hosts map[string]bool
}

// readPrimaryIdentity reads the primary's system identifier, port and
// addresses.
func readPrimaryIdentity(ctx context.Context, r *run) (primaryIdentity, error) {
	id := primaryIdentity{Hosts: map[string]bool{}}
	var addr, sockets string
	err := r.pool.QueryRow(ctx, `
		SELECT (SELECT system_identifier FROM pg_control_system()), current_setting('port')::int,
		       coalesce(host(inet_server_addr()), ''), current_setting('unix_socket_directories')`).
		Scan(&id.SystemID, &id.Port, &addr, &sockets)
	if err != nil {
		return id, err
	}
	for _, h := range append([]string{addr}, strings.Split(sockets, ",")...) {
		if h = strings.TrimSpace(h); h != "" {
			id.Hosts[h] = true
		}
	}
	if cfg, err := pgx.ParseConfig(r.target().DSN); err == nil {
		id.Hosts[cfg.Host] = true
		for _, f := range cfg.Fallbacks {
			id.Hosts[f.Host] = true
		}
	}
	return id, nil
}

// feeds reports whether a standby streaming from up streams from this
// primary: same system identifier, and up names one of its hosts and its
// port. A primary behind another name (a DNS alias, port forwarding) is
// not recognised: the standby is then counted apart, as before.
func (id primaryIdentity) feeds(up upstream) bool {
	return up.SystemID == id.SystemID && up.Port == id.Port && up.Host != "" && id.Hosts[up.Host]
}

// linkStandbys finds, for each replica_dsn entry that streams from this
// primary, its pg_stat_replication entry, each claimed at most once: the
// one whose walsender holds the standby's replication slot, else the first
// unclaimed one with the standby's application name. A linked entry gets
// SameStandbyAs and WalsenderPID.
func linkStandbys(id primaryIdentity, replicas []replicaLag, slots []slotInfo) {
	slotPID := map[string]int32{}
	for _, s := range slots {
		if s.Active && s.activePID != 0 {
			slotPID[s.Name] = s.activePID
		}
	}
	claimed := map[int]bool{}
	link := func(i, j int) {
		claimed[j] = true
		replicas[i].SameStandbyAs, replicas[i].WalsenderPID = replicas[j].Name, replicas[j].WalsenderPID
	}
	find := func(match func(c replicaLag) bool) int {
		for j, c := range replicas {
			if c.Source == "pg_stat_replication" && !claimed[j] && match(c) {
				return j
			}
		}
		return -1
	}
	var pending []int
	for i, l := range replicas {
		if l.Source != "replica_dsn" || l.upstream == nil || !id.feeds(*l.upstream) {
			continue
		}
		if pid, ok := slotPID[l.upstream.Slot]; ok {
			if j := find(func(c replicaLag) bool { return c.WalsenderPID == pid }); j >= 0 {
				link(i, j)
				continue
			}
		}
		pending = append(pending, i)
	}
	for _, i := range pending {
		app := replicas[i].upstream.AppName
		if j := find(func(c replicaLag) bool { return app == "" || c.appName == app }); j >= 0 {
			link(i, j)
		}
	}
}
