package api_test

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/auth"
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
	// The same requests and more, sent with a token (admin unless the case
	// names another) through package auth.
	type mcase struct {
		name, method, path, body, contentType string
		status                                int
		code, field                           string
		// auth is the Authorization header; "" means the admin token.
		auth string
	}
	all := make([]mcase, 0, len(cases)+len(moreMalformed))
	for _, c := range cases {
		all = append(all, mcase{c.name, c.method, c.path, c.body, c.contentType, c.status, c.code, c.field, ""})
	}
	for _, c := range moreMalformed {
		all = append(all, mcase(c))
	}
	if len(all) < 100 {
		t.Fatalf("only %d cases", len(all))
	}
	a := newAuthEnv(t, authConfig(), auth.Options{})
	e := a.env
	nightly := e.seedNightly()
	e.fake.SeedJob(domain.Job{ID: "nightly-manual-1", ScheduleID: "nightly", ScheduleName: "Nightly", Target: "orders",
		State: domain.StateSucceeded, StartedAtMs: 1, FinishedAtMs: 2, DurationMs: 1, Tasks: []domain.TaskRun{}})
	e.fake.SeedDrill(domain.Drill{ID: "drill-orders-1", Target: "orders", State: domain.DrillAwaiting, Step: "await_start",
		Awaiting: domain.ApprovalStart, Steps: []domain.DrillStep{}, Approvals: []domain.Approval{}})
	e.fake.SeedDrill(domain.Drill{ID: "drill-orders-0", Target: "orders", State: domain.DrillPassed, Step: "report",
		Steps: []domain.DrillStep{}, Approvals: []domain.Approval{}})
	drillBefore, _ := e.fake.Drill("drill-orders-1")
	counted := map[int]int{}
	for _, tc := range all {
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
			switch tc.auth {
			case "":
				hdr = append(hdr, bearer(adminToken)...)
			case "-":
			default:
				hdr = append(hdr, "Authorization", tc.auth)
			}
			r := e.req(tc.method, tc.path, tc.body, hdr...)
			p := r.problem(tc.status, tc.code)
			counted[tc.status]++
			if p.Field != tc.field {
				t.Errorf("field %q, want %q (detail %q)", p.Field, tc.field, p.Detail)
			}
			if p.Detail == "" || p.Title == "" || p.RequestID == "" {
				t.Errorf("incomplete problem %+v", p)
			}
			if len(p.Detail) > 1100 {
				t.Errorf("detail of %d bytes", len(p.Detail))
			}
			if tc.status == http.StatusUnauthorized && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge")
			}
		})
	}
	e.t = t
	if c := e.fake.Counts(); c.Changes() != 0 {
		t.Fatalf("malformed requests reached the service: %+v", c)
	}
	if s, _ := e.fake.Schedule("nightly"); !reflect.DeepEqual(s, nightly) {
		t.Fatalf("nightly changed:\n%+v\n%+v", s, nightly)
	}
	if d, _ := e.fake.Drill("drill-orders-1"); !reflect.DeepEqual(d, drillBefore) {
		t.Fatalf("drill changed: %+v", d)
	}
	if j, _ := e.fake.Job("nightly-manual-1"); j.State != domain.StateSucceeded {
		t.Fatalf("job changed: %+v", j)
	}
	t.Logf("%d malformed requests: %v (status → count)", len(all), counted)
}

// moreMalformed are the drill, audit, job, conflict and auth cases of
// TestMalformedRequests (fields as there, plus the Authorization header:
// "" = admin token, "-" = none).
var moreMalformed = func() []struct {
	name, method, path, body, contentType string
	status                                int
	code, field                           string
	auth                                  string
} {
	const drills = base + "/drills"
	const awaiting = drills + "/drill-orders-1"
	const finished = drills + "/drill-orders-0"
	const sched = base + "/schedules"
	long := strings.Repeat("c", api.MaxCommentLen+1)
	type c = struct {
		name, method, path, body, contentType string
		status                                int
		code, field                           string
		auth                                  string
	}
	return []c{
		// Drill start bodies.
		{"drill unknown field", "POST", drills, `{"tgt":"orders"}`, "", 400, api.CodeUnknownField, "tgt", ""},
		{"drill target number", "POST", drills, `{"target":5}`, "", 400, api.CodeValidationFailed, "target", ""},
		{"drill target null", "POST", drills, `{"target":null}`, "", 400, api.CodeValidationFailed, "target", ""},
		{"drill unknown target", "POST", drills, `{"target":"prod-east"}`, "", 400, api.CodeValidationFailed, "target", ""},
		{"drill array body", "POST", drills, `["orders"]`, "", 400, api.CodeInvalidJSON, "", ""},
		{"drill truncated body", "POST", drills, `{"target":`, "", 400, api.CodeInvalidJSON, "", ""},
		{"drill text/plain", "POST", drills, `{"target":"orders"}`, "text/plain", 415, api.CodeUnsupportedMediaType, "", ""},
		{"drill huge body", "POST", drills, `{"target":"` + strings.Repeat("o", 2<<20) + `"}`, "", 413, api.CodeBodyTooLarge, "", ""},
		// Drill listing and ids.
		{"drills limit 0", "GET", drills + "?limit=0", "", "", 400, api.CodeInvalidParameter, "limit", ""},
		{"drills limit 201", "GET", drills + "?limit=201", "", "", 400, api.CodeInvalidParameter, "limit", ""},
		{"drills limit word", "GET", drills + "?limit=ten", "", "", 400, api.CodeInvalidParameter, "limit", ""},
		{"drills unknown param", "GET", drills + "?target=orders", "", "", 400, api.CodeInvalidParameter, "target", ""},
		{"drills repeated limit", "GET", drills + "?limit=1&limit=2", "", "", 400, api.CodeInvalidParameter, "limit", ""},
		{"drill traversal id", "GET", drills + "/..%2F..%2Fetc", "", "", 400, api.CodeInvalidID, "id", ""},
		{"drill id with space", "POST", drills + "/a%20b/abort", "", "", 400, api.CodeInvalidID, "id", ""},
		{"unknown drill", "GET", drills + "/drill-orders-9", "", "", 404, api.CodeNotFound, "", ""},
		// Approve, reject, abort bodies.
		{"approve no body", "POST", awaiting + "/approve", "", "", 400, api.CodeInvalidJSON, "", ""},
		{"approve no step", "POST", awaiting + "/approve", `{"comment":"ok"}`, "", 400, api.CodeValidationFailed, "step", ""},
		{"approve bad step", "POST", awaiting + "/approve", `{"step":"finish"}`, "", 400, api.CodeValidationFailed, "step", ""},
		{"approve empty step", "POST", awaiting + "/approve", `{"step":""}`, "", 400, api.CodeValidationFailed, "step", ""},
		{"approve step number", "POST", awaiting + "/approve", `{"step":1}`, "", 400, api.CodeValidationFailed, "step", ""},
		{"approve step null", "POST", awaiting + "/approve", `{"step":null}`, "", 400, api.CodeValidationFailed, "step", ""},
		{"approve approver in body", "POST", awaiting + "/approve", `{"step":"start","approver":"mallory"}`, "", 400, api.CodeUnknownField, "approver", ""},
		{"approve comment too long", "POST", awaiting + "/approve", `{"step":"start","comment":"` + long + `"}`, "", 400, api.CodeValidationFailed, "comment", ""},
		{"approve comment control", "POST", awaiting + "/approve", `{"step":"start","comment":"a\u001bb"}`, "", 400, api.CodeValidationFailed, "comment", ""},
		{"approve form body", "POST", awaiting + "/approve", `step=start`, "application/x-www-form-urlencoded", 415, api.CodeUnsupportedMediaType, "", ""},
		{"reject bad step", "POST", awaiting + "/reject", `{"step":"both"}`, "", 400, api.CodeValidationFailed, "step", ""},
		{"reject trailing data", "POST", awaiting + "/reject", `{"step":"start"}{}`, "", 400, api.CodeInvalidJSON, "", ""},
		{"approve not awaited", "POST", awaiting + "/approve", `{"step":"complete"}`, "", 409, api.CodeConflict, "", ""},
		{"reject not awaited", "POST", awaiting + "/reject", `{"step":"complete","comment":"no"}`, "", 409, api.CodeConflict, "", ""},
		{"approve finished", "POST", finished + "/approve", `{"step":"start"}`, "", 409, api.CodeConflict, "", ""},
		{"approve unknown drill", "POST", drills + "/drill-orders-9/approve", `{"step":"start"}`, "", 404, api.CodeNotFound, "", ""},
		{"abort reason number", "POST", awaiting + "/abort", `{"reason":42}`, "", 400, api.CodeValidationFailed, "reason", ""},
		{"abort unknown field", "POST", awaiting + "/abort", `{"why":"x"}`, "", 400, api.CodeUnknownField, "why", ""},
		{"abort reason too long", "POST", awaiting + "/abort", `{"reason":"` + long + `"}`, "", 400, api.CodeValidationFailed, "reason", ""},
		{"abort finished", "POST", finished + "/abort", `{"reason":"late"}`, "", 409, api.CodeConflict, "", ""},
		// Audit, jobs.
		{"audit since word", "GET", base + "/audit?since=yesterday", "", "", 400, api.CodeInvalidParameter, "since", ""},
		{"audit limit 0", "GET", base + "/audit?limit=0", "", "", 400, api.CodeInvalidParameter, "limit", ""},
		{"audit unknown param", "GET", base + "/audit?principal=me", "", "", 400, api.CodeInvalidParameter, "principal", ""},
		{"jobs limit 0", "GET", base + "/jobs?limit=0", "", "", 400, api.CodeInvalidParameter, "limit", ""},
		{"jobs bad state", "GET", base + "/jobs?state=done", "", "", 400, api.CodeInvalidParameter, "state", ""},
		{"jobs active terminal", "GET", base + "/jobs?active_only=true&state=failed", "", "", 400, api.CodeInvalidParameter, "state", ""},
		{"cancel finished job", "POST", base + "/jobs/nightly-manual-1/cancel", "", "", 409, api.CodeConflict, "", ""},
		{"cancel with field", "POST", base + "/jobs/nightly-manual-1/cancel", `{"reason":"x"}`, "", 400, api.CodeUnknownField, "reason", ""},
		{"cancel unknown job", "POST", base + "/jobs/nope-1/cancel", "", "", 404, api.CodeNotFound, "", ""},
		// Conflicts and unknown ids on schedules.
		{"duplicate name", "POST", sched, `{"name":"Nightly","tasks":["quota_check"]}`, "", 409, api.CodeConflict, "", ""},
		{"run unknown schedule", "POST", sched + "/weekly/run", "", "", 404, api.CodeNotFound, "", ""},
		{"delete unknown schedule", "DELETE", sched + "/weekly", "", "", 404, api.CodeNotFound, "", ""},
		// Authentication and scopes.
		{"no token write", "POST", sched, valid(""), "", 401, api.CodeUnauthorized, "", "-"},
		{"no token read", "GET", sched, "", "", 401, api.CodeUnauthorized, "", "-"},
		{"bad token", "PATCH", sched + "/nightly", `{"enabled":false}`, "", 401, api.CodeUnauthorized, "", "Bearer " + unknownTokn},
		{"basic auth", "DELETE", sched + "/nightly", "", "", 401, api.CodeUnauthorized, "", "Basic YWRtaW46YWRtaW4="},
		{"bearer without token", "POST", sched + "/nightly/run", "", "", 401, api.CodeUnauthorized, "", "Bearer"},
		{"token with control char", "POST", sched, valid(""), "", 401, api.CodeUnauthorized, "", "Bearer abc\x7fdef"},
		{"no token drill approve", "POST", awaiting + "/approve", `{"step":"start"}`, "", 401, api.CodeUnauthorized, "", "-"},
		{"read token create", "POST", sched, valid(""), "", 403, api.CodeForbidden, "", "Bearer " + readToken},
		{"read token disable", "PATCH", sched + "/nightly", `{"enabled":false}`, "", 403, api.CodeForbidden, "", "Bearer " + readToken},
		{"read token delete", "DELETE", sched + "/nightly", "", "", 403, api.CodeForbidden, "", "Bearer " + readToken},
		{"read token run", "POST", sched + "/nightly/run", "", "", 403, api.CodeForbidden, "", "Bearer " + readToken},
		{"write token forced run", "POST", sched + "/nightly/run", `{"force":true}`, "", 403, api.CodeForbidden, "", "Bearer " + writeToken},
		{"write token drill start", "POST", drills, `{"target":"orders"}`, "", 403, api.CodeForbidden, "", "Bearer " + writeToken},
		{"write token approve", "POST", awaiting + "/approve", `{"step":"start"}`, "", 403, api.CodeForbidden, "", "Bearer " + writeToken},
		{"write token abort", "POST", awaiting + "/abort", "", "", 403, api.CodeForbidden, "", "Bearer " + writeToken},
		{"write token audit", "GET", base + "/audit", "", "", 403, api.CodeForbidden, "", "Bearer " + writeToken},
		{"read token audit", "GET", base + "/audit", "", "", 403, api.CodeForbidden, "", "Bearer " + readToken},
	}
}()

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
