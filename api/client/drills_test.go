package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/auth"
	"github.com/themis-maintenance/themis/internal/config"
)

func TestDrills(t *testing.T) {
	c, srv := newClient(t, api.Options{})
	ctx := context.Background()
	d, err := c.StartDrill(ctx, "")
	if err != nil || d.Target != "orders" || d.State != domain.DrillRunning {
		t.Fatalf("start %+v %v", d, err)
	}
	if _, err := c.ApproveDrill(ctx, d.ID, domain.ApprovalStart, "too early"); !client.IsConflict(err) {
		t.Fatalf("approve before awaiting: %v", err)
	}
	d, err = c.GetDrill(ctx, d.ID)
	if err != nil || d.Awaiting != domain.ApprovalStart {
		t.Fatalf("get %+v %v", d, err)
	}
	d, err = c.ApproveDrill(ctx, d.ID, domain.ApprovalStart, "CHG-42")
	if err != nil || d.Awaiting != domain.ApprovalComplete || d.Approvals[0].Comment != "CHG-42" {
		t.Fatalf("approve %+v %v", d, err)
	}
	d, err = c.RejectDrill(ctx, d.ID, domain.ApprovalComplete, "RPO looks off")
	if err != nil || d.State != domain.DrillRejected {
		t.Fatalf("reject %+v %v", d, err)
	}
	if _, err := c.AbortDrill(ctx, d.ID, "late"); !client.IsConflict(err) {
		t.Fatalf("abort finished: %v", err)
	}
	d2, _ := c.StartDrill(ctx, "analytics")
	d2, err = c.AbortDrill(ctx, d2.ID, "")
	if err != nil || d2.State != domain.DrillAborted {
		t.Fatalf("abort %+v %v", d2, err)
	}
	list, err := c.ListDrills(ctx, 1)
	if err != nil || len(list) != 1 || list[0].ID != d2.ID {
		t.Fatalf("list %+v %v", list, err)
	}
	if list, _ := c.ListDrills(ctx, 0); len(list) != 2 {
		t.Fatalf("list all %d", len(list))
	}
	if _, err := c.StartDrill(ctx, "nowhere"); err == nil {
		t.Fatal("unknown target accepted")
	}
	if _, err := c.GetDrill(ctx, "drill-none-1"); !client.IsNotFound(err) {
		t.Fatalf("unknown drill: %v", err)
	}
	for _, ex := range srv.Handler.Exchanges() {
		if ex.RequestErr != nil && ex.Status < 400 {
			t.Errorf("client sent a request outside the document: %s %s: %v", ex.Method, ex.Path, ex.RequestErr)
		}
	}
}

func TestInfo(t *testing.T) {
	c, srv := newClient(t, api.Options{})
	ctx := context.Background()
	h, err := c.Health(ctx)
	if err != nil || h.OverallStatus != api.HealthOK || len(h.Modules) == 0 {
		t.Fatalf("health %+v %v", h, err)
	}
	tt, err := c.TaskTypes(ctx)
	if err != nil || len(tt) != len(domain.AllTaskTypes()) {
		t.Fatalf("task types %d %v", len(tt), err)
	}
	targets, err := c.Targets(ctx)
	if err != nil || len(targets) != 2 || !targets[0].Default {
		t.Fatalf("targets %+v %v", targets, err)
	}
	srv.Fake.FailWith(apitest.MethodHealth, domain.ErrUnavailable)
	if _, err := c.Health(ctx); err == nil {
		t.Fatal("health while failing")
	}
}

func TestAudit(t *testing.T) {
	const admin, reader = "thm_client-admin-0123456789abcdefghijklmnopqrstu", "thm_client-read-0123456789abcdefghijklmnopqrstuv"
	authn, err := auth.New(config.AuthConfig{Tokens: []config.TokenConfig{
		{Name: "ops", SHA256: auth.Digest(admin), Scopes: []string{api.ScopeAdmin}},
		{Name: "dash", SHA256: auth.Digest(reader), Scopes: []string{api.ScopeRead}},
	}}, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := apitest.NewServer(t, nil, api.Options{Authenticator: authn.Middleware()})
	srv.Fake.SeedDefaults()
	ctx := context.Background()
	c, _ := client.New(srv.URL, admin, srv.Client())
	r, _ := client.New(srv.URL, reader, srv.Client())
	if _, err := r.PatchSchedule(ctx, "daily-maintenance", map[string]any{"enabled": true}); !client.IsForbidden(err) {
		t.Fatalf("reader patched: %v", err)
	}
	if _, err := c.PatchSchedule(ctx, "daily-maintenance", map[string]any{"enabled": true}); err != nil {
		t.Fatal(err)
	}
	list, err := c.Audit(ctx, time.Time{}, 0)
	if err != nil || list.Count != 2 || list.Events[0].Outcome != "denied" || list.Events[0].Principal != "dash" ||
		list.Events[1].Action != "schedule.enable" || list.Events[1].Principal != "ops" {
		t.Fatalf("audit %+v %v", list, err)
	}
	// Since the enable: it and the audit.read of the call above.
	list, err = c.Audit(ctx, list.Events[1].Time, 5)
	if err != nil || list.Count != 2 || list.Events[0].Action != "schedule.enable" || list.Events[1].Action != "audit.read" {
		t.Fatalf("since %+v %v", list, err)
	}
	if _, err := r.Audit(ctx, time.Time{}, 0); !client.IsForbidden(err) {
		t.Fatalf("reader read the audit log: %v", err)
	}
	anon, _ := client.New(srv.URL, "", srv.Client())
	if _, err := anon.Health(ctx); !client.IsUnauthorized(err) {
		t.Fatalf("anonymous: %v", err)
	}
}
