package orchestration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// loadResult is one endpoint under closed-loop load.
type loadResult struct {
	Latencies durations // of the 200 answers
	Requests  int       // answered (any status) or failed within the window
	Errors    int       // non-200, transport errors and per-request timeouts
	Cut       int       // in flight when the window closed: cancelled, not counted
	FirstErr  string
	Elapsed   time.Duration
}

func (r loadResult) rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests-r.Errors) / r.Elapsed.Seconds()
}

// loadHTTP sends GET url on conns connections, each a closed loop (next
// request when the answer is read), for d. A request taking longer than
// timeout counts as an error; requests still in flight when the window
// closes are cancelled and not counted.
func loadHTTP(ctx context.Context, url, token string, conns int, d, timeout time.Duration) loadResult {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var res loadResult
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat durations
			var n, nerr, cut int
			var first string
			for wctx.Err() == nil {
				t0 := time.Now()
				err := getOnce(wctx, hc, url, token, timeout)
				if wctx.Err() != nil {
					cut++ // cut by the end of the window: not counted
					break
				}
				n++
				if err != nil {
					nerr++
					if first == "" {
						first = err.Error()
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.Latencies = append(res.Latencies, lat...)
			res.Requests += n
			res.Errors += nerr
			res.Cut += cut
			if res.FirstErr == "" {
				res.FirstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	return res
}

func getOnce(ctx context.Context, hc *http.Client, url, token string, timeout time.Duration) error {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}
