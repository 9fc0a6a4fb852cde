package starter

import (
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	schedulepb "go.temporal.io/api/schedule/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/workflows"
)

func groupedService() *Service {
	return New(client.Client(nil), Options{
		TaskQueue: "tq",
		Targets: []config.TargetInfo{
			{Name: "plain", Driver: "sqlite"},
			{Name: "b1", Driver: "sqlite", Group: "zone-b"},
			{Name: "a1", Driver: "sqlite", Group: "zone-a"},
			{Name: "a2", Driver: "sqlite", Group: "zone-a"},
		},
	})
}

func TestTargetQueues(t *testing.T) {
	s := groupedService()
	for target, want := range map[string]string{"plain": "tq", "a1": "tq-group-zone-a", "a2": "tq-group-zone-a", "b1": "tq-group-zone-b", "gone": "tq"} {
		if got := s.queueOf(target); got != want {
			t.Errorf("queueOf(%s) = %s, want %s", target, got, want)
		}
	}
	if got, want := s.queueFilter(), "TaskQueue IN ('tq', 'tq-group-zone-a', 'tq-group-zone-b')"; got != want {
		t.Errorf("queueFilter = %s, want %s", got, want)
	}
	// Without groups the filter is what it always was.
	if got := testService(nil).queueFilter(); got != "TaskQueue = '"+config.DefaultTaskQueue+"'" {
		t.Errorf("ungrouped queueFilter = %s", got)
	}
	if got := quoteVisibility("a'b"); got != `a\'b` {
		t.Errorf("quoteVisibility = %s", got)
	}

	// A Schedule's action starts on its target's queue, on create and on
	// every update (a schedule moved to a target of another group follows).
	spec := domain.ScheduleSpec{Name: "n", Target: "a1", Frequency: domain.FrequencyDaily, CronExpression: "0 2 * * *", Timezone: "UTC",
		Tasks: []domain.TaskType{domain.TaskQuotaCheck}}
	if q := s.action("sid", spec, meta{}).TaskQueue; q != "tq-group-zone-a" {
		t.Errorf("create action on %s", q)
	}
	in, err := converter.GetDefaultDataConverter().ToPayloads(workflows.MaintenanceInput{ScheduleID: "sid", Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	desc := &workflowservice.DescribeScheduleResponse{Schedule: &schedulepb.Schedule{
		Action: &schedulepb.ScheduleAction{Action: &schedulepb.ScheduleAction_StartWorkflow{StartWorkflow: &workflowpb.NewWorkflowExecutionInfo{
			WorkflowId: "sid-run", WorkflowType: &commonpb.WorkflowType{Name: workflows.MaintenanceWorkflowName}, Input: in,
			TaskQueue: &taskqueuepb.TaskQueue{Name: "tq"},
		}}},
	}}
	for target, want := range map[string]string{"a1": "tq-group-zone-a", "b1": "tq-group-zone-b", "plain": "tq"} {
		next := spec
		next.Target = target
		req, err := s.updateRequest("sid", desc, next, false, meta{})
		if err != nil {
			t.Fatal(err)
		}
		if got := req.GetSchedule().GetAction().GetStartWorkflow().GetTaskQueue().GetName(); got != want {
			t.Errorf("update to target %s: action on %s, want %s", target, got, want)
		}
	}
	if desc.Schedule.GetAction().GetStartWorkflow().GetTaskQueue().GetName() != "tq" {
		t.Error("the description was modified")
	}
}
