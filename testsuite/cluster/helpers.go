package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiclient "github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/workflows"
)

// StoredSchedule is a schedule as Temporal holds it, read without the API.
type StoredSchedule struct {
	Spec   domain.ScheduleSpec
	Paused bool
	Note   string
	Crons  []string
}

// TemporalSchedule describes schedule id on the dev server and decodes the
// spec from the Schedule's workflow action: the stored truth, not what an
// API process answers.
func (c *Cluster) TemporalSchedule(id string) (StoredSchedule, error) {
	// A describe is a query of the schedule's own workflow: right after a
	// dev server restart on a loaded machine one may time out while the
	// server reloads them, so it is asked again (for up to 2 minutes).
	var desc *client.ScheduleDescription
	var err error
	for deadline := time.Now().Add(2 * time.Minute); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		desc, err = c.Temporal.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
		cancel()
		if err == nil || !errors.Is(err, context.DeadlineExceeded) && status.Code(err) != codes.DeadlineExceeded && status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return StoredSchedule{}, fmt.Errorf("describe schedule %s: %w", id, err)
	}
	act, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok || len(act.Args) != 1 {
		return StoredSchedule{}, fmt.Errorf("schedule %s: action is %T with %d args, want one maintenance input", id, desc.Schedule.Action, len(act.Args))
	}
	var in workflows.MaintenanceInput
	p, ok := act.Args[0].(*commonpb.Payload)
	if !ok {
		return StoredSchedule{}, fmt.Errorf("schedule %s: argument is %T, want a payload", id, act.Args[0])
	}
	if err := converter.GetDefaultDataConverter().FromPayload(p, &in); err != nil {
		return StoredSchedule{}, fmt.Errorf("decode schedule %s: %w", id, err)
	}
	out := StoredSchedule{Spec: in.Spec}
	if st := desc.Schedule.State; st != nil {
		out.Paused, out.Note = st.Paused, st.Note
	}
	if sp := desc.Schedule.Spec; sp != nil {
		out.Crons = sp.CronExpressions
	}
	return out, nil
}

// WaitJob polls job id through API process api until cond holds, and fails
// the test after timeout with the last state seen.
func (c *Cluster) WaitJob(api int, id string, timeout time.Duration, cond func(domain.Job) bool) domain.Job {
	c.T.Helper()
	deadline := time.Now().Add(timeout)
	var last domain.Job
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		job, err := c.APIs[api].GetJob(ctx, id)
		cancel()
		if err == nil {
			last = job
			if cond(job) {
				return job
			}
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	c.T.Fatalf("job %s: condition not met within %s; last state %q, tasks %s (last error %v)", id, timeout, last.State, TaskLine(last), lastErr)
	return last
}

// Terminal is a WaitJob condition: the job has ended.
func Terminal(j domain.Job) bool { return j.State.Terminal() }

// TaskLine summarises a job's tasks on one line.
func TaskLine(j domain.Job) string {
	s := ""
	for i, t := range j.Tasks {
		if i > 0 {
			s += "; "
		}
		s += fmt.Sprintf("%s=%s(a%d %.0f%%)", t.TaskType, t.State, t.Attempt, t.ProgressPct)
		if t.ErrorMessage != "" {
			s += " err=" + t.ErrorMessage
		}
	}
	return s
}

// CreateSchedule creates a disabled schedule through API process api and
// deletes it at the end of the test.
func (c *Cluster) CreateSchedule(api int, in apiclient.ScheduleInput) domain.Schedule {
	c.T.Helper()
	if in.Enabled == nil {
		f := false
		in.Enabled = &f
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sc, err := c.APIs[api].CreateSchedule(ctx, in)
	if err != nil {
		c.T.Fatalf("create schedule %q through api-%d: %v", in.Name, api+1, err)
	}
	c.T.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.APIs[0].DeleteSchedule(ctx, sc.ID)
	})
	return sc
}

// PendingActivity describes the running activity of workflow id: its
// type, attempt and the identity of the worker that last took it.
func (c *Cluster) PendingActivity(id string) (activityType string, attempt int32, identity string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	desc, err := c.Temporal.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return "", 0, "", err
	}
	for _, pa := range desc.GetPendingActivities() {
		return pa.GetActivityType().GetName(), pa.GetAttempt(), pa.GetLastWorkerIdentity(), nil
	}
	return "", 0, "", nil
}
