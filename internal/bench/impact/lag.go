package impact

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// lagSample is one reading of the standby's lag.
type lagSample struct {
	at time.Time
	// primaryMs is pg_stat_replication.replay_lag on the primary;
	// primaryBytes the replay position's distance from the current WAL
	// position; standbys the rows in pg_stat_replication.
	primaryMs    float64
	primaryBytes int64
	standbys     int
	// standbyMs is now() − pg_last_xact_replay_timestamp() on the standby
	// while received WAL is not yet replayed (else 0); standbyOK says the
	// reading worked.
	standbyMs float64
	standbyOK bool
}

// sampler reads the lag every interval until stopped.
type sampler struct {
	mu      sync.Mutex
	samples []lagSample
	errs    int
	cancel  context.CancelFunc
	done    chan struct{}
}

// startSampler samples over connections of its own to the primary and the
// standby.
func startSampler(ctx context.Context, primaryDSN, standbyDSN string, every time.Duration) (*sampler, error) {
	p, err := pgx.Connect(ctx, primaryDSN)
	if err != nil {
		return nil, err
	}
	s, err := pgx.Connect(ctx, standbyDSN)
	if err != nil {
		p.Close(context.Background())
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	sm := &sampler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(sm.done)
		defer p.Close(context.Background())
		defer s.Close(context.Background())
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			sm.read(sctx, p, s)
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return sm, nil
}

func (sm *sampler) read(ctx context.Context, p, s *pgx.Conn) {
	ls := lagSample{at: time.Now()}
	err := p.QueryRow(ctx, `
		SELECT count(*), coalesce(max(extract(epoch FROM replay_lag) * 1000), 0)::float8,
		       coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::int8
		FROM pg_stat_replication`).Scan(&ls.standbys, &ls.primaryMs, &ls.primaryBytes)
	serr := s.QueryRow(ctx, `
		SELECT CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn()
		              OR pg_last_xact_replay_timestamp() IS NULL THEN 0
		            ELSE greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::float8 END`).Scan(&ls.standbyMs)
	ls.standbyOK = serr == nil
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	if err != nil || serr != nil {
		sm.errs++
	}
	if err == nil {
		sm.samples = append(sm.samples, ls)
	}
}

// stop ends the sampling and returns every sample.
func (sm *sampler) stop() ([]lagSample, int) {
	sm.cancel()
	<-sm.done
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return sm.samples, sm.errs
}

// Lag is the standby's lag over one window.
type Lag struct {
	Samples int `json:"samples"`
	// MaxMs is the largest replay_lag the primary showed
	// (pg_stat_replication), MaxStandbyMs the largest the standby showed
	// from inside, MaxBytes the largest replay distance in WAL bytes.
	MaxMs        float64 `json:"max_ms"`
	MaxStandbyMs float64 `json:"max_standby_ms"`
	MaxBytes     int64   `json:"max_bytes"`
	// OverMs is the time (samples × interval) either reading was above
	// max_lag_ms.
	OverMs float64 `json:"over_max_lag_ms"`
	// Missing counts samples with no standby in pg_stat_replication, or a
	// failed reading.
	Missing int `json:"missing"`
}

// lagIn summarises the samples taken in [from, to].
func lagIn(samples []lagSample, errs int, from, to time.Time, every time.Duration, maxLagMs int64) Lag {
	l := Lag{Missing: errs}
	for _, s := range samples {
		if s.at.Before(from) || s.at.After(to) {
			continue
		}
		l.Samples++
		if s.standbys == 0 {
			l.Missing++
		}
		l.MaxMs = max(l.MaxMs, s.primaryMs)
		l.MaxBytes = max(l.MaxBytes, s.primaryBytes)
		if s.standbyOK {
			l.MaxStandbyMs = max(l.MaxStandbyMs, s.standbyMs)
		}
		if s.primaryMs > float64(maxLagMs) || s.standbyMs > float64(maxLagMs) {
			l.OverMs += float64(every) / float64(time.Millisecond)
		}
	}
	return l
}
