package impact

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/themis-maintenance/themis/driver/postgres/pgbin"
)

// foregroundApp is the application_name of the foreground's sessions
// (PGAPPNAME): how they are told apart and stopped.
const foregroundApp = "bench-impact-foreground"

// foreground is one running pgbench.
type foreground struct {
	cmd     *exec.Cmd
	out     bytes.Buffer
	prefix  string
	started time.Time
	done    chan error
}

// startForeground starts pgbench against the foreground database; it runs
// until stopForeground.
func (b *bench) startForeground(ctx context.Context, side string) (*foreground, error) {
	f := &foreground{prefix: filepath.Join(b.work, "tx-"+side), done: make(chan error, 1)}
	args := []string{"-n", "-c", strconv.Itoa(b.cfg.Clients), "-j", strconv.Itoa(b.cfg.Threads),
		"-T", "7200", "--log", "--log-prefix=" + f.prefix, "-d", appDB}
	if b.cfg.Rate > 0 {
		args = append(args, "-R", strconv.Itoa(b.cfg.Rate))
	}
	r := b.tools
	r.Env = append(slices.Clone(r.Env), "PGAPPNAME="+foregroundApp)
	cmd, cleanup, err := r.Command(ctx, "pgbench", args...)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = &f.out, &f.out
	f.started = time.Now()
	if err := cmd.Start(); err != nil {
		cleanup()
		return nil, fmt.Errorf("pgbench: %w", err)
	}
	f.cmd = cmd
	go func() {
		err := cmd.Wait()
		cleanup()
		f.done <- err
	}()
	return f, nil
}

// alive returns an error when pgbench has already exited.
func (f *foreground) alive() error {
	select {
	case err := <-f.done:
		f.done <- err
		return fmt.Errorf("pgbench exited early (%v): %s", err, pgbin.Tail(f.out.String(), 6))
	default:
		return nil
	}
}

// stopForeground ends pgbench by terminating its backends: its clients
// abort, it prints its summary and closes its logs (exit status 2, "Run
// was aborted"). It returns every transaction logged.
func (b *bench) stopForeground(ctx context.Context, f *foreground) ([]txn, error) {
	if err := f.alive(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := b.c.ExecContext(ctx, "postgres",
			`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, foregroundApp); err != nil {
			return nil, err
		}
		select {
		case err := <-f.done:
			var ee *exec.ExitError
			if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 2) {
				return nil, fmt.Errorf("pgbench: %w: %s", err, pgbin.Tail(f.out.String(), 6))
			}
			return readTxnLogs(f.prefix)
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if time.Now().After(deadline) {
			_ = f.cmd.Process.Kill()
			return nil, fmt.Errorf("pgbench did not stop within 30 s: %s", pgbin.Tail(f.out.String(), 6))
		}
	}
}

// txn is one logged transaction.
type txn struct {
	end     time.Time
	latency time.Duration
}

// readTxnLogs reads pgbench's per-transaction logs (prefix.pid and
// prefix.pid.N, one per thread).
func readTxnLogs(prefix string) ([]txn, error) {
	files, err := filepath.Glob(prefix + ".*")
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no pgbench log %s.*", prefix)
	}
	var all []txn
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		got, err := parseTxnLog(bufio.NewScanner(f))
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		all = append(all, got...)
	}
	return all, nil
}

// parseTxnLog parses lines "client_id transaction_no time script_no
// time_epoch time_us [schedule_lag]": time is the latency in µs (from the
// scheduled start under -R), time_epoch.time_us when it completed. Lines
// whose time is not a number (skipped or failed transactions) are left out.
func parseTxnLog(sc *bufio.Scanner) ([]txn, error) {
	var out []txn
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			continue
		}
		lat, err1 := strconv.ParseFloat(f[2], 64)
		sec, err2 := strconv.ParseInt(f[4], 10, 64)
		us, err3 := strconv.ParseInt(f[5], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		out = append(out, txn{end: time.Unix(sec, us*1000), latency: time.Duration(lat * float64(time.Microsecond))})
	}
	return out, sc.Err()
}

// Foreground is the workload's figures over one window.
type Foreground struct {
	Transactions int     `json:"transactions"`
	TPS          float64 `json:"tps"`
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
}

// foregroundIn summarises the transactions that completed in [from, to].
func foregroundIn(txns []txn, from, to time.Time) Foreground {
	var lat []float64
	for _, t := range txns {
		if !t.end.Before(from) && !t.end.After(to) {
			lat = append(lat, float64(t.latency)/float64(time.Millisecond))
		}
	}
	fg := Foreground{Transactions: len(lat)}
	if sec := to.Sub(from).Seconds(); sec > 0 {
		fg.TPS = float64(len(lat)) / sec
	}
	if len(lat) == 0 {
		return fg // no latency figures (zero, which JSON can carry)
	}
	slices.Sort(lat)
	fg.P50Ms, fg.P99Ms, fg.MaxMs = percentile(lat, 50), percentile(lat, 99), lat[len(lat)-1]
	return fg
}

// percentile is the nearest-rank percentile p of sorted values.
func percentile(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
