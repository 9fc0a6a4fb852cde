package starter

import (
	"slices"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	schedulepb "go.temporal.io/api/schedule/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/workflows"
)

func testService(caps map[domain.TaskType][]string) *Service {
	return New(client.Client(nil), Options{
		Targets:      []config.TargetInfo{{Name: "demo", Driver: "sqlite"}, {Name: "orders", Driver: "postgres"}},
		Capabilities: caps,
	})
}

func TestWriteChainIsBounded(t *testing.T) {
	var m meta
	for i := range 3 * maxWriteIDs {
		m.Writes = m.withWrite(strings.Repeat("x", i%5) + string(rune('a'+i%26)))
	}
	if len(m.Writes) != maxWriteIDs {
		t.Fatalf("%d write ids kept", len(m.Writes))
	}
	prev := slices.Clone(m.Writes)
	next := m.withWrite("new")
	if next[len(next)-1] != "new" || !slices.Equal(next[:len(next)-1], prev[1:]) || !slices.Equal(m.Writes, prev) {
		t.Fatalf("withWrite: %v from %v (and must not modify it)", next, prev)
	}
}

// The service refuses with its own capabilities and its targets' drivers.
func TestCheckSupportedUsesTargetDriver(t *testing.T) {
	s := testService(map[domain.TaskType][]string{
		domain.TaskQuotaCheck:        {"postgres", "sqlite"},
		domain.TaskReplicaValidation: {"postgres"},
	})
	spec := domain.ScheduleSpec{Target: "demo", Tasks: []domain.TaskType{domain.TaskQuotaCheck, domain.TaskReplicaValidation}}
	err := s.checkSupported(spec)
	ve, ok := err.(*domain.ValidationError)
	if !ok || ve.Field != "tasks[1]" || !strings.Contains(ve.Message, "replica_validation") || !strings.Contains(ve.Message, "sqlite") {
		t.Fatalf("got %v", err)
	}
	spec.Target = "orders"
	if err := s.checkSupported(spec); err != nil {
		t.Fatalf("postgres runs both: %v", err)
	}
	if err := testService(nil).checkSupported(domain.ScheduleSpec{Target: "demo", Tasks: []domain.TaskType{domain.TaskReplicaValidation}}); err != nil {
		t.Fatalf("without capabilities every task is accepted: %v", err)
	}
}

// The update carries the conflict token it was computed from, the paused
// state and the new entry, and keeps what it does not own.
func TestUpdateRequestCarriesStateAndToken(t *testing.T) {
	s := testService(nil)
	dc := converter.GetDefaultDataConverter()
	oldSpec := domain.ScheduleSpec{Name: "Old", Target: "demo", Frequency: domain.FrequencyDaily, CronExpression: "0 2 * * *",
		Timezone: "UTC", Tasks: []domain.TaskType{domain.TaskQuotaCheck}}
	in, err := dc.ToPayloads(workflows.MaintenanceInput{ScheduleID: "old", Spec: oldSpec})
	if err != nil {
		t.Fatal(err)
	}
	desc := &workflowservice.DescribeScheduleResponse{
		ConflictToken: []byte{0, 0, 0, 0, 0, 0, 0, 7},
		Schedule: &schedulepb.Schedule{
			Action: &schedulepb.ScheduleAction{Action: &schedulepb.ScheduleAction_StartWorkflow{StartWorkflow: &workflowpb.NewWorkflowExecutionInfo{
				WorkflowId: "old-run", WorkflowType: &commonpb.WorkflowType{Name: workflows.MaintenanceWorkflowName}, Input: in,
			}}},
			State: &schedulepb.ScheduleState{Paused: true, Notes: "created by x"},
		},
	}
	next := oldSpec
	next.Name, next.Enabled, next.Description = "New", true, "d"
	m := meta{CreatedBy: "x", UpdatedBy: "bob", Writes: []string{"w1"}}
	req, err := s.updateRequest("old", desc, next, false, m)
	if err != nil {
		t.Fatal(err)
	}
	if string(req.GetConflictToken()) != string(desc.ConflictToken) || req.GetScheduleId() != "old" {
		t.Errorf("token %v id %s", req.GetConflictToken(), req.GetScheduleId())
	}
	if req.GetSchedule().GetState().GetPaused() || req.GetSchedule().GetState().GetNotes() != "enabled by bob" {
		t.Errorf("state %v", req.GetSchedule().GetState())
	}
	if desc.Schedule.State.Paused != true {
		t.Error("the description was modified")
	}
	if got := req.GetSchedule().GetSpec().GetCronString(); len(got) != 1 || got[0] != "0 2 * * *" {
		t.Errorf("cron %v", got)
	}
	if req.GetSchedule().GetAction().GetStartWorkflow().GetWorkflowId() != "old-run" {
		t.Error("the action's workflow id is kept")
	}
	got, gm, err := decodeEntry("old", &workflowservice.DescribeScheduleResponse{Schedule: req.GetSchedule()})
	if err != nil || got.Spec.Name != "New" || got.Spec.Description != "d" || !slices.Equal(gm.Writes, []string{"w1"}) || gm.UpdatedBy != "bob" {
		t.Fatalf("decoded %+v %+v %v", got, gm, err)
	}
	if _, ok := req.GetSearchAttributes().GetIndexedFields()[workflows.ScheduleNameKey.GetName()]; !ok {
		t.Error("the name search attribute is written")
	}
}
