package api_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/domain"
)

// FuzzScheduleDecode sends arbitrary bodies down the schedule decoder and
// validator: POST /schedules (create), PUT and PATCH /schedules/{id}. Each
// must be answered without a panic and without a 5xx: a success (the body
// was a valid schedule) or a 4xx problem with a stable code; a refused
// create stores nothing.
//
//	go test ./api -run '^$' -fuzz FuzzScheduleDecode -fuzztime 30s
func FuzzScheduleDecode(f *testing.F) {
	for _, seed := range []string{
		`{"name":"Nightly","tasks":["quota_check"]}`,
		`{"name":"n","tasks":["mvcc_cleanup"],"task_options":{"mvcc_cleanup":{"parallelism":2}},"frequency":"custom","cron_expression":"0 3 * * 1"}`,
		`{"name":"w","tasks":["quota_check"],"window_start_hour":22,"window_end_hour":4,"timezone":"America/New_York","enabled":false}`,
		`{"enabled":false}`,
		`{"frequency":"custom","cron_expression":"*/5 * * * *"}`,
		`{"task_options":{"storage_compaction":{"full":true}},"tasks":["storage_compaction"]}`,
		`{"name":"x","tasks":[]}`, `{"name":null}`, `[]`, `null`, `"x"`, `{`, `{"name":"a"}{}`,
		`{"window_start_hour":1e400}`, `{"tasks":"quota_check"}`, `{"Name":"x"}`, "{\"name\":\"\xff\"}",
		`{"id":"x","created_by":"mallory","name":"m","tasks":["quota_check"]}`,
		`{"timezone":"../../etc/passwd"}`, `{"task_options":{"mvcc_cleanup":{"parallelism":-1e308}}}`,
	} {
		f.Add(seed, uint8(0))
		f.Add(seed, uint8(2))
	}
	fake := apitest.NewFake()
	h := api.New(fake, api.Options{Logger: slog.New(slog.DiscardHandler), Drills: fake, Info: fake, MaxBodyBytes: 64 << 10})
	seed := func() {
		spec := domain.NewScheduleSpec("orders")
		spec.Name, spec.Tasks = "Nightly", []domain.TaskType{domain.TaskQuotaCheck}
		if err := spec.Normalize(nil); err != nil {
			f.Fatal(err)
		}
		fake.Seed("nightly", spec)
	}
	seed()
	f.Fuzz(func(t *testing.T, body string, which uint8) {
		method, path, okStatus := http.MethodPost, api.BasePath+"/schedules", http.StatusCreated
		switch which % 3 {
		case 1:
			method, path, okStatus = http.MethodPut, api.BasePath+"/schedules/nightly", http.StatusOK
		case 2:
			method, path, okStatus = http.MethodPatch, api.BasePath+"/schedules/nightly", http.StatusOK
		}
		before := fake.Counts()
		r := httptest.NewRequest(method, path, bytes.NewReader([]byte(body)))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch {
		case w.Code == okStatus:
			var s domain.Schedule
			if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil || s.ID == "" || s.Name == "" || len(s.Tasks) == 0 {
				t.Fatalf("%d with a bad schedule %q: %v", w.Code, w.Body, err)
			}
			if method == http.MethodPost {
				// Keep the store small and the names free.
				if err := fake.DeleteSchedule(t.Context(), s.ID, "fuzz"); err != nil {
					t.Fatal(err)
				}
			}
		case w.Code >= 400 && w.Code < 500:
			var p api.Problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Code == "" || p.Status != w.Code {
				t.Fatalf("%d with a bad problem %q: %v", w.Code, w.Body, err)
			}
			if c := fake.Counts(); c.Creates != before.Creates || c.Updates != before.Updates {
				t.Fatalf("refused (%d %s) but written: %+v → %+v", w.Code, p.Code, before, c)
			}
		default:
			t.Fatalf("%s %q: status %d: %s", method, body, w.Code, w.Body)
		}
		if _, ok := fake.Schedule("nightly"); !ok {
			seed()
		}
	})
}
