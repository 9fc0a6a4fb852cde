package orchestration

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	apiclient "github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/workflows"
)

// createConcurrency is the number of schedule creations in flight through
// the API (each one lists every schedule to check the name is free, so
// more in flight only contend).
const createConcurrency = 4

func lightName(i int) string { return fmt.Sprintf("bench-light-%04d", i) }

// createSchedules creates disabled light schedules 1..n through the API,
// createConcurrency at a time, until timeout; a creation answered with a
// server error is tried again (3 times in all). It returns those created
// and the number of failed creations.
func createSchedules(ctx context.Context, c *apiclient.Client, n int, timeout time.Duration, progress func(int)) ([]lightSchedule, int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		mu     sync.Mutex
		out    []lightSchedule
		failed int
		first  error
		next   atomic.Int64
	)
	disabled := false
	var wg sync.WaitGroup
	for range createConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1))
				if i > n {
					return
				}
				var sc domain.Schedule
				var err error
				for attempt := 0; attempt < 3 && ctx.Err() == nil; attempt++ {
					sc, err = c.CreateSchedule(ctx, apiclient.ScheduleInput{
						Name: lightName(i), Target: demoTarget, Tasks: []domain.TaskType{lightTask}, Enabled: &disabled,
					})
					var ae *apiclient.APIError
					if err == nil || !asAPIError(err, &ae) || ae.Status < 500 {
						break
					}
				}
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				if err != nil {
					failed++
					if first == nil {
						first = fmt.Errorf("create schedule %s: %w", lightName(i), err)
					}
				} else {
					out = append(out, lightSchedule{ID: sc.ID, Spec: sc.ScheduleSpec})
					if len(out)%50 == 0 {
						progress(len(out))
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(out) == 0 {
		if first == nil {
			first = fmt.Errorf("no schedule created within %s", timeout)
		}
		return nil, failed, first
	}
	return out, failed, nil
}

// copySchedules creates n light schedules (bench-copy-0001...) directly as Temporal
// Schedules, shaped as the API creates them (package starter: the action
// carrying the entry as the job's input and as memo, the search attributes,
// paused), from an entry the API created: GET /schedules and the jobs'
// reads cannot tell them apart. It fills the list to its size when creating
// every schedule through the API does not fit the bench's time.
func copySchedules(ctx context.Context, c client.Client, tmpl lightSchedule, n int) ([]lightSchedule, error) {
	meta := map[string]any{"created_at_ms": time.Now().UnixMilli(), "created_by": "bench", "updated_at_ms": time.Now().UnixMilli(), "updated_by": "bench"}
	var (
		mu    sync.Mutex
		out   []lightSchedule
		first error
		next  atomic.Int64
	)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1))
				if i > n {
					return
				}
				spec := tmpl.Spec
				spec.Name = fmt.Sprintf("bench-copy-%04d", i)
				spec.Enabled = false
				id := domain.Slug(spec.Name)
				_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
					ID:      id,
					Spec:    client.ScheduleSpec{CronExpressions: []string{spec.CronExpression}, TimeZoneName: spec.Timezone},
					Overlap: enums.SCHEDULE_OVERLAP_POLICY_SKIP,
					Paused:  true,
					Note:    "created by bench",
					Action: &client.ScheduleWorkflowAction{
						ID:        workflows.ScheduledJobIDPrefix(id),
						Workflow:  workflows.MaintenanceWorkflowName,
						TaskQueue: taskQueue,
						Args: []any{workflows.MaintenanceInput{
							ScheduleID: id, ScheduleName: spec.Name, Spec: spec, TriggeredBy: "schedule",
						}},
						Memo: map[string]any{"themis_meta": meta, "schedule": spec},
						TypedSearchAttributes: temporal.NewSearchAttributes(
							workflows.ScheduleIDKey.ValueSet(id), workflows.TargetKey.ValueSet(spec.Target)),
						StaticSummary: spec.Name + " on " + spec.Target,
					},
					TypedSearchAttributes: temporal.NewSearchAttributes(
						workflows.TargetKey.ValueSet(spec.Target), workflows.ScheduleNameKey.ValueSet(spec.Name)),
				})
				mu.Lock()
				if err != nil {
					if first == nil {
						first = fmt.Errorf("create Temporal schedule %s: %w", id, err)
					}
				} else {
					out = append(out, lightSchedule{ID: id, Spec: spec})
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out, first
}

func asAPIError(err error, target **apiclient.APIError) bool { return errors.As(err, target) }
