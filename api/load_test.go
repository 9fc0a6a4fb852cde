package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/audit"
	"github.com/themis-maintenance/themis/internal/auth"
)

// TestLoadHostileClients runs, on loopback and for a bounded time and
// count, a 401 flood, slow-body clients and oversized list requests
// against a running gateway (the fake behind the real authenticator and a
// real file audit log, served with the daemon's kind of timeouts), while
// authorised clients read and write. The authorised clients must keep
// getting answers within the latency budget, the slow clients must be cut
// off by the read timeout, and the flood must not fill the audit log.
func TestLoadHostileClients(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	const (
		duration     = 3 * time.Second
		floodWorkers = 6
		maxFlood     = 30_000
		slowClients  = 20
		budgetP99    = 2 * time.Second // generous: CI has 2 cores, -race
	)
	alog, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(authConfig(), auth.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	fake := apitest.NewFake()
	spec := domain.NewScheduleSpec("orders")
	spec.Name, spec.Tasks = "Nightly", []domain.TaskType{domain.TaskQuotaCheck}
	if err := spec.Normalize(nil); err != nil {
		t.Fatal(err)
	}
	fake.Seed("nightly", spec)
	for i := range 500 {
		fake.SeedJob(domain.Job{ID: fmt.Sprintf("nightly-manual-%d", i), ScheduleID: "nightly", ScheduleName: "Nightly", Target: "orders",
			State: domain.StateSucceeded, StartedAtMs: int64(i + 1), FinishedAtMs: int64(i + 2), DurationMs: 1, Tasks: []domain.TaskRun{}})
	}
	h := api.New(fake, api.Options{Drills: fake, Info: fake, Audit: alog, Authenticator: authn.Middleware(),
		Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second,
		WriteTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	url := "http://" + ln.Addr().String() + api.BasePath

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var wg sync.WaitGroup

	// The flood: unknown tokens as fast as the workers can send them.
	var flood, flood401, flood429 atomic.Int64
	for range floodWorkers {
		wg.Go(func() {
			for ctx.Err() == nil && flood.Add(1) <= maxFlood {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/schedules", nil)
				req.Header.Set("Authorization", "Bearer thm_flood-"+fmt.Sprint(flood.Load()))
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 401:
					flood401.Add(1)
				case 429:
					flood429.Add(1)
				}
			}
		})
	}
	// Slow-body clients: a body promised, sent a byte every 300 ms.
	var slowCut atomic.Int64
	var slowHeld sync.Map
	for i := range slowClients {
		wg.Go(func() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				return
			}
			defer c.Close()
			start := time.Now()
			fmt.Fprintf(c, "PATCH %s/schedules/nightly HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", api.BasePath, adminToken)
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = c.SetReadDeadline(time.Now().Add(8 * time.Second))
				_, _ = http.ReadResponse(bufio.NewReader(c), nil)
			}()
			for {
				select {
				case <-done:
					slowCut.Add(1)
					slowHeld.Store(i, time.Since(start))
					return
				case <-time.After(300 * time.Millisecond):
					_, _ = c.Write([]byte(" "))
				}
			}
		})
	}
	// Oversized lists.
	var lists, listsRefused atomic.Int64
	for _, q := range []string{"/jobs?limit=201", "/jobs?limit=100000", "/jobs?limit=200", "/audit?limit=10000", "/drills?limit=5000"} {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+q, nil)
				req.Header.Set("Authorization", "Bearer "+adminToken)
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lists.Add(1)
				if resp.StatusCode == 400 {
					listsRefused.Add(1)
				}
			}
		})
	}
	// Authorised clients: reads and audited writes, timed.
	var mu sync.Mutex
	var lat []time.Duration
	var authErrs []string
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				method, path, body := http.MethodGet, "/schedules/nightly", ""
				if i%2 == 1 {
					method, path, body = http.MethodPatch, "/schedules/nightly", fmt.Sprintf(`{"description":"load %d-%d"}`, w, i)
				}
				req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+writeToken)
				if body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				start := time.Now()
				resp, err := client.Do(req)
				d := time.Since(start)
				mu.Lock()
				if err != nil {
					authErrs = append(authErrs, err.Error())
				} else {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						authErrs = append(authErrs, fmt.Sprintf("%s %s: %d", method, path, resp.StatusCode))
					}
					lat = append(lat, d)
				}
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	wg.Wait()

	slices.Sort(lat)
	if len(lat) < 20 {
		t.Fatalf("only %d authorised answers in %s", len(lat), duration)
	}
	p50, p99, worst := lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	var maxHeld time.Duration
	slowHeld.Range(func(_, v any) bool { maxHeld = max(maxHeld, v.(time.Duration)); return true })
	st, _ := os.Stat(alog.Path())
	page, _ := alog.Read(context.Background(), time.Time{}, 0)
	denials := 0
	for _, e := range page.Events {
		if e.Outcome == audit.OutcomeDenied {
			denials++
		}
	}
	t.Logf("flood: %d requests (%d answered 401, %d answered 429, %.0f/s)", flood401.Load()+flood429.Load(), flood401.Load(), flood429.Load(),
		float64(flood401.Load()+flood429.Load())/duration.Seconds())
	t.Logf("slow-body clients: %d of %d cut off, longest held %s", slowCut.Load(), slowClients, maxHeld.Round(time.Millisecond))
	t.Logf("oversized lists: %d requests, %d refused 400", lists.Load(), listsRefused.Load())
	t.Logf("authorised: %d answers, p50 %s, p99 %s, max %s (budget p99 %s), %d errors",
		len(lat), p50.Round(time.Microsecond), p99.Round(time.Microsecond), worst.Round(time.Microsecond), budgetP99, len(authErrs))
	t.Logf("audit log: %d events (%d denials), %d bytes", len(page.Events), denials, st.Size())
	if len(authErrs) > 0 {
		t.Errorf("authorised requests failed: %v", authErrs[:min(5, len(authErrs))])
	}
	if p99 > budgetP99 {
		t.Errorf("authorised p99 %s over the budget %s", p99, budgetP99)
	}
	if slowCut.Load() != slowClients || maxHeld > 4*time.Second {
		t.Errorf("slow clients: %d of %d cut off, longest held %s", slowCut.Load(), slowClients, maxHeld)
	}
	if flood429.Load() == 0 {
		t.Errorf("the flood was never limited")
	}
	// One client address: at most AuditEach (5) denials written one by one
	// per interval, plus the summary when the interval ends (after this
	// test): nowhere near one line per refused request.
	if denials > 10 {
		t.Errorf("%d denial events for %d refused requests", denials, flood401.Load()+flood429.Load())
	}
	if listsRefused.Load() == 0 {
		t.Errorf("no oversized list was refused")
	}
}
