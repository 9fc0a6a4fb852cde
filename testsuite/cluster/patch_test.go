package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	apiclient "github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/domain"
)

// Two API processes write one schedule: concurrent PATCHes of different
// fields both land (no lost update, each answer is what was stored), and
// enable→disable in quick succession through different processes ends
// paused in Temporal itself.
func TestConcurrentPatchesThroughTwoAPIs(t *testing.T) {
	t.Parallel()
	c := Start(t, Options{Workers: 1, APIs: 2})
	sc := c.CreateSchedule(0, apiclient.ScheduleInput{
		Name: "Patch race", Target: DemoTarget, Tasks: []domain.TaskType{domain.TaskQuotaCheck},
	})

	// 1. Lost updates: in each round api-1 sets the description and api-2
	// the window end, at the same instant.
	const rounds = 8
	lost, badAnswers, errs := 0, 0, 0
	for k := 0; k < rounds; k++ {
		desc, end := fmt.Sprintf("round %d from api-1", k), 10+k%10
		var wg sync.WaitGroup
		var ans [2]domain.Schedule
		var aerr [2]error
		gate := make(chan struct{})
		patches := []map[string]any{{"description": desc}, {"window_end_hour": end}}
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-gate
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				ans[i], aerr[i] = c.APIs[i].PatchSchedule(ctx, sc.ID, patches[i])
			}(i)
		}
		close(gate)
		wg.Wait()
		for i, err := range aerr {
			if err != nil {
				errs++
				t.Errorf("round %d: PATCH %v through api-%d: %v", k, patches[i], i+1, err)
			}
		}
		if aerr[0] == nil && ans[0].Description != desc {
			badAnswers++
			t.Errorf("round %d: api-1 answered description %q, want the %q it stored", k, ans[0].Description, desc)
		}
		if aerr[1] == nil && ans[1].WindowEndHour != end {
			badAnswers++
			t.Errorf("round %d: api-2 answered window_end_hour %d, want the %d it stored", k, ans[1].WindowEndHour, end)
		}
		// A Schedule's description may lag its update by a moment; what
		// counts is the state it settles in.
		got := c.settledSchedule(sc.ID, func(s StoredSchedule) bool { return s.Spec.Description == desc && s.Spec.WindowEndHour == end })
		if got.Spec.Description != desc || got.Spec.WindowEndHour != end {
			lost++
			t.Errorf("round %d: lost update: Temporal holds description %q window_end_hour %d, want %q and %d (both PATCHes answered OK: %v)",
				k, got.Spec.Description, got.Spec.WindowEndHour, desc, end, aerr[0] == nil && aerr[1] == nil)
		}
	}
	t.Logf("concurrent PATCH through 2 API processes: %d rounds, %d lost updates, %d answers differing from the stored value, %d errors",
		rounds, lost, badAnswers, errs)

	// 2. enable→disable, the second PATCH sent the moment the first answers,
	// through the other API process; Temporal must hold it paused.
	const flips = 8
	unpaused, answeredWrong := 0, 0
	for k := 0; k < flips; k++ {
		on, off := c.APIs[k%2], c.APIs[(k+1)%2]
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		a1, err := on.PatchSchedule(ctx, sc.ID, map[string]any{"enabled": true})
		if err != nil {
			cancel()
			t.Fatalf("flip %d: enable: %v", k, err)
		}
		a2, err := off.PatchSchedule(ctx, sc.ID, map[string]any{"enabled": false})
		cancel()
		if err != nil {
			t.Fatalf("flip %d: disable: %v", k, err)
		}
		if !a1.Enabled || a2.Enabled {
			answeredWrong++
			t.Errorf("flip %d: answers enabled=%v then enabled=%v, want true then false", k, a1.Enabled, a2.Enabled)
		}
		got := c.settledSchedule(sc.ID, func(s StoredSchedule) bool { return s.Paused })
		if !got.Paused {
			unpaused++
			t.Errorf("flip %d: enable (api-%d) then disable (api-%d): the Temporal Schedule is not paused (note %q); the API answered enabled=%v",
				k, k%2+1, (k+1)%2+1, got.Note, a2.Enabled)
		}
	}
	// Nothing flips it back later either.
	time.Sleep(time.Second)
	got, err := c.TemporalSchedule(sc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Paused {
		t.Errorf("one second after the last disable the Temporal Schedule is unpaused")
	}
	t.Logf("enable→disable through 2 API processes: %d flips, %d left unpaused in Temporal, %d wrong answers", flips, unpaused, answeredWrong)
}

// settledSchedule reads schedule id from Temporal until ok holds or 3
// seconds pass, and returns the last state read. A describe that fails (a
// loaded dev server answers a Schedule's query slowly) is retried for up to
// a minute.
func (c *Cluster) settledSchedule(id string, ok func(StoredSchedule) bool) StoredSchedule {
	c.T.Helper()
	deadline, errDeadline := time.Now().Add(3*time.Second), time.Now().Add(time.Minute)
	var have bool
	var last StoredSchedule
	for {
		got, err := c.TemporalSchedule(id)
		switch {
		case err == nil:
			last, have = got, true
			if ok(got) {
				return got
			}
		case time.Now().After(errDeadline):
			c.T.Fatal(err)
		}
		if have && time.Now().After(deadline) {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
}
