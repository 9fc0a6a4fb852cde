package driver

import (
	"fmt"
	"sync"
	"time"
)

// During runs fn and, every interval until it returns, reports note with
// the time it has been running ("… (running for 42s)") through report, so
// a single long statement (VACUUM, REINDEX, integrity_check) keeps showing
// live progress. It returns fn's error. No report is made once During has
// returned. A timer, not a goroutine, waits for each interval: tasks call
// During once per relation, and most statements end long before the first
// report is due.
func During(interval time.Duration, note string, report func(note string), fn func() error) error {
	var (
		mu      sync.Mutex
		stopped bool
		timer   *time.Timer
	)
	start := time.Now()
	mu.Lock()
	timer = time.AfterFunc(interval, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		report(fmt.Sprintf("%s (running for %s)", note, time.Since(start).Round(time.Second)))
		timer.Reset(interval)
	})
	mu.Unlock()
	err := fn()
	mu.Lock()
	stopped = true
	timer.Stop()
	mu.Unlock()
	return err
}
