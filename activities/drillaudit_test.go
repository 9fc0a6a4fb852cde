package activities

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/audit"
)

// Decisions sent outside the API reach the audit log once each, with their
// channel, however often the report is saved; the API's own are left to
// the gateway.
func TestDrillDecisionsAuditedOnce(t *testing.T) {
	sink, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	a := &Activities{Audit: sink}
	report := domain.Drill{ID: "drill-demo-1", StartedAtMs: 1_000, Approvals: []domain.Approval{
		{Step: "start", Decision: "approved", Approver: "ui-user", AtMs: 2_000, Channel: domain.ChannelSignal, Comment: "CHG-1"},
	}, Refused: []domain.Approval{
		{Step: "complete", Decision: "approved", Approver: "early", AtMs: 1_500, Channel: domain.ChannelSignal, Reason: "nothing awaited"},
		{Step: "start", Decision: "approved", Approver: "api-user", AtMs: 2_100, Channel: domain.ChannelAPI, Reason: "already decided"},
	}}
	ctx := context.Background()
	for range 2 {
		if err := a.auditDrillDecisions(ctx, report); err != nil {
			t.Fatal(err)
		}
	}
	report.Approvals = append(report.Approvals, domain.Approval{Step: "complete", Decision: "rejected", Approver: "cli-user", AtMs: 3_000, Channel: domain.ChannelUpdate})
	if err := a.auditDrillDecisions(ctx, report); err != nil {
		t.Fatal(err)
	}
	page, err := sink.Read(ctx, time.UnixMilli(report.StartedAtMs), 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range page.Events {
		got = append(got, e.Principal+" "+e.Action+" "+e.Outcome+" "+e.Detail)
	}
	want := []string{
		"early drill.approve failure channel=signal step=complete decision=approved refused: nothing awaited",
		"ui-user drill.approve success channel=signal step=start decision=approved comment: CHG-1",
		"cli-user drill.reject success channel=update step=complete decision=rejected",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
