package api_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/auth"
)

// adminOnlySettings are every admin-only schedule setting, as a JSON
// fragment of a schedule body (with the tasks it needs), and the name the
// 403 detail gives it.
var adminOnlySettings = []struct {
	name, fields, setting string
}{
	{"enforce_window false", `"tasks":["quota_check"],"enforce_window":false`, "enforce_window"},
	{"whole-day window", `"tasks":["quota_check"],"window_start_hour":4,"window_end_hour":4`, "window_start_hour=window_end_hour"},
	{"whole-day window at 0", `"tasks":["quota_check"],"window_start_hour":0,"window_end_hour":0`, "window_start_hour=window_end_hour"},
	{"drill task", `"tasks":["quota_check","disaster_recovery_drill"]`, "tasks.disaster_recovery_drill"},
	{"full compaction", `"tasks":["storage_compaction"],"task_options":{"storage_compaction":{"full":true}}`, "task_options.storage_compaction.full"},
	{"custom throttle probe", `"tasks":["mvcc_cleanup"],"task_options":{"mvcc_cleanup":{"throttle_query":"SELECT 1"}}`, "task_options.mvcc_cleanup.throttle_query"},
	{"keep one backup", `"tasks":["backup_verification"],"task_options":{"backup_verification":{"keep_backups":1}}`, "task_options.backup_verification.keep_backups"},
	{"keep two backups", `"tasks":["backup_verification"],"task_options":{"backup_verification":{"keep_backups":2}}`, "task_options.backup_verification.keep_backups"},
	{"24 h statement timeout", `"tasks":["storage_compaction"],"task_options":{"storage_compaction":{"statement_timeout_ms":86400000}}`, "task_options.storage_compaction.statement_timeout_ms"},
	{"statement timeout over 2 h", `"tasks":["index_rebuild"],"task_options":{"index_rebuild":{"statement_timeout_ms":7200001}}`, "task_options.index_rebuild.statement_timeout_ms"},
	{"long lock timeout", `"tasks":["mvcc_cleanup"],"task_options":{"mvcc_cleanup":{"lock_timeout_ms":600000}}`, "task_options.mvcc_cleanup.lock_timeout_ms"},
	{"long lock timeout orphan", `"tasks":["orphan_cleanup"],"task_options":{"orphan_cleanup":{"lock_timeout_ms":10001}}`, "task_options.orphan_cleanup.lock_timeout_ms"},
}

// Every admin-only setting is refused to a write token at create, PUT and
// PATCH (403 problem+json, nothing stored), allowed to an admin token, and
// a schedule holding it cannot be run on demand by a write token; the
// write token may take the setting away again.
func TestAdminOnlySettingsNeedAdmin(t *testing.T) {
	a := newAuthEnv(t, authConfig(), auth.Options{})
	e := a.env
	nightly := e.seedNightly()
	w, adm := bearer(writeToken), bearer(adminToken)
	const sched = base + "/schedules"
	denied := func(r *response, setting string) {
		t.Helper()
		p := r.problem(http.StatusForbidden, api.CodeForbidden)
		if !strings.Contains(p.Detail, setting) || !strings.Contains(p.Detail, api.ScopeAdmin) {
			t.Errorf("detail %q does not name %s and the admin scope", p.Detail, setting)
		}
		if ev := a.lastEvent(); ev.Outcome != "denied" || ev.Status != http.StatusForbidden || ev.Principal != "ci-writer" {
			t.Errorf("audit %+v", ev)
		}
	}
	for i, s := range adminOnlySettings {
		t.Run(s.name, func(t *testing.T) {
			e.t = t
			before := e.fake.Counts()
			name := "Admin only " + string(rune('a'+i))
			body := `{"name":"` + name + `",` + s.fields + `}`
			// Create.
			denied(e.req(http.MethodPost, sched, body, w...), s.setting)
			if _, ok := e.fake.Schedule(domain.Slug(name)); ok {
				t.Fatal("refused create stored a schedule")
			}
			// PUT over nightly.
			denied(e.req(http.MethodPut, sched+"/nightly", `{"name":"Nightly",`+s.fields+`}`, w...), s.setting)
			// PATCH of nightly.
			denied(e.req(http.MethodPatch, sched+"/nightly", `{`+s.fields+`}`, w...), s.setting)
			if c := e.fake.Counts(); c.Changes() != before.Changes() || c.Creates != before.Creates || c.Updates != before.Updates {
				t.Fatalf("refused writes reached the store: %+v → %+v", before, c)
			}
			got := e.req(http.MethodGet, sched+"/nightly", "", w...).ok(http.StatusOK).schedule()
			if !reflect.DeepEqual(got, nightly) {
				t.Fatalf("nightly changed:\n%+v\n%+v", got, nightly)
			}
			// An admin may; then a write token may neither run it nor
			// re-set the setting to another admin-only value, but may
			// patch other fields and remove the setting.
			created := e.req(http.MethodPost, sched, body, adm...).ok(http.StatusCreated).schedule()
			one := sched + "/" + created.ID
			runs := e.fake.Counts().Runs
			denied(e.req(http.MethodPost, one+"/run", "", w...), s.setting)
			denied(e.req(http.MethodPost, one+"/run", `{"force":false,"wait":"1s"}`, w...), s.setting)
			if e.fake.Counts().Runs != runs {
				t.Fatal("a refused run reached the service")
			}
			e.req(http.MethodPatch, one, `{"description":"unrelated change"}`, w...).ok(http.StatusOK)
			// A PUT of the schedule as read back keeps the setting: allowed.
			back := e.req(http.MethodGet, one, "", w...).ok(http.StatusOK)
			e.req(http.MethodPut, one, string(back.Body), w...).ok(http.StatusOK)
			after := e.req(http.MethodGet, one, "", w...).ok(http.StatusOK).schedule()
			if len(domain.AdminOnlySettings(after.ScheduleSpec)) == 0 {
				t.Fatalf("the setting was lost: %+v", after)
			}
			e.req(http.MethodDelete, one, "", w...).ok(http.StatusOK)
		})
	}
	e.t = t

	// Taking settings away needs no admin.
	created := e.req(http.MethodPost, sched, `{"name":"Remove me","tasks":["quota_check","disaster_recovery_drill","backup_verification"],`+
		`"enforce_window":false,"task_options":{"backup_verification":{"keep_backups":1}}}`, adm...).ok(http.StatusCreated).schedule()
	one := sched + "/" + created.ID
	// Lowering keep_backups further is another admin-only value.
	denied(e.req(http.MethodPatch, one, `{"task_options":{"backup_verification":{"keep_backups":2}}}`, w...), "keep_backups")
	got := e.req(http.MethodPatch, one, `{"enforce_window":true,"tasks":["quota_check","backup_verification"],"task_options":{}}`, w...).ok(http.StatusOK).schedule()
	if len(domain.AdminOnlySettings(got.ScheduleSpec)) != 0 {
		t.Fatalf("settings left: %v", domain.AdminOnlySettings(got.ScheduleSpec))
	}
	e.req(http.MethodPost, one+"/run", "", w...).ok(http.StatusAccepted)

	// Values inside the writer bounds are fine for a write token.
	for _, fields := range []string{
		`"tasks":["storage_compaction"],"task_options":{"storage_compaction":{"full":false,"statement_timeout_ms":7200000,"lock_timeout_ms":10000}}`,
		`"tasks":["backup_verification"],"task_options":{"backup_verification":{"keep_backups":3}}`,
		`"tasks":["backup_verification"],"task_options":{"backup_verification":{"keep_backups":50}}`,
		`"tasks":["quota_check"],"window_start_hour":22,"window_end_hour":4`,
	} {
		s := e.req(http.MethodPost, sched, `{"name":"Writer ok",`+fields+`}`, w...).ok(http.StatusCreated).schedule()
		e.req(http.MethodDelete, sched+"/"+s.ID, "", w...).ok(http.StatusOK)
	}
}

// GET /task-types tells which task types and options are admin-only.
func TestTaskTypesListAdminOnly(t *testing.T) {
	e := newEnv(t)
	var list api.TaskTypeList
	e.req(http.MethodGet, base+"/task-types", "").ok(http.StatusOK).decode(&list)
	found := map[string]bool{}
	for _, tt := range list.TaskTypes {
		if tt.AdminOnly {
			found[tt.Name] = true
		}
		for k, o := range tt.Options {
			if o.AdminOnly || o.WriterMin != nil || o.WriterMax != nil {
				found[tt.Name+"."+k] = true
			}
		}
	}
	for _, want := range []string{"disaster_recovery_drill", "storage_compaction.full", "backup_verification.keep_backups",
		"storage_compaction.statement_timeout_ms", "mvcc_cleanup.lock_timeout_ms"} {
		if !found[want] {
			t.Errorf("%s not listed as admin-only (%v)", want, found)
		}
	}
}
