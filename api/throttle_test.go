package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/internal/audit"
	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/internal/history"
	"github.com/themis-maintenance/themis/starter"
)

// newThrottleEnv is the gateway over the real starter service and a real
// SQLite history store.
func newThrottleEnv(t *testing.T) (*env, *history.Store) {
	t.Helper()
	store, err := history.Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := config.Config{Targets: []config.TargetConfig{{Name: "orders", Driver: "postgres"}}}
	svc := starter.New(nil, starter.Options{Records: store, Targets: cfg.TargetInfos()})
	fake := apitest.NewFake()
	h := api.New(svc, api.Options{Audit: fake.AuditLog(), Logger: slog.New(slog.DiscardHandler),
		Denials: api.DenialLimit{PerMinute: 1e9, Burst: 1e9, AuditEach: 1e9}})
	return &env{t: t, fake: fake, h: apitest.NewValidator(t).Handler(t, h)}, store
}

// POST, GET and DELETE /targets/{name}/throttle over the history store;
// what the API stores is what the PostgreSQL pacer reads (ManualPause).
func TestThrottleEndpoint(t *testing.T) {
	e, store := newThrottleEnv(t)
	path := base + "/targets/orders/throttle"
	var st api.ThrottleState
	st = api.ThrottleState{}
	e.req(http.MethodGet, path, "").ok(http.StatusOK).decode(&st)
	if st.Paused || st.Target != "orders" {
		t.Fatalf("no pause yet: %+v", st)
	}

	before := time.Now()
	st = api.ThrottleState{}
	e.req(http.MethodPost, path, `{"for": "30m", "reason": "release freeze"}`).ok(http.StatusOK).decode(&st)
	if !st.Paused || st.Reason != "release freeze" || st.Until == nil || st.Until.Before(before.Add(29*time.Minute)) || st.Until.After(time.Now().Add(31*time.Minute)) {
		t.Fatalf("set: %+v", st)
	}
	ev := e.lastEvent()
	if ev.Action != "target.throttle_set" || ev.Outcome != audit.OutcomeSuccess || ev.Resource != "target/orders" || !strings.Contains(ev.Detail, "release freeze") {
		t.Fatalf("audit event %+v", ev)
	}
	until, reason, ok, err := store.ManualPause(context.Background(), "orders", time.Now())
	if err != nil || !ok || reason != "release freeze" || !until.Equal(*st.Until) {
		t.Fatalf("store: %v %q %v %v (want until %v)", until, reason, ok, err, st.Until)
	}
	st = api.ThrottleState{}
	e.req(http.MethodGet, path, "").ok(http.StatusOK).decode(&st)
	if !st.Paused || st.CreatedBy == "" {
		t.Fatalf("get: %+v", st)
	}

	at := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
	st = api.ThrottleState{}
	e.req(http.MethodPost, path, `{"until": "`+at.Format(time.RFC3339)+`"}`).ok(http.StatusOK).decode(&st)
	if !st.Until.Equal(at) || st.Reason != "" {
		t.Fatalf("until replaces: %+v", st)
	}

	st = api.ThrottleState{}
	e.req(http.MethodDelete, path, "").ok(http.StatusOK).decode(&st)
	if st.Paused || st.Cleared == nil || !*st.Cleared {
		t.Fatalf("clear: %+v", st)
	}
	if ev := e.lastEvent(); ev.Action != "target.throttle_clear" || ev.Outcome != audit.OutcomeSuccess {
		t.Fatalf("audit event %+v", ev)
	}
	if _, _, ok, _ := store.ManualPause(context.Background(), "orders", time.Now()); ok {
		t.Fatal("pause still stored after DELETE")
	}
	st = api.ThrottleState{}
	e.req(http.MethodDelete, path, "").ok(http.StatusOK).decode(&st)
	if *st.Cleared {
		t.Fatal("second DELETE cleared something")
	}

	// An expired pause is not in force.
	if err := store.SetTargetThrottle(context.Background(), history.TargetThrottle{Target: "orders", Until: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	st = api.ThrottleState{}
	e.req(http.MethodGet, path, "").ok(http.StatusOK).decode(&st)
	if st.Paused {
		t.Fatalf("expired pause reads as in force: %+v", st)
	}

	// Bad input.
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	for body, field := range map[string]string{
		`{}`:              "until",
		`{"reason": "x"}`: "until",
		`{"for": "30m", "until": "` + at.Format(time.RFC3339) + `"}`: "for",
		`{"for": "soon"}`:                "for",
		`{"for": "-5m"}`:                 "for",
		`{"for": "0s"}`:                  "for",
		`{"for": "800h"}`:                "for",
		`{"until": "tomorrow"}`:          "until",
		`{"until": "` + past + `"}`:      "until",
		`{"for": "1h", "colour": "red"}`: "colour",
		`{"for": "1h", "reason": "` + strings.Repeat("x", 501) + `"}`: "reason",
	} {
		r := e.req(http.MethodPost, path, body)
		if r.Status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", body, r.Status, r.Body)
			continue
		}
		if p := r.problem(http.StatusBadRequest, r.problemCode()); p.Field != field {
			t.Errorf("%s: field %q, want %q (%s)", body, p.Field, field, p.Detail)
		}
	}
	e.req(http.MethodPost, path, "").problem(http.StatusBadRequest, api.CodeValidationFailed)
	e.req(http.MethodPost, path, `[1]`).problem(http.StatusBadRequest, api.CodeInvalidJSON)
	if ev := e.lastEvent(); ev.Action != "target.throttle_set" || ev.Outcome != audit.OutcomeFailure {
		t.Fatalf("refused write audit event %+v", ev)
	}
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		e.req(m, base+"/targets/nope/throttle", `{"for": "1h"}`).problem(http.StatusNotFound, api.CodeNotFound)
	}

	// Without a history store (the fake service) the endpoints say so.
	newEnv(t).req(http.MethodGet, path, "").problem(http.StatusServiceUnavailable, api.CodeUnavailable)
}

// problemCode returns the code of a problem answer.
func (r *response) problemCode() string {
	var p api.Problem
	r.decode(&p)
	return p.Code
}
