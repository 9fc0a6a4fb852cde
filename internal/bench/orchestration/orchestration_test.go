package orchestration

import (
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/themis-maintenance/themis/activities"
)

func TestQuantileNearestRank(t *testing.T) {
	var d durations
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if got := d.p50(); got != 50*time.Millisecond {
		t.Errorf("p50 = %s, want 50ms", got)
	}
	if got := d.p99(); got != 99*time.Millisecond {
		t.Errorf("p99 = %s, want 99ms", got)
	}
	if got := (durations{7 * time.Millisecond}).p99(); got != 7*time.Millisecond {
		t.Errorf("p99 of one = %s", got)
	}
	if got := (durations{}).p50(); got != 0 {
		t.Errorf("p50 of none = %s", got)
	}
}

func TestParseFrontendCounts(t *testing.T) {
	text := `# HELP service_requests service_requests counter
# TYPE service_requests counter
service_requests{namespace="default",operation="ListWorkflowExecutions",service_name="frontend"} 12
service_requests{namespace="default",operation="DescribeSchedule",service_name="frontend"} 4000
service_requests{namespace="default",operation="GetTaskQueueUserData",service_name="matching"} 9
service_requests{namespace="_unknown_",operation="GetSystemInfo",service_name="frontend"} 1
service_requests_total{namespace="default",operation="ListWorkflowExecutions",service_name="frontend"} 77
`
	c, err := parseFrontendCounts(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if c["ListWorkflowExecutions"] != 12 || c["DescribeSchedule"] != 4000 || len(c) != 2 {
		t.Fatalf("counts = %v", c)
	}
	if got := c.sum(visibilityOps); got != 12 {
		t.Errorf("visibility sum = %v", got)
	}
	if d := c.minus(frontendCounts{"DescribeSchedule": 1000}); d["DescribeSchedule"] != 3000 || d["ListWorkflowExecutions"] != 12 {
		t.Errorf("minus = %v", d)
	}
	if _, err := parseFrontendCounts(strings.NewReader("go_goroutines 5\n")); err == nil {
		t.Error("no frontend sample: want an error")
	}
}

func TestParseStatus(t *testing.T) {
	m, err := parseStatus([]byte("Name:\tthemisctl\nVmHWM:\t  81920 kB\nVmRSS:\t   40960 kB\nThreads:\t12\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS != 40<<20 || m.HWM != 80<<20 {
		t.Errorf("memory = %+v", m)
	}
	if _, err := parseStatus([]byte("Name:\tx\n")); err == nil {
		t.Error("no VmRSS: want an error")
	}
}

// TestTimingsOf: the overhead of a task activity is scheduled → completed
// minus the work its output reports; a no-op activity's is all of it.
func TestTimingsOf(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) *timestamppb.Timestamp {
		return timestamppb.New(t0.Add(time.Duration(ms) * time.Millisecond))
	}
	out, err := converter.GetDefaultDataConverter().ToPayloads(activities.TaskOutput{
		Summary: "ok", StartedAtMs: t0.Add(30 * time.Millisecond).UnixMilli(), FinishedAtMs: t0.Add(130 * time.Millisecond).UnixMilli(),
	})
	if err != nil {
		t.Fatal(err)
	}
	events := []*historypb.HistoryEvent{
		{EventId: 1, EventType: enums.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, EventTime: at(0)},
		{EventId: 5, EventType: enums.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, EventTime: at(10),
			Attributes: &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{ActivityType: &common.ActivityType{Name: "quota_check"}}}},
		{EventId: 6, EventType: enums.EVENT_TYPE_ACTIVITY_TASK_STARTED, EventTime: at(25),
			Attributes: &historypb.HistoryEvent_ActivityTaskStartedEventAttributes{ActivityTaskStartedEventAttributes: &historypb.ActivityTaskStartedEventAttributes{ScheduledEventId: 5}}},
		{EventId: 7, EventType: enums.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, EventTime: at(150),
			Attributes: &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{ActivityTaskCompletedEventAttributes: &historypb.ActivityTaskCompletedEventAttributes{ScheduledEventId: 5, Result: out}}},
		{EventId: 11, EventType: enums.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, EventTime: at(160),
			Attributes: &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{ActivityType: &common.ActivityType{Name: "record_job"}}}},
		{EventId: 13, EventType: enums.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, EventTime: at(180),
			Attributes: &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{ActivityTaskCompletedEventAttributes: &historypb.ActivityTaskCompletedEventAttributes{ScheduledEventId: 11}}},
		{EventId: 20, EventType: enums.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, EventTime: at(200)},
	}
	h, err := timingsOf(events)
	if err != nil {
		t.Fatal(err)
	}
	if h.StartToClose != 200*time.Millisecond {
		t.Errorf("start → close = %s", h.StartToClose)
	}
	if len(h.Activities) != 2 {
		t.Fatalf("activities = %+v", h.Activities)
	}
	task, rec := h.Activities[0], h.Activities[1]
	if !task.IsTask || task.Work != 100*time.Millisecond || task.Overhead() != 40*time.Millisecond || task.Started.Sub(task.Scheduled) != 15*time.Millisecond {
		t.Errorf("task = %+v, overhead %s", task, task.Overhead())
	}
	if rec.IsTask || rec.Overhead() != 20*time.Millisecond {
		t.Errorf("record_job = %+v", rec)
	}
	if _, err := timingsOf(events[:3]); err == nil {
		t.Error("no close event: want an error")
	}
}
