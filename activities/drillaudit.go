package activities

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/audit"
)

// auditDrillDecisions appends to the audit log each decision of report that
// did not come through the API (the gateway audits those itself): approvals
// and refusals sent as signals or Updates from the Temporal UI or CLI.
// Each is identified by its place in the report (decisions are only ever
// appended), and one already in the log is not written again, so a report
// saved at every step, or an activity retried, audits each decision once.
func (a *Activities) auditDrillDecisions(ctx context.Context, report domain.Drill) error {
	if a.Audit == nil {
		return nil
	}
	type decision struct {
		id string
		a  domain.Approval
	}
	var todo []decision
	for i, ap := range report.Approvals {
		if ap.Channel != domain.ChannelAPI && ap.Channel != "" {
			todo = append(todo, decision{fmt.Sprintf("%s/decision/%d", report.ID, i), ap})
		}
	}
	for i, ap := range report.Refused {
		if ap.Channel != domain.ChannelAPI && ap.Channel != "" {
			todo = append(todo, decision{fmt.Sprintf("%s/refused/%d", report.ID, i), ap})
		}
	}
	if len(todo) == 0 {
		return nil
	}
	sort.SliceStable(todo, func(i, j int) bool { return todo[i].a.AtMs < todo[j].a.AtMs })
	since := time.UnixMilli(report.StartedAtMs)
	page, err := a.Audit.Read(ctx, since, 0)
	if err != nil {
		return fmt.Errorf("read the audit log: %w", err)
	}
	seen := map[string]bool{}
	for _, e := range page.Events {
		seen[e.RequestID] = true
	}
	for _, d := range todo {
		if seen[d.id] {
			continue
		}
		action, outcome := "drill.reject", "success"
		if d.a.Decision == "approved" {
			action = "drill.approve"
		}
		detail := fmt.Sprintf("channel=%s step=%s decision=%s", d.a.Channel, d.a.Step, d.a.Decision)
		if d.a.Reason != "" {
			outcome = "failure"
			detail += " refused: " + d.a.Reason
		}
		if d.a.Comment != "" {
			detail += " comment: " + d.a.Comment
		}
		if err := a.Audit.Record(ctx, audit.Event{
			Time: time.UnixMilli(d.a.AtMs).UTC(), RequestID: d.id, Principal: d.a.Approver,
			Action: action, Resource: "drill/" + report.ID, Outcome: outcome, Detail: detail,
		}); err != nil {
			return fmt.Errorf("record drill decision %s: %w", d.id, err)
		}
	}
	return nil
}
