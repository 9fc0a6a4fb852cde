package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
)

// Hostile is a running gateway for RunHostile.
type Hostile struct {
	// BaseURL is the server's root (api.BasePath is appended).
	BaseURL string
	// Tokens by scope (api.ScopeRead, ScopeWrite, ScopeAdmin).
	Tokens map[string]string
	// Client sends the requests; default a client with a 60 s timeout.
	Client *http.Client
}

// HostileCase is one hostile request of RunHostile.
type HostileCase struct {
	Name, Method, Path string
	Body               []byte
	// ContentType defaults to application/json when there is a body; "-"
	// sends none.
	ContentType string
	// Auth is the scope whose token is sent (api.ScopeRead, ...), "" for
	// the admin token, "-" for no Authorization header, or a raw header
	// value starting with "raw:".
	Auth string
	// Header adds headers.
	Header map[string]string
	// Status is the status expected; 0 accepts any 4xx. A 401 or 403
	// may also be answered 429 (the client's denial budget is spent).
	Status int
	// Code is the problem code expected; "" accepts any.
	Code string
}

// HostileCases returns the hostile requests over every endpoint: bodies
// (malformed, wrong types, duplicate keys, deep nesting, oversized, other
// encodings), query parameters, path ids, headers and methods, each of
// which must be refused with a 4xx problem+json and change nothing. sid
// is an existing schedule (the suite creates one).
func HostileCases(sid string) []HostileCase {
	const (
		sched  = "/schedules"
		jobs   = "/jobs"
		drills = "/drills"
		noJob  = "/jobs/hostile-no-such-job-1"
		noDril = "/drills/drill-hostile-no-such-1"
	)
	one := sched + "/" + sid
	var cs []HostileCase
	add := func(c HostileCase) { cs = append(cs, c) }

	type ep struct {
		method, path string
		scope        string // the scope the operation needs
		body         bool   // takes a JSON body
	}
	endpoints := []ep{
		{"GET", "/status", api.ScopeRead, false}, {"GET", "/health", api.ScopeRead, false},
		{"GET", "/task-types", api.ScopeRead, false}, {"GET", "/targets", api.ScopeRead, false},
		{"POST", sched, api.ScopeWrite, true}, {"GET", sched, api.ScopeRead, false},
		{"GET", one, api.ScopeRead, false}, {"PUT", one, api.ScopeWrite, true},
		{"PATCH", one, api.ScopeWrite, true}, {"DELETE", one, api.ScopeWrite, false},
		{"POST", one + "/run", api.ScopeWrite, true},
		{"GET", jobs, api.ScopeRead, false}, {"GET", noJob, api.ScopeRead, false},
		{"POST", noJob + "/cancel", api.ScopeWrite, true},
		{"POST", drills, api.ScopeAdmin, true}, {"GET", drills, api.ScopeRead, false},
		{"GET", noDril, api.ScopeRead, false}, {"POST", noDril + "/approve", api.ScopeAdmin, true},
		{"POST", noDril + "/reject", api.ScopeAdmin, true}, {"POST", noDril + "/abort", api.ScopeAdmin, true},
		{"GET", "/audit", api.ScopeAdmin, false},
	}
	validBody := map[string]string{
		"POST " + sched: `{"name":"Hostile never stored","tasks":["quota_check"],"enabled":false}`,
		"PUT " + one:    `{"name":"Hostile never stored","tasks":["quota_check"],"enabled":false}`,
		"PATCH " + one:  `{"description":"never stored"}`,
	}
	// Authentication and scope, on every endpoint.
	for _, e := range endpoints {
		var body []byte
		if b, ok := validBody[e.method+" "+e.path]; ok {
			body = []byte(b)
		}
		n := e.method + " " + e.path
		add(HostileCase{Name: n + ": no token", Method: e.method, Path: e.path, Body: body, Auth: "-", Status: 401, Code: api.CodeUnauthorized})
		add(HostileCase{Name: n + ": unknown token", Method: e.method, Path: e.path, Body: body, Auth: "raw:Bearer thm_hostile-unknown-token-000000000000000000", Status: 401, Code: api.CodeUnauthorized})
		add(HostileCase{Name: n + ": basic auth", Method: e.method, Path: e.path, Body: body, Auth: "raw:Basic YWRtaW46YWRtaW4=", Status: 401, Code: api.CodeUnauthorized})
		add(HostileCase{Name: n + ": 8 KiB token", Method: e.method, Path: e.path, Body: body, Auth: "raw:Bearer " + strings.Repeat("A", 8<<10), Status: 401, Code: api.CodeUnauthorized})
		switch e.scope {
		case api.ScopeWrite:
			add(HostileCase{Name: n + ": read token", Method: e.method, Path: e.path, Body: body, Auth: api.ScopeRead, Status: 403, Code: api.CodeForbidden})
		case api.ScopeAdmin:
			add(HostileCase{Name: n + ": write token", Method: e.method, Path: e.path, Body: body, Auth: api.ScopeWrite, Status: 403, Code: api.CodeForbidden})
			add(HostileCase{Name: n + ": read token", Method: e.method, Path: e.path, Body: body, Auth: api.ScopeRead, Status: 403, Code: api.CodeForbidden})
		}
	}
	// Bodies, on every endpoint that takes one.
	deep := strings.Repeat(`{"a":`, 20_000) + "1" + strings.Repeat("}", 20_000)
	deepArr := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	utf16 := []byte{0xff, 0xfe, '{', 0, '}', 0}
	huge := `{"description":"` + strings.Repeat("x", 2<<20) + `"}`
	for _, e := range endpoints {
		if !e.body {
			continue
		}
		n := e.method + " " + e.path
		for _, b := range []struct {
			name, body, ct string
			status         int
		}{
			{"truncated JSON", `{"name":`, "", 400},
			{"array", `[]`, "", 400},
			{"null", `null`, "", 400},
			{"number", `42`, "", 400},
			{"trailing garbage", `{} x`, "", 400},
			{"two objects", `{}{}`, "", 400},
			{"duplicate keys", `{"comment":"a","comment":"b","step":"start","step":"complete","reason":"x","reason":"y","force":false,"force":true,"name":"a","name":"b","target":"x","target":"y"}`, "", 400},
			{"unknown field", `{"zzz_unknown":1}`, "", 400},
			{"deep objects", deep, "", 0},
			{"deep arrays", deepArr, "", 0},
			{"invalid UTF-8", "{\"name\":\"\xff\xfe\"}", "", 400},
			{"UTF-16 with BOM", string(utf16), "", 400},
			{"NUL bytes", "{\"name\":\"a\x00b\"}", "", 400},
			{"number overflow", `{"window_start_hour":1e400,"force":1e400,"target":1e400,"step":1e400,"reason":1e400}`, "", 400},
			{"oversized", huge, "", 413},
			{"text/plain", `{}`, "text/plain", 415},
			{"form encoded", `a=b`, "application/x-www-form-urlencoded", 415},
			{"no content type", `{}`, "-", 415},
			{"xml", `<a/>`, "application/xml", 415},
		} {
			add(HostileCase{Name: n + ": " + b.name, Method: e.method, Path: e.path, Body: []byte(b.body), ContentType: b.ct, Status: b.status})
		}
	}
	// Query parameters.
	for _, q := range []string{"limit=0", "limit=-1", "limit=201", "limit=1e3", "limit=abc", "limit=99999999999999999999",
		"limit=1&limit=2", "colour=red", "state=bogus", "state=", "active_only=maybe", "active_only=true&state=failed",
		"schedule_id=..%2Fx", "schedule_id=A", "next_page_token=x", "next_page_token=" + strings.Repeat("A", 5000),
		"next_page_token=%00", "next_page_token=AAAAAAAAAAAAAAAAAAAAAAAA", "next_page_token=a%20b"} {
		add(HostileCase{Name: "GET /jobs?" + clipName(q), Method: "GET", Path: jobs + "?" + q, Status: 400})
	}
	for _, q := range []string{"limit=0", "limit=201", "limit=x", "target=orders", "limit=1&limit=2"} {
		add(HostileCase{Name: "GET /drills?" + q, Method: "GET", Path: drills + "?" + q, Status: 400})
	}
	for _, q := range []string{"since=yesterday", "since=", "limit=0", "limit=10001", "since=2025-13-01T00:00:00Z", "principal=me",
		"since=" + strings.Repeat("9", 30)} {
		add(HostileCase{Name: "GET /audit?" + clipName(q), Method: "GET", Path: "/audit?" + q, Status: 400})
	}
	for _, q := range []string{"wait=61s", "wait=-1s", "wait=abc", "wait=1s&wait=2s", "wait=1e9h"} {
		add(HostileCase{Name: "GET job ?" + q, Method: "GET", Path: noJob + "?" + q, Status: 400})
	}
	for _, w := range []string{`"61s"`, `"-1s"`, `"forever"`, `30`} {
		add(HostileCase{Name: "run wait " + w, Method: "POST", Path: one + "/run", Body: []byte(`{"wait":` + w + `}`), Status: 400})
	}
	// Path ids.
	for _, id := range []string{"..%2F..%2Fetc%2Fpasswd", "%2e%2e", "Upper", strings.Repeat("a", 129), "a%00b", "%C3%A9t%C3%A9",
		"a%20b", "-lead", "a%2Fb", "%252e%252e"} {
		add(HostileCase{Name: "GET schedule " + clipName(id), Method: "GET", Path: sched + "/" + id, Status: 0})
		add(HostileCase{Name: "PATCH schedule " + clipName(id), Method: "PATCH", Path: sched + "/" + id, Body: []byte(`{"enabled":true}`), Status: 0})
		add(HostileCase{Name: "DELETE schedule " + clipName(id), Method: "DELETE", Path: sched + "/" + id, Status: 0})
		add(HostileCase{Name: "run schedule " + clipName(id), Method: "POST", Path: sched + "/" + id + "/run", Status: 0})
	}
	for _, id := range []string{"..%2Fx", "a%20b", strings.Repeat("j", 300), "a..b", "%00", "%2e%2e"} {
		add(HostileCase{Name: "GET job " + clipName(id), Method: "GET", Path: jobs + "/" + id, Status: 0})
		add(HostileCase{Name: "cancel job " + clipName(id), Method: "POST", Path: jobs + "/" + id + "/cancel", Status: 0})
		add(HostileCase{Name: "GET drill " + clipName(id), Method: "GET", Path: drills + "/" + id, Status: 0})
		add(HostileCase{Name: "abort drill " + clipName(id), Method: "POST", Path: drills + "/" + id + "/abort", Status: 0})
	}
	// Schedule bodies that are well-formed JSON but bad values.
	for _, b := range []string{
		`{"target":"../x"}`, `{"target":"a/b"}`, `{"timezone":"../../etc/passwd"}`, `{"tasks":["drop_database"]}`,
		`{"tasks":[]}`, `{"frequency":"custom","cron_expression":"* * * * * * *"}`, `{"window_start_hour":-1}`,
		`{"task_options":{"mvcc_cleanup":{"parallelism":1e9}}}`, `{"task_options":{"nope":{}}}`, `{"name":""}`,
		`{"name":"` + strings.Repeat("n", 300) + `"}`, `{"description":"` + strings.Repeat("d", 3000) + `"}`,
		`{"enabled":"true"}`, `{"id":"other","name":null}`, `{"tasks":"quota_check"}`,
	} {
		add(HostileCase{Name: "PATCH schedule " + clipName(b), Method: "PATCH", Path: one, Body: []byte(b), Status: 400})
	}
	// Admin-only settings with a write token.
	for _, b := range []string{
		`{"enforce_window":false}`, `{"window_start_hour":3,"window_end_hour":3}`,
		`{"tasks":["quota_check","disaster_recovery_drill"]}`,
		`{"tasks":["storage_compaction"],"task_options":{"storage_compaction":{"full":true}}}`,
		`{"tasks":["backup_verification"],"task_options":{"backup_verification":{"keep_backups":1}}}`,
		`{"tasks":["storage_compaction"],"task_options":{"storage_compaction":{"statement_timeout_ms":86400000}}}`,
		`{"tasks":["mvcc_cleanup"],"task_options":{"mvcc_cleanup":{"lock_timeout_ms":3600000}}}`,
	} {
		add(HostileCase{Name: "write token PATCH " + clipName(b), Method: "PATCH", Path: one, Body: []byte(b), Auth: api.ScopeWrite, Status: 403, Code: api.CodeForbidden})
		var m map[string]any
		_ = json.Unmarshal([]byte(b), &m)
		m["name"] = "Hostile admin only"
		if _, ok := m["tasks"]; !ok {
			m["tasks"] = []string{"quota_check"}
		}
		create, _ := json.Marshal(m)
		add(HostileCase{Name: "write token create " + clipName(b), Method: "POST", Path: sched, Body: create, Auth: api.ScopeWrite, Status: 403, Code: api.CodeForbidden})
	}
	add(HostileCase{Name: "write token forced run", Method: "POST", Path: one + "/run", Body: []byte(`{"force":true}`), Auth: api.ScopeWrite, Status: 403, Code: api.CodeForbidden})
	// Headers and methods.
	add(HostileCase{Name: "gzip body", Method: "PATCH", Path: one, Body: []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, Header: map[string]string{"Content-Encoding": "gzip"}, Status: 400})
	add(HostileCase{Name: "json with utf-16 charset", Method: "PATCH", Path: one, Body: utf16, ContentType: "application/json; charset=utf-16", Status: 400})
	add(HostileCase{Name: "multipart", Method: "POST", Path: sched, Body: []byte("--x\r\n\r\n--x--"), ContentType: "multipart/form-data; boundary=x", Status: 415})
	add(HostileCase{Name: "bearer in lower case twice", Method: "GET", Path: sched, Auth: "raw:bearer bearer x", Status: 401})
	add(HostileCase{Name: "token with spaces", Method: "GET", Path: sched, Auth: "raw:Bearer a b c", Status: 401})
	add(HostileCase{Name: "huge request id", Method: "PATCH", Path: one, Body: []byte(`{"enabled":"no"}`), Header: map[string]string{"X-Request-Id": strings.Repeat("r", 4000)}, Status: 400})
	for _, m := range []struct{ method, path string }{{"PUT", jobs}, {"DELETE", drills}, {"PATCH", "/audit"}, {"POST", "/status"}, {"DELETE", sched}, {"PUT", noJob + "/cancel"}} {
		add(HostileCase{Name: m.method + " " + m.path + " (method)", Method: m.method, Path: m.path, Status: 405})
	}
	for _, p := range []string{"/schedules/" + sid + "/run/now", "/nope", "/schedules/" + sid + "/", "/jobs/x/y/z"} {
		add(HostileCase{Name: "no route " + p, Method: "GET", Path: p, Status: 404})
	}
	return cs
}

func clipName(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// RunHostile sends HostileCases to the gateway: each must be answered with
// a 4xx application/problem+json (the expected status and code where the
// case names them) and change nothing: the schedules (read back after
// every case), jobs and drills (read back at the end) are as before. It
// returns the number of cases sent.
func RunHostile(t *testing.T, h Hostile) int {
	t.Helper()
	if h.Client == nil {
		h.Client = &http.Client{Timeout: 60 * time.Second}
	}
	admin := h.Tokens[api.ScopeAdmin]
	send := func(method, path string, body []byte, hdr http.Header) (int, http.Header, []byte, error) {
		req, err := http.NewRequest(method, h.BaseURL+api.BasePath+path, bytes.NewReader(body))
		if err != nil {
			return 0, nil, nil, err
		}
		if body == nil {
			req.Body = http.NoBody
		}
		req.Header = hdr
		resp, err := h.Client.Do(req)
		if err != nil {
			return 0, nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, resp.Header, b, err
	}
	adminGet := func(path string, out any) {
		t.Helper()
		hdr := http.Header{"Authorization": {"Bearer " + admin}}
		st, _, b, err := send("GET", path, nil, hdr)
		if err != nil || st != http.StatusOK {
			t.Fatalf("GET %s: %d %v %s", path, st, err, b)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	// The schedule the cases aim at.
	name := fmt.Sprintf("Hostile %d", time.Now().UnixNano())
	st, _, b, err := send("POST", "/schedules", []byte(`{"name":"`+name+`","tasks":["quota_check"],"enabled":false}`),
		http.Header{"Authorization": {"Bearer " + admin}, "Content-Type": {"application/json"}})
	if err != nil || st != http.StatusCreated {
		t.Fatalf("create the target schedule: %d %v %s", st, err, b)
	}
	var target domain.Schedule
	if err := json.Unmarshal(b, &target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _, _, _ = send("DELETE", "/schedules/"+target.ID, nil, http.Header{"Authorization": {"Bearer " + admin}})
	})
	schedules := func() string {
		var l api.ScheduleList
		adminGet("/schedules", &l)
		out := make([]string, 0, len(l.Schedules))
		for _, s := range l.Schedules {
			s.NextRunMs = 0 // moves with the clock
			b, _ := json.Marshal(s)
			out = append(out, string(b))
		}
		slices.Sort(out)
		return strings.Join(out, "\n")
	}
	others := func() string {
		var jl api.JobPage
		adminGet("/jobs?limit=200", &jl)
		var dl api.DrillList
		adminGet("/drills?limit=200", &dl)
		var out []string
		for _, j := range jl.Jobs {
			out = append(out, "job "+j.ID)
		}
		for _, d := range dl.Drills {
			out = append(out, "drill "+d.ID+" "+string(d.State))
		}
		slices.Sort(out)
		return strings.Join(out, "\n")
	}
	beforeS, beforeO := schedules(), others()

	cases := HostileCases(target.ID)
	counted := map[int]int{}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			hdr := http.Header{}
			switch {
			case c.Auth == "":
				hdr.Set("Authorization", "Bearer "+admin)
			case c.Auth == "-":
			case strings.HasPrefix(c.Auth, "raw:"):
				hdr.Set("Authorization", strings.TrimPrefix(c.Auth, "raw:"))
			default:
				hdr.Set("Authorization", "Bearer "+h.Tokens[c.Auth])
			}
			switch {
			case c.ContentType == "-":
			case c.ContentType != "":
				hdr.Set("Content-Type", c.ContentType)
			case c.Body != nil:
				hdr.Set("Content-Type", "application/json")
			}
			for k, v := range c.Header {
				hdr.Set(k, v)
			}
			st, rh, b, err := send(c.Method, c.Path, c.Body, hdr)
			if err != nil {
				t.Fatalf("%s %s: %v", c.Method, c.Path, err)
			}
			counted[st]++
			want := c.Status
			if (want == 401 || want == 403) && st == http.StatusTooManyRequests {
				want = st
			}
			if st < 400 || st > 499 || (want != 0 && st != want) {
				t.Fatalf("%s %s: status %d, want %v; body %.300s", c.Method, c.Path, st, wantText(c.Status), b)
			}
			if ct := rh.Get("Content-Type"); ct != api.ProblemContentType {
				t.Fatalf("Content-Type %q", ct)
			}
			var p api.Problem
			if err := json.Unmarshal(b, &p); err != nil || p.Status != st || p.Code == "" || p.Detail == "" {
				t.Fatalf("problem %.300s: %v", b, err)
			}
			if c.Code != "" && p.Code != c.Code && st != http.StatusTooManyRequests {
				t.Fatalf("code %q, want %q (%s)", p.Code, c.Code, p.Detail)
			}
			if after := schedules(); after != beforeS {
				t.Fatalf("the schedules changed:\n%s\n---\n%s", beforeS, after)
			}
		})
	}
	if after := others(); after != beforeO {
		t.Fatalf("jobs or drills changed:\n%s\n---\n%s", beforeO, after)
	}
	t.Logf("%d hostile requests, status → count: %v", len(cases), counted)
	return len(cases)
}

func wantText(s int) string {
	if s == 0 {
		return "a 4xx"
	}
	return fmt.Sprint(s)
}
