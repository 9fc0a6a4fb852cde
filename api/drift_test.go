package api_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/audit"
)

// These tests keep the OpenAPI document in step with the domain package
// and the router; the exchange validator keeps it in step with handlers.

func jsonKeys(t *testing.T, v any) []string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func schemaProps(t *testing.T, doc *openapi3.T, name string) []string {
	t.Helper()
	s := doc.Components.Schemas[name]
	if s == nil {
		t.Fatalf("no schema %s", name)
	}
	keys := make([]string, 0, len(s.Value.Properties))
	for k := range s.Value.Properties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestDocumentMatchesDomainTypes(t *testing.T) {
	doc := apitest.NewValidator(t).Doc()
	check := func(schema string, v any) {
		t.Helper()
		if got, want := schemaProps(t, doc, schema), jsonKeys(t, v); !slices.Equal(got, want) {
			t.Errorf("schema %s has %v, the Go type %v", schema, got, want)
		}
		if req := doc.Components.Schemas[schema].Value.Required; len(req) > 0 {
			r := slices.Sorted(slices.Values(req))
			if want := jsonKeys(t, v); !slices.Equal(r, want) {
				t.Errorf("schema %s requires %v, the Go type always has %v", schema, r, want)
			}
		}
	}
	check("Schedule", domain.Schedule{})
	check("Job", domain.Job{})
	check("TaskRun", domain.TaskRun{})
	check("Status", api.Status{})
	check("JobList", api.JobPage{})
	check("ScheduleList", api.ScheduleList{})
	check("Deleted", api.Deleted{})
	check("RunRequest", api.RunRequest{})
	check("DrillList", api.DrillList{})
	check("DrillStep", domain.DrillStep{})
	check("Approval", domain.Approval{})
	check("TaskTypeList", api.TaskTypeList{})
	check("TargetList", api.TargetList{})
	check("HealthReport", api.HealthReport{})
	check("AuditList", api.AuditList{})
	check("AuditEvent", audit.Event{})
	check("DrillAbortRequest", api.DrillAbortRequest{})
	// Types with omitempty fields: every field documented, the always
	// present ones required.
	checkOptional := func(schema string, full, zero any) {
		t.Helper()
		if got, want := schemaProps(t, doc, schema), jsonKeys(t, full); !slices.Equal(got, want) {
			t.Errorf("schema %s has %v, the Go type %v", schema, got, want)
		}
		r := slices.Sorted(slices.Values(doc.Components.Schemas[schema].Value.Required))
		if want := jsonKeys(t, zero); !slices.Equal(r, want) {
			t.Errorf("schema %s requires %v, the Go type always has %v", schema, r, want)
		}
	}
	checkOptional("TargetInfo", api.TargetInfo{Blackout: &api.BlackoutNow{}}, api.TargetInfo{})
	checkOptional("Drill", domain.Drill{JobID: "j", Strategy: "s", BackupID: "b", BackupAtMs: 1, WALRange: "w", RestoredBytes: 1,
		WALBytes: 1, CopyMs: 1, ReplayMs: 1, RestoreMBps: 1, ReplayMBps: 1, RPOBasis: "canary", ClockSource: "c"}, domain.Drill{})
	check("DrillStartRequest", api.DrillStartRequest{Strategy: "s"}) // every field optional: the body is
	checkOptional("HealthSignal", api.HealthSignal{Details: map[string]any{"x": 1}}, api.HealthSignal{})
	one := 1.0
	checkOptional("OptionInfo", api.OptionInfo{Min: &one, Max: &one, Values: []string{"a"}, Default: 1, EngineDefaults: map[string]any{"sqlite": 2}, AdminOnly: true, WriterMin: &one, WriterMax: &one}, api.OptionInfo{})
	checkOptional("TaskTypeInfo", api.TaskTypeInfo{AdminOnly: true}, api.TaskTypeInfo{})
	if got, want := schemaProps(t, doc, "DrillDecision"), jsonKeys(t, api.DrillDecision{}); !slices.Equal(got, want) {
		t.Errorf("DrillDecision has %v, the Go type %v", got, want)
	}

	write := append(jsonKeys(t, domain.NewScheduleSpec("")), domain.ReadOnlyScheduleFields...)
	sort.Strings(write)
	if got := schemaProps(t, doc, "ScheduleWrite"); !slices.Equal(got, write) {
		t.Errorf("ScheduleWrite has %v, want writable + read-only %v", got, write)
	}
}

func TestDocumentMatchesTaskTypes(t *testing.T) {
	doc := apitest.NewValidator(t).Doc()
	var enum []string
	for _, v := range doc.Components.Schemas["TaskType"].Value.Enum {
		enum = append(enum, v.(string))
	}
	var want []string
	for _, tt := range domain.AllTaskTypes() {
		want = append(want, string(tt))
	}
	if !slices.Equal(enum, want) {
		t.Errorf("TaskType enum %v, domain %v", enum, want)
	}
	opts := doc.Components.Schemas["TaskOptions"].Value.Properties
	if len(opts) != len(want) {
		t.Errorf("TaskOptions lists %d task types, want %d", len(opts), len(want))
	}
	for _, tt := range domain.AllTaskTypes() {
		ref := opts[string(tt)]
		if ref == nil {
			t.Errorf("TaskOptions lacks %s", tt)
			continue
		}
		info, _ := domain.Info(tt)
		var keys []string
		for k := range ref.Value.Properties {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if !slices.Equal(keys, domain.OptionKeys(tt)) {
			t.Errorf("%s options %v, domain %v", tt, keys, domain.OptionKeys(tt))
			continue
		}
		for k, o := range info.Options {
			s := ref.Value.Properties[k].Value
			switch o.Kind {
			case domain.OptionInt, domain.OptionFloat:
				wantType := map[domain.OptionKind]string{domain.OptionInt: "integer", domain.OptionFloat: "number"}[o.Kind]
				if !s.Type.Is(wantType) || s.Min == nil || *s.Min != o.Min || s.Max == nil || *s.Max != o.Max {
					t.Errorf("%s.%s: doc %v [%v,%v], domain %s [%g,%g]", tt, k, s.Type, s.Min, s.Max, wantType, o.Min, o.Max)
				}
			case domain.OptionBool:
				if !s.Type.Is("boolean") {
					t.Errorf("%s.%s: doc %v, domain boolean", tt, k, s.Type)
				}
			case domain.OptionEnum:
				var vals []string
				for _, v := range s.Enum {
					vals = append(vals, v.(string))
				}
				if !s.Type.Is("string") || !slices.Equal(vals, o.Values) {
					t.Errorf("%s.%s: doc %v, domain %v", tt, k, vals, o.Values)
				}
			}
		}
	}
	var states []string
	for _, v := range doc.Components.Schemas["JobState"].Value.Enum {
		states = append(states, v.(string))
	}
	for _, s := range []domain.JobState{domain.StatePending, domain.StateRunning, domain.StateWaiting, domain.StateSucceeded, domain.StateFailed, domain.StateCancelled, domain.StateSkipped} {
		if !slices.Contains(states, string(s)) {
			t.Errorf("JobState lacks %s", s)
		}
	}
}

func TestDocumentListsProblemCodes(t *testing.T) {
	doc := apitest.NewValidator(t).Doc()
	var enum []string
	for _, v := range doc.Components.Schemas["Problem"].Value.Properties["code"].Value.Enum {
		enum = append(enum, v.(string))
	}
	for _, c := range []string{api.CodeInvalidJSON, api.CodeValidationFailed, api.CodeUnknownField, api.CodeInvalidParameter,
		api.CodeInvalidID, api.CodeNotFound, api.CodeConflict, api.CodeUnauthorized, api.CodeForbidden, api.CodeUnavailable,
		api.CodeBodyTooLarge, api.CodeUnsupportedMediaType, api.CodeMethodNotAllowed, api.CodeInternal, api.CodeWriteUnconfirmed} {
		if !slices.Contains(enum, c) {
			t.Errorf("Problem.code enum lacks %s", c)
		}
	}
}

// Every route the router serves is documented, and every documented
// operation is served.
func TestDocumentMatchesRoutes(t *testing.T) {
	doc := apitest.NewValidator(t).Doc()
	engine, ok := api.New(apitest.NewFake(), api.Options{}).(*gin.Engine)
	if !ok {
		t.Fatal("api.New no longer returns a *gin.Engine; adapt this test")
	}
	served := map[string]bool{}
	for _, r := range engine.Routes() {
		p := r.Path
		segs := strings.Split(p, "/")
		for i, s := range segs {
			if strings.HasPrefix(s, ":") {
				segs[i] = "{" + s[1:] + "}"
			}
		}
		served[r.Method+" "+strings.Join(segs, "/")] = true
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	for k := range served {
		if !documented[k] {
			t.Errorf("served but not documented: %s", k)
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("documented but not served: %s", k)
		}
	}
	if !documented[http.MethodPost+" "+api.BasePath+"/schedules/{id}/run"] {
		t.Error("sanity: run not documented")
	}
}

// pathParam matches an OpenAPI path parameter ({id}, {name}).
var pathParam = regexp.MustCompile(`\{(\w+)\}`)

// Every documented operation under the base path names the scope the
// router requires, and declares 401 and 403.
func TestDocumentMatchesScopes(t *testing.T) {
	doc := apitest.NewValidator(t).Doc()
	scopes := map[string]string{}
	var mu sync.Mutex
	h := api.New(apitest.NewFake(), api.Options{Logger: slog.New(slog.DiscardHandler), Authenticator: func(c *gin.Context) {
		mu.Lock()
		scopes[c.Request.Method+" "+c.FullPath()] = api.RequiredScope(c)
		mu.Unlock()
		api.AbortForbidden(c, "probe")
	}})
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			declared, _ := op.Extensions["x-required-scope"].(string)
			if !strings.HasPrefix(path, api.BasePath) {
				if declared != "" || op.Security == nil || len(*op.Security) != 0 {
					t.Errorf("%s %s is outside the API: want security [] and no scope", method, path)
				}
				continue
			}
			for _, code := range []int{http.StatusUnauthorized, http.StatusForbidden} {
				if op.Responses.Status(code) == nil {
					t.Errorf("%s %s does not document %d", method, path, code)
				}
			}
			req := httptest.NewRequest(method, pathParam.ReplaceAllString(path, "x1"), nil)
			h.ServeHTTP(httptest.NewRecorder(), req)
			route := method + " " + pathParam.ReplaceAllString(path, ":$1")
			mu.Lock()
			got := scopes[route]
			mu.Unlock()
			if got == "" || got != declared {
				t.Errorf("%s %s: router requires %q, document declares %q", method, path, got, declared)
			}
		}
	}
}
