package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
)

// scratchConnect connects to the drill's scratch instance as the source's
// bootstrap superuser, through its private socket (trust).
func scratchConnect(ctx context.Context, m drillMeta, dbname string) (*pgx.Conn, error) {
	dsn := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable application_name=%s connect_timeout=10",
		quoteKV(m.SocketDir), m.Port, quoteKV(m.Superuser), quoteKV(dbname), ApplicationName)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.BuildContextWatcherHandler = newCancelHandler
	return pgx.ConnectConfig(ctx, cfg)
}

// waitPromoted waits until the scratch instance accepts queries and is out
// of recovery.
func waitPromoted(ctx context.Context, m drillMeta) error {
	deadline := time.Now().Add(promoteTimeout)
	var last error
	for {
		conn, err := scratchConnect(ctx, m, m.Database)
		if err == nil {
			var inRecovery bool
			err = conn.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery)
			conn.Close(context.Background())
			if err == nil && !inRecovery {
				return nil
			}
			if err == nil {
				err = errors.New("still in recovery")
			}
		}
		last = err
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("scratch instance on port %d not serving as a primary after %s: %v", m.Port, promoteTimeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ensureScratchRunning checks that the restored instance of a ready drill
// serves queries, starting it again (without recovery: it was promoted)
// when it had stopped, on its old port when that is free. An instance
// whose marker names no socket directory was started by an earlier version
// listening on 127.0.0.1: it is stopped and started again on its private
// socket only. The marker is updated with the port and socket directory.
func (r *run) ensureScratchRunning(ctx context.Context, p drillPaths, m drillMeta, user *pgbin.User) (drillMeta, error) {
	// The binaries are the configured ones, not the marker's bin_dir.
	binDir, err := configuredBinDir(r.target(), p.data)
	if err != nil {
		return m, driver.Permanent(driver.KindMisconfigured, err)
	}
	inst := &pgbin.Instance{Runner: pgbin.Runner{BinDir: binDir, User: user}, DataDir: p.data,
		LogFile: filepath.Join(p.dir, "server.log"), Host: m.SocketDir, Port: m.Port, StartTimeout: time.Hour}
	if m.SocketDir != "" && inst.Running(ctx) {
		if err := waitPromoted(ctx, m); err != nil {
			return m, err
		}
		return m, nil
	}
	if _, err := os.Stat(filepath.Join(p.data, "PG_VERSION")); err != nil {
		return m, fmt.Errorf("restored data directory missing: %w", err)
	}
	// A server that died leaves postmaster.pid behind; pg_ctl copes, but
	// make sure nothing of it runs.
	if _, err := stopScratchServer(ctx, nil, p.data); err != nil {
		return m, err
	}
	if m.SocketDir == "" {
		m.SocketDir = p.socketDir()
	}
	if m.OSUser == "" {
		m.OSUser = osUserName(user)
	}
	// A socket directory in <tmp> may have been cleaned away meanwhile.
	if err := privateSocketDir(m.SocketDir, user); err != nil {
		return m, err
	}
	inst.Host = m.SocketDir
	r.progress(50, "starting the stopped scratch instance again", nil)
	conf := scratchConf{SocketDir: m.SocketDir, MaxPrepared: m.MaxPrepared, ClusterName: clusterName(p.name)}
	port, err := startScratch(ctx, inst, conf, user)
	if err != nil {
		return m, err
	}
	m.Port = port
	if err := waitPromoted(ctx, m); err != nil {
		return m, err
	}
	return m, writeDrillMeta(p, m)
}
