package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/domain"
)

func newClient(t *testing.T, opts api.Options) (*client.Client, *apitest.Server) {
	t.Helper()
	srv := apitest.NewServer(t, nil, opts)
	c, err := client.New(srv.URL, "", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

func ptr[T any](v T) *T { return &v }

func TestNewValidatesURL(t *testing.T) {
	for _, bad := range []string{"ftp://x", "127.0.0.1:8080", "http://", "::"} {
		if _, err := client.New(bad, "", nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for in, want := range map[string]string{
		"":                                      client.DefaultBaseURL,
		"http://h:1/":                           "http://h:1",
		"https://proxy/themis/":                 "https://proxy/themis",
		"http://h:1/api/v1/maintenance":         "http://h:1",
		"http://h:1/api/v1/maintenance/?x=1#yz": "http://h:1",
	} {
		c, err := client.New(in, "", nil)
		if err != nil || c.BaseURL() != want {
			t.Errorf("New(%q): %v %v, want %s", in, c, err, want)
		}
	}
}

func TestScheduleLifecycle(t *testing.T) {
	c, srv := newClient(t, api.Options{})
	ctx := context.Background()

	s, err := c.CreateSchedule(ctx, client.ScheduleInput{
		Name: "Nightly", Tasks: []domain.TaskType{domain.TaskQuotaCheck, domain.TaskMVCCCleanup},
		WindowStartHour: ptr(1), WindowEndHour: ptr(5), HaltOnTaskFailure: ptr(true),
		TaskOptions: map[domain.TaskType]domain.TaskOptions{domain.TaskMVCCCleanup: {"parallelism": 2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "nightly" || !s.Enabled || s.Target != "orders" || s.CronExpression != "0 1 * * *" || !s.HaltOnTaskFailure {
		t.Fatalf("created %+v", s)
	}
	list, err := c.ListSchedules(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("list %v %v", list, err)
	}
	got, err := c.GetSchedule(ctx, "nightly")
	if err != nil || got.Name != "Nightly" {
		t.Fatalf("get %+v %v", got, err)
	}
	got.Description = "replaced"
	got.Tasks = []domain.TaskType{domain.TaskMetricsCollection}
	put, err := c.UpdateSchedule(ctx, "nightly", got.ScheduleSpec)
	if err != nil || put.Description != "replaced" || len(put.Tasks) != 1 || put.CronExpression != "0 1 * * *" {
		t.Fatalf("put %+v %v", put, err)
	}
	p, err := c.PatchSchedule(ctx, "nightly", map[string]any{"enabled": false})
	if err != nil || p.Enabled {
		t.Fatalf("patch %+v %v", p, err)
	}
	job, err := c.RunSchedule(ctx, "nightly", true)
	if err != nil || !job.Forced || job.ScheduleID != "nightly" {
		t.Fatalf("run %+v %v", job, err)
	}
	if err := c.DeleteSchedule(ctx, "nightly"); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetSchedule(ctx, "nightly")
	if !client.IsNotFound(err) {
		t.Fatalf("after delete: %v", err)
	}
	if n := srv.Fake.Counts(); n.Creates != 1 || n.Updates != 2 || n.Deletes != 1 || n.Runs != 1 {
		t.Fatalf("counts %+v", n)
	}
	for _, ex := range srv.Handler.Exchanges() {
		if ex.RequestErr != nil && ex.Status < 400 {
			t.Errorf("client sent a request outside the document: %s %s: %v", ex.Method, ex.Path, ex.RequestErr)
		}
	}
}

func TestCreateScheduleJSONIgnoresReadOnly(t *testing.T) {
	c, _ := newClient(t, api.Options{})
	s, err := c.CreateScheduleJSON(context.Background(), []byte(`{"id":"x","created_by":"eve","name":"From file","tasks":["quota_check"]}`))
	if err != nil || s.ID != "from-file" || s.CreatedBy != api.AnonymousPrincipal {
		t.Fatalf("%+v %v", s, err)
	}
}

func TestAPIErrorDecoding(t *testing.T) {
	c, srv := newClient(t, api.Options{})
	ctx := context.Background()
	_, err := c.CreateSchedule(ctx, client.ScheduleInput{Name: "x", Tasks: []domain.TaskType{"bogus"}})
	var ae *client.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %T %v", err, err)
	}
	if ae.Status != 400 || ae.Code != api.CodeValidationFailed || ae.Field != "tasks[0]" || ae.RequestID == "" || ae.Title == "" {
		t.Fatalf("APIError %+v", ae)
	}
	if !strings.Contains(ae.Error(), "tasks[0]") || !strings.Contains(ae.Error(), "validation_failed") {
		t.Errorf("message %q", ae.Error())
	}
	srv.Fake.SeedDefaults()
	_, err = c.CreateSchedule(ctx, client.ScheduleInput{Name: "Daily Maintenance", Tasks: []domain.TaskType{domain.TaskQuotaCheck}})
	if !client.IsConflict(err) {
		t.Fatalf("duplicate: %v", err)
	}
	srv.Fake.FailWith(apitest.MethodListSchedules, domain.ErrUnavailable)
	_, err = c.ListSchedules(ctx)
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != api.CodeUnavailable {
		t.Fatalf("503: %v", err)
	}
	// A malformed id is refused by the server, not mangled by the client.
	_, err = c.GetSchedule(ctx, "../../etc/passwd")
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != api.CodeInvalidID {
		t.Fatalf("traversal id: %v", err)
	}
}

func TestNonProblemErrors(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>\n<body>upstream\n down</body></html>"))
	}))
	defer ts.Close()
	c, _ := client.New(ts.URL, "", nil)
	_, err := c.Status(context.Background())
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Code != "http_502" || strings.Contains(ae.Detail, "\n") {
		t.Fatalf("%#v", err)
	}
}

func TestBearerToken(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	auth := func(c *gin.Context) {
		mu.Lock()
		seen = append(seen, c.GetHeader("Authorization"))
		mu.Unlock()
		if c.GetHeader("Authorization") != "Bearer s3cret" {
			api.AbortUnauthorized(c, "bad token")
			return
		}
		api.SetPrincipal(c, "ops")
		c.Next()
	}
	srv := apitest.NewServer(t, nil, api.Options{Authenticator: auth})
	good, _ := client.New(srv.URL, "s3cret", srv.Client())
	bad, _ := client.New(srv.URL, "", srv.Client())
	if _, err := good.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := bad.Status(context.Background())
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 401 || ae.Code != api.CodeUnauthorized {
		t.Fatalf("unauthenticated: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != "Bearer s3cret" || seen[1] != "" {
		t.Fatalf("Authorization headers %q", seen)
	}
}

func TestJobs(t *testing.T) {
	c, srv := newClient(t, api.Options{})
	ctx := context.Background()
	srv.Fake.SeedDefaults()
	j, err := c.RunSchedule(ctx, "daily-maintenance", false)
	if err != nil {
		t.Fatal(err)
	}
	var ae *client.APIError
	if _, err := c.RunSchedule(ctx, "daily-maintenance", false); !client.IsConflict(err) || !errors.As(err, &ae) || ae.ActiveJobID != j.ID {
		t.Fatalf("second run while active: %v", err)
	}
	page, err := c.ListJobs(ctx, api.JobFilter{ActiveOnly: true, ScheduleID: "daily-maintenance", State: domain.StateRunning, Limit: 10})
	if err != nil || page.Count != 1 || page.Jobs[0].ID != j.ID {
		t.Fatalf("list %+v %v", page, err)
	}
	if f := srv.Fake.LastFilter(); !f.ActiveOnly || f.ScheduleID != "daily-maintenance" || f.State != domain.StateRunning || f.Limit != 10 {
		t.Fatalf("filter %+v", f)
	}
	got, err := c.GetJob(ctx, j.ID)
	if err != nil || got.ID != j.ID {
		t.Fatalf("get %+v %v", got, err)
	}
	cj, err := c.CancelJob(ctx, j.ID)
	if err != nil || cj.ID != j.ID || cj.State != domain.StateRunning {
		t.Fatalf("cancel %+v %v", cj, err)
	}
	if _, err := c.CancelJob(ctx, j.ID); !client.IsConflict(err) {
		t.Fatalf("second cancel: %v", err)
	}
	// Ids with characters that need escaping travel intact.
	odd := "daily-maintenance-2025-01-01T02:00:00Z"
	srv.Fake.SeedJob(domain.Job{ID: odd, ScheduleID: "daily-maintenance", State: domain.StateSucceeded})
	if got, err := c.GetJob(ctx, odd); err != nil || got.ID != odd {
		t.Fatalf("odd id: %+v %v", got, err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Schedules != 4 {
		t.Fatalf("status %+v %v", st, err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Fake.FailWith(apitest.MethodReady, errors.New("down"))
	if err := c.Ready(ctx); err == nil {
		t.Fatal("ready while down")
	}
}

func TestContextCancellation(t *testing.T) {
	c, _ := newClient(t, api.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.ListSchedules(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}
