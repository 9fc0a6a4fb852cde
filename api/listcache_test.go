package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/domain"
)

// revisionedFake answers GET /schedules at a revision the test sets.
type revisionedFake struct {
	*apitest.Fake
	rev uint64
}

func (f *revisionedFake) ListSchedules(ctx context.Context) (api.ScheduleList, error) {
	l, err := f.Fake.ListSchedules(ctx)
	l.Revision = f.rev
	return l, err
}

// A list answer is encoded once per revision and request; a new revision
// answers the new data.
func TestListAnswersCachedPerRevision(t *testing.T) {
	f := &revisionedFake{Fake: apitest.NewFake(), rev: 1}
	f.SeedDefaults()
	h := api.New(f, api.Options{Logger: slog.New(slog.DiscardHandler), Drills: f.Fake, Info: f.Fake})
	get := func(query string) string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, api.BasePath+"/schedules"+query, nil))
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
		}
		b, _ := io.ReadAll(rec.Body)
		return string(b)
	}
	first := get("")
	spec := domain.NewScheduleSpec("orders")
	spec.Name = "Added Later"
	spec.Tasks = []domain.TaskType{domain.TaskQuotaCheck}
	if _, err := f.CreateSchedule(t.Context(), spec, "test"); err != nil {
		t.Fatal(err)
	}
	if again := get(""); again != first || strings.Contains(again, "Added Later") {
		t.Errorf("same revision, same request: the body was encoded again")
	}
	f.rev = 2
	if fresh := get(""); !strings.Contains(fresh, "Added Later") {
		t.Errorf("a new revision answers the new data: %s", fresh)
	}
	f.rev = 0
	if !strings.Contains(get(""), "Added Later") {
		t.Errorf("revision 0 is never cached")
	}
}
