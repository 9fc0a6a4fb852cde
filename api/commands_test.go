package api_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/driver/commandlog"
	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/internal/history"
	"github.com/themis-maintenance/themis/starter"
)

// GET /commands over a real history store (SQLite) through the real
// starter service: filters, paging, and bad input refused.
func TestCommandLog(t *testing.T) {
	store, err := history.Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	now := time.Now().UnixMilli()
	var cmds []commandlog.Command
	for i := range 5 {
		cmds = append(cmds, commandlog.Command{JobID: "job-1", Target: "orders", Task: "mvcc_cleanup", Attempt: 1,
			Object: fmt.Sprintf("public.t%d", i%2), Operation: "VACUUM", Statement: fmt.Sprintf(`VACUUM "public"."t%d"`, i%2),
			StartMs: now - int64(5-i)*1000, EndMs: now - int64(5-i)*1000 + 10, DurationMs: 10})
	}
	if err := store.RecordCommands(context.Background(), cmds); err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{Targets: []config.TargetConfig{{Name: "orders", Driver: "postgres"}}}
	svc := starter.New(nil, starter.Options{Records: store, Targets: cfg.TargetInfos()})
	e := newEnvWith(t, api.Options{Commands: svc})

	var page api.CommandPage
	e.req(http.MethodGet, base+"/commands?target=orders&object=public.t1", "").ok(http.StatusOK).decode(&page)
	if page.Count != 2 || page.Commands[0].Statement != `VACUUM "public"."t1"` || page.NextPageToken != "" {
		t.Fatalf("page %+v", page)
	}
	e.req(http.MethodGet, base+"/commands?job_id=job-1&limit=3", "").ok(http.StatusOK).decode(&page)
	if page.Count != 3 || page.NextPageToken == "" {
		t.Fatalf("first page %+v", page)
	}
	e.req(http.MethodGet, base+"/commands?job_id=job-1&limit=3&page_token="+page.NextPageToken, "").ok(http.StatusOK).decode(&page)
	if page.Count != 2 || page.NextPageToken != "" {
		t.Fatalf("second page %+v", page)
	}
	e.req(http.MethodGet, base+fmt.Sprintf("/commands?since=%d", now-2500), "").ok(http.StatusOK).decode(&page)
	if page.Count != 2 {
		t.Fatalf("since: %d commands, want 2", page.Count)
	}

	for q, code := range map[string]string{
		"limit=0": api.CodeInvalidParameter, "limit=1001": api.CodeInvalidParameter, "since=yesterday": api.CodeInvalidParameter,
		"page_token=42": api.CodeInvalidParameter, "colour=red": api.CodeInvalidParameter, "job_id=a%20b": "",
		"target=orders&target=orders": api.CodeInvalidParameter, "object=": api.CodeInvalidParameter,
	} {
		r := e.req(http.MethodGet, base+"/commands?"+q, "")
		if r.Status != http.StatusBadRequest || code != "" && r.problem(http.StatusBadRequest, code).Code != code {
			t.Errorf("%s: status %d, want 400 %s", q, r.Status, code)
		}
	}
	e.req(http.MethodGet, base+"/commands?target=nope", "").problem(http.StatusNotFound, api.CodeNotFound)

	// Without a command service the endpoint says so.
	newEnv(t).req(http.MethodGet, base+"/commands", "").problem(http.StatusServiceUnavailable, api.CodeUnavailable)
}
