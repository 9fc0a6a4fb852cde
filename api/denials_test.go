package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/internal/auth"
)

// Refused requests from one client address: the first AuditEach of an
// interval are audited one by one, the rest summed up in one
// auth.denied_summary event when the interval ends; beyond the budget
// they are answered 429; a valid token from the same address still passes.
func TestDenialsBudgetAndAuditSummary(t *testing.T) {
	authn, err := auth.New(authConfig(), auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, api.Options{Authenticator: authn.Middleware(),
		Denials: api.DenialLimit{PerMinute: 1, Burst: 5, AuditInterval: 300 * time.Millisecond, AuditEach: 2}})
	e.seedNightly()
	statuses := map[int]int{}
	for range 12 {
		r := e.req(http.MethodGet, base+"/schedules", "", bearer(unknownTokn)...)
		statuses[r.Status]++
		if r.Status == http.StatusTooManyRequests {
			p := r.problem(http.StatusTooManyRequests, api.CodeTooManyRequests)
			if r.Header.Get("Retry-After") == "" || p.Detail == "" {
				t.Fatalf("429 without Retry-After: %+v", p)
			}
		}
	}
	if statuses[401] != 5 || statuses[429] != 7 {
		t.Fatalf("statuses %v, want 5 × 401 then 7 × 429", statuses)
	}
	// Valid credentials are never limited.
	e.req(http.MethodGet, base+"/schedules", "", bearer(readToken)...).ok(http.StatusOK)
	if n := len(e.events()); n != 2 {
		t.Fatalf("%d events during the interval, want the first 2 denials", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(e.events()) < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	ev := e.events()
	if len(ev) != 3 {
		t.Fatalf("events %+v", ev)
	}
	s := ev[2]
	if s.Action != "auth.denied_summary" || s.Outcome != "denied" || !strings.HasPrefix(s.Detail, "10 more denied request(s)") ||
		!strings.Contains(s.Detail, "7 answered 429") || !strings.HasPrefix(s.Resource, "client/") {
		t.Fatalf("summary %+v", s)
	}
	// A new interval audits its first denials again.
	e.req(http.MethodGet, base+"/schedules", "", bearer(unknownTokn)...)
	if n := len(e.events()); n != 4 {
		t.Fatalf("%d events", n)
	}
}
