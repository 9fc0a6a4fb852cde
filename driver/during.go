package driver

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// During runs fn and, every interval until it returns, reports note with
// the time it has been running ("… (running for 42s)") through report, so
// a single long statement (VACUUM, REINDEX, integrity_check) keeps showing
// live progress. It returns fn's error.
func During(ctx context.Context, interval time.Duration, note string, report func(note string), fn func() error) error {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				report(fmt.Sprintf("%s (running for %s)", note, time.Since(start).Round(time.Second)))
			}
		}
	}()
	err := fn()
	close(stop)
	wg.Wait()
	return err
}
