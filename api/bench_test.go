package api_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/domain"
)

// The benchmarks measure the gateway over loopback HTTP (handler + fake
// service, no OpenAPI validation) and report per-request latency
// percentiles next to ns/op:
//
//	go test ./api -run '^$' -bench . -benchtime 5000x

// benchServer serves the gateway over a fake holding n schedules.
func benchServer(b *testing.B, n int) *httptest.Server {
	b.Helper()
	fake := apitest.NewFake()
	fake.SeedDefaults()
	for i := len(domain.DefaultSchedules("orders", "", nil)); i < n; i++ {
		spec := domain.NewScheduleSpec("orders")
		spec.Name = "Bench schedule " + strconv.Itoa(i)
		spec.Tasks = []domain.TaskType{domain.TaskMetricsCollection, domain.TaskQuotaCheck, domain.TaskMVCCCleanup}
		spec.TaskOptions = map[domain.TaskType]domain.TaskOptions{domain.TaskMVCCCleanup: {"parallelism": 2}}
		spec.Description = "benchmark schedule with a description of moderate length"
		if err := spec.Normalize(nil); err != nil {
			b.Fatal(err)
		}
		fake.Seed("bench-"+strconv.Itoa(i), spec)
	}
	h := api.New(fake, api.Options{Logger: slog.New(slog.DiscardHandler), Drills: fake, Info: fake, Audit: fake.AuditLog()})
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv
}

// benchGet issues b.N GETs of path and reports p50/p99 latency.
func benchGet(b *testing.B, srv *httptest.Server, path string) {
	client := srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 4
	url := srv.URL + path
	get := func() {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n == 0 {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
	}
	get() // warm the connection
	durs := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		get()
		durs = append(durs, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(durs)
	pct := func(p float64) float64 {
		i := int(p * float64(len(durs)-1))
		return float64(durs[i].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

func BenchmarkGetSchedules100(b *testing.B) {
	srv := benchServer(b, 100)
	benchGet(b, srv, api.BasePath+"/schedules")
}

func BenchmarkHealth(b *testing.B) {
	srv := benchServer(b, 100)
	benchGet(b, srv, api.BasePath+"/health")
}
