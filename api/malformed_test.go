package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/api"
)

// valid returns a valid create body with extra fields spliced in.
func valid(extra string) string {
	if extra != "" {
		extra = "," + extra
	}
	return `{"name":"Malformed test","tasks":["quota_check"]` + extra + `}`
}

func TestMalformedRequests(t *testing.T) {
	const sched = base + "/schedules"
	const one = base + "/schedules/nightly"
	tasks51 := `"tasks":[` + strings.TrimSuffix(strings.Repeat(`"quota_check",`, 51), ",") + `]`
	deep := strings.Repeat("[", 10_001) + strings.Repeat("]", 10_001)

	cases := []struct {
		name, method, path, body, contentType string
		status                                int
		code, field                           string
	}{
		// Not JSON, or not one object.
		{"empty body", "POST", sched, "", "", 400, api.CodeInvalidJSON, ""},
		{"truncated", "POST", sched, `{"name":"x"`, "", 400, api.CodeInvalidJSON, ""},
		{"garbage", "POST", sched, `name=x`, "", 400, api.CodeInvalidJSON, ""},
		{"array", "POST", sched, `[]`, "", 400, api.CodeInvalidJSON, ""},
		{"string", "POST", sched, `"schedule"`, "", 400, api.CodeInvalidJSON, ""},
		{"null", "POST", sched, `null`, "", 400, api.CodeInvalidJSON, ""},
		{"trailing data", "POST", sched, valid("") + ` {}`, "", 400, api.CodeInvalidJSON, ""},
		{"invalid utf-8", "POST", sched, "{\"name\":\"\xff\xfe\",\"tasks\":[\"quota_check\"]}", "", 400, api.CodeInvalidJSON, ""},
		{"nested too deep", "POST", sched, valid(`"description":` + deep), "", 400, api.CodeInvalidJSON, ""},
		// Wrong types name the field.
		{"tasks is a string", "POST", sched, `{"name":"a","tasks":"x"}`, "", 400, api.CodeValidationFailed, "tasks"},
		{"task is a number", "POST", sched, `{"name":"a","tasks":[1]}`, "", 400, api.CodeValidationFailed, "tasks"},
		{"name is a number", "POST", sched, `{"name":123,"tasks":["quota_check"]}`, "", 400, api.CodeValidationFailed, "name"},
		{"enabled is a string", "POST", sched, valid(`"enabled":"yes"`), "", 400, api.CodeValidationFailed, "enabled"},
		{"hour is a string", "POST", sched, valid(`"window_start_hour":"2"`), "", 400, api.CodeValidationFailed, "window_start_hour"},
		{"hour is fractional", "POST", sched, valid(`"window_start_hour":2.5`), "", 400, api.CodeValidationFailed, "window_start_hour"},
		{"hour overflows", "POST", sched, valid(`"window_end_hour":1e100`), "", 400, api.CodeValidationFailed, "window_end_hour"},
		{"options is a number", "POST", sched, valid(`"task_options":{"mvcc_cleanup":5}`), "", 400, api.CodeValidationFailed, "task_options"},
		{"null field", "POST", sched, valid(`"description":null`), "", 400, api.CodeValidationFailed, "description"},
		// Unknown fields, including case variants Go's decoder would accept.
		{"unknown field", "POST", sched, valid(`"color":"red"`), "", 400, api.CodeUnknownField, "color"},
		{"case variant", "POST", sched, valid(`"Enabled":true`), "", 400, api.CodeUnknownField, "Enabled"},
		// Validation.
		{"no name", "POST", sched, `{"tasks":["quota_check"]}`, "", 400, api.CodeValidationFailed, "name"},
		{"blank name", "POST", sched, `{"name":"   ","tasks":["quota_check"]}`, "", 400, api.CodeValidationFailed, "name"},
		{"name too long", "POST", sched, `{"name":"` + strings.Repeat("n", 201) + `","tasks":["quota_check"]}`, "", 400, api.CodeValidationFailed, "name"},
		{"control char in name", "POST", sched, `{"name":"bell\u0007","tasks":["quota_check"]}`, "", 400, api.CodeValidationFailed, "name"},
		{"description too long", "POST", sched, valid(`"description":"` + strings.Repeat("d", 2001) + `"`), "", 400, api.CodeValidationFailed, "description"},
		{"no tasks", "POST", sched, `{"name":"a","tasks":[]}`, "", 400, api.CodeValidationFailed, "tasks"},
		{"51 tasks", "POST", sched, `{"name":"a",` + tasks51 + `}`, "", 400, api.CodeValidationFailed, "tasks"},
		{"unknown task type", "POST", sched, `{"name":"a","tasks":["vacuum_everything"]}`, "", 400, api.CodeValidationFailed, "tasks[0]"},
		{"second task unknown", "POST", sched, `{"name":"a","tasks":["quota_check","Metrics_Collection"]}`, "", 400, api.CodeValidationFailed, "tasks[1]"},
		{"unknown frequency", "POST", sched, valid(`"frequency":"hourly"`), "", 400, api.CodeValidationFailed, "frequency"},
		{"custom without cron", "POST", sched, valid(`"frequency":"custom"`), "", 400, api.CodeValidationFailed, "cron_expression"},
		{"cron with 3 fields", "POST", sched, valid(`"frequency":"custom","cron_expression":"* * *"`), "", 400, api.CodeValidationFailed, "cron_expression"},
		{"cron descriptor", "POST", sched, valid(`"frequency":"custom","cron_expression":"@daily"`), "", 400, api.CodeValidationFailed, "cron_expression"},
		{"cron minute 61", "POST", sched, valid(`"frequency":"custom","cron_expression":"61 * * * *"`), "", 400, api.CodeValidationFailed, "cron_expression"},
		{"cron with daily", "POST", sched, valid(`"cron_expression":"5 5 * * *"`), "", 400, api.CodeValidationFailed, "cron_expression"},
		{"unknown zone", "POST", sched, valid(`"timezone":"Mars/Olympus_Mons"`), "", 400, api.CodeValidationFailed, "timezone"},
		{"zone traversal", "POST", sched, valid(`"timezone":"../../etc/passwd"`), "", 400, api.CodeValidationFailed, "timezone"},
		{"Local zone", "POST", sched, valid(`"timezone":"Local"`), "", 400, api.CodeValidationFailed, "timezone"},
		{"hour 24", "POST", sched, valid(`"window_start_hour":24`), "", 400, api.CodeValidationFailed, "window_start_hour"},
		{"hour -1", "POST", sched, valid(`"window_end_hour":-1`), "", 400, api.CodeValidationFailed, "window_end_hour"},
		{"unknown target", "POST", sched, valid(`"target":"nowhere"`), "", 400, api.CodeValidationFailed, "target"},
		{"options for unknown task", "POST", sched, valid(`"task_options":{"bogus":{}}`), "", 400, api.CodeValidationFailed, "task_options"},
		{"unknown option", "POST", sched, valid(`"task_options":{"mvcc_cleanup":{"turbo":true}}`), "", 400, api.CodeValidationFailed, "task_options.mvcc_cleanup"},
		{"option out of range", "POST", sched, valid(`"task_options":{"mvcc_cleanup":{"parallelism":0}}`), "", 400, api.CodeValidationFailed, "task_options.mvcc_cleanup.parallelism"},
		{"option wrong type", "POST", sched, valid(`"task_options":{"storage_compaction":{"full":"yes"}}`), "", 400, api.CodeValidationFailed, "task_options.storage_compaction.full"},
		// Size and media type.
		{"huge string", "POST", sched, valid(`"description":"` + strings.Repeat("x", 2<<20) + `"`), "", 413, api.CodeBodyTooLarge, ""},
		{"text/plain", "POST", sched, valid(""), "text/plain", 415, api.CodeUnsupportedMediaType, ""},
		{"form", "POST", sched, valid(""), "application/x-www-form-urlencoded", 415, api.CodeUnsupportedMediaType, ""},
		{"no content type", "POST", sched, valid(""), "-", 415, api.CodeUnsupportedMediaType, ""},
		// Ids.
		{"traversal id put", "PUT", base + "/schedules/..%2F..%2Fetc%2Fpasswd", valid(""), "", 400, api.CodeInvalidID, "id"},
		{"dot-dot id", "GET", base + "/schedules/%2e%2e", "", "", 400, api.CodeInvalidID, "id"},
		{"nul in id", "DELETE", base + "/schedules/a%00b", "", "", 400, api.CodeInvalidID, "id"},
		{"upper-case id", "PATCH", base + "/schedules/Nightly", `{"enabled":true}`, "", 400, api.CodeInvalidID, "id"},
		{"space in id", "POST", base + "/schedules/x%20y/run", "", "", 400, api.CodeInvalidID, "id"},
		{"129-char id", "GET", base + "/schedules/" + strings.Repeat("a", 129), "", "", 400, api.CodeInvalidID, "id"},
		{"traversal job id", "POST", base + "/jobs/..%2Fx/cancel", "", "", 400, api.CodeInvalidID, "id"},
		// PUT and PATCH bodies.
		{"put without tasks", "PUT", one, `{"name":"Nightly"}`, "", 400, api.CodeValidationFailed, "tasks"},
		{"put unknown field", "PUT", one, valid(`"owner":"me"`), "", 400, api.CodeUnknownField, "owner"},
		{"patch null", "PATCH", one, `{"enabled":null}`, "", 400, api.CodeValidationFailed, "enabled"},
		{"patch wrong type", "PATCH", one, `{"frequency":5}`, "", 400, api.CodeValidationFailed, "frequency"},
		{"patch unknown field", "PATCH", one, `{"paused":true}`, "", 400, api.CodeUnknownField, "paused"},
		{"patch empty body", "PATCH", one, "", "", 400, api.CodeInvalidJSON, ""},
		{"patch bad hour", "PATCH", one, `{"window_end_hour":99}`, "", 400, api.CodeValidationFailed, "window_end_hour"},
		{"patch unknown task", "PATCH", one, `{"tasks":["quota_check","drop_database"]}`, "", 400, api.CodeValidationFailed, "tasks[1]"},
		{"patch bad cron", "PATCH", one, `{"frequency":"custom","cron_expression":"every day"}`, "", 400, api.CodeValidationFailed, "cron_expression"},
		{"patch unknown target", "PATCH", one, `{"target":"../orders"}`, "", 400, api.CodeValidationFailed, "target"},
		// Run bodies.
		{"run force string", "POST", one + "/run", `{"force":"yes"}`, "", 400, api.CodeValidationFailed, "force"},
		{"run unknown field", "POST", one + "/run", `{"forse":true}`, "", 400, api.CodeUnknownField, "forse"},
		{"run array", "POST", one + "/run", `[true]`, "", 400, api.CodeInvalidJSON, ""},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	e := newEnv(t)
	e.seedNightly()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			var hdr []string
			switch tc.contentType {
			case "":
			case "-":
				hdr = []string{"Content-Type", ""}
			default:
				hdr = []string{"Content-Type", tc.contentType}
			}
			p := e.req(tc.method, tc.path, tc.body, hdr...).problem(tc.status, tc.code)
			if p.Field != tc.field {
				t.Errorf("field %q, want %q (detail %q)", p.Field, tc.field, p.Detail)
			}
			if p.Detail == "" || p.Title == "" || p.RequestID == "" {
				t.Errorf("incomplete problem %+v", p)
			}
			if len(p.Detail) > 1100 {
				t.Errorf("detail of %d bytes", len(p.Detail))
			}
		})
	}
	e.t = t
	if c := e.fake.Counts(); c.Writes() != 0 || c.Runs != 0 || c.Cancels != 0 {
		t.Fatalf("malformed requests reached the service: %+v", c)
	}
}

// Unicode names, boundary lengths and 50 tasks are fine.
func TestWellFormedEdgeCases(t *testing.T) {
	e := newEnv(t)
	for _, body := range []string{
		`{"name":"Nächtliche Wartung 🌙","tasks":["quota_check"]}`,
		`{"name":"` + strings.Repeat("名", 200) + `","tasks":["quota_check"]}`,
		`{"name":"fifty","tasks":[` + strings.TrimSuffix(strings.Repeat(`"quota_check",`, 50), ",") + `]}`,
		`{"name":"wrap","tasks":["quota_check"],"window_start_hour":22,"window_end_hour":4,"timezone":"America/New_York"}`,
		`{"name":"all day","tasks":["quota_check"],"window_start_hour":0,"window_end_hour":0,"description":"` + strings.Repeat("d", 2000) + `"}`,
		`{"name":"cron spaces","tasks":["quota_check"],"frequency":"custom","cron_expression":" 0  3 * * 1 "}`,
	} {
		e.req(http.MethodPost, base+"/schedules", body, "Content-Type", "application/json; charset=utf-8").ok(http.StatusCreated)
	}
	if n := e.fake.Counts().Creates; n != 6 {
		t.Fatalf("creates %d", n)
	}
}

// A chunked body (no Content-Length) over the limit is cut off with 413.
func TestChunkedBodyOverLimit(t *testing.T) {
	e := newEnvWith(t, api.Options{MaxBodyBytes: 1024})
	body := valid(`"description":"` + strings.Repeat("x", 4096) + `"`)
	r := httptest.NewRequest(http.MethodPost, base+"/schedules", strings.NewReader(body))
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), api.CodeBodyTooLarge) {
		t.Fatalf("status %d body %s", w.Code, w.Body)
	}
	// Under the limit is fine.
	r = httptest.NewRequest(http.MethodPost, base+"/schedules", strings.NewReader(valid("")))
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/json")
	w = httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if w.Code != http.StatusCreated {
		t.Fatalf("status %d body %s", w.Code, w.Body)
	}
}
