package testsuite

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
)

// BenchmarkListSchedulesRealServer measures GET /schedules with 100
// schedules against the real gateway, starter and dev server (each
// schedule's entry is read from its Temporal Schedule), reporting p50/p99.
func BenchmarkListSchedulesRealServer(b *testing.B) {
	e := NewEnv(b, EnvOptions{})
	ctx := context.Background()
	existing, err := e.Service.ListSchedules(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for i := existing.Count; i < 100; i++ {
		spec := domain.NewScheduleSpec("demo")
		spec.Name = fmt.Sprintf("bench %03d %d", i, time.Now().UnixNano())
		spec.Tasks = []domain.TaskType{domain.TaskQuotaCheck}
		spec.Enabled = i%2 == 0
		sc, err := e.Service.CreateSchedule(ctx, spec, "bench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = e.Service.DeleteSchedule(context.Background(), sc.ID, "bench") })
	}
	// Wait for the eventually consistent list to show all of them.
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if all, err := e.Service.ListSchedules(ctx); err == nil && all.Count >= 100 {
			break
		}
	}
	token := e.Token(api.ScopeRead)
	var durations []time.Duration
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, e.API.URL+"/api/v1/maintenance/schedules", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		durations = append(durations, time.Since(start))
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.StopTimer()
	sort.Slice(durations, func(i, j int) bool { return durations[i] < durations[j] })
	pct := func(p float64) float64 {
		return float64(durations[int(p*float64(len(durations)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
