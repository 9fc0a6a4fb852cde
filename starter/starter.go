package starter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver/commandlog"
	"github.com/themis-maintenance/themis/health"
	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/internal/history"
	"github.com/themis-maintenance/themis/internal/telemetry"
	"github.com/themis-maintenance/themis/workflows"
)

// Version is reported by GET /status.
var Version = "0.1.0"

// Options configure the service.
type Options struct {
	Namespace string
	TaskQueue string
	// Address is shown in /status only.
	Address string
	// UIURL is the Temporal UI base URL for job links; optional.
	UIURL string
	// Targets are the configured targets (names, drivers and groups are
	// used: a grouped target's jobs and drills start on its group's task
	// queue, see queues.go).
	Targets       []config.TargetInfo
	DefaultTarget string
	Logger        *slog.Logger
	Metrics       *telemetry.Metrics
	// HeartbeatTimeout overrides the task heartbeat timeout of manual runs;
	// optional, defaulted to workflows.DefaultHeartbeatTimeout.
	HeartbeatTimeout time.Duration
	// Now is the clock; optional, defaulted to time.Now.
	Now func() time.Time
	// Drill approval timeouts. Optional: defaulted to 24 h and 4 h.
	DrillStartApprovalTimeout    time.Duration
	DrillCompleteApprovalTimeout time.Duration
	// Drill canary writer rate and run time. Optional: defaulted to 1 s
	// and 10 s.
	DrillCanaryInterval time.Duration
	DrillCanaryDuration time.Duration
	// Capabilities maps task types to the drivers supporting them (for
	// GET /task-types, and to refuse a schedule with a task its target's
	// driver cannot run). Optional: without it every task is accepted.
	Capabilities map[domain.TaskType][]string
	// WriteConfirmTimeout bounds how long a schedule update waits for the
	// Temporal Schedule to show it; optional, defaulted to 10 s.
	WriteConfirmTimeout time.Duration
	// HealthProbes are this service's health probes (the daemon registers
	// the built-in ones: temporal, workers, jobs, history, audit,
	// target:<name>); the probes of health.Default run beside them.
	// Optional: New makes an empty registry.
	HealthProbes *health.Registry
	// HealthProbeInterval is the time between two rounds of probes and
	// HealthProbeTimeout bounds one probe call; optional, defaulted to
	// health.DefaultInterval (30 s) and health.DefaultTimeout (10 s).
	HealthProbeInterval time.Duration
	HealthProbeTimeout  time.Duration
	// ReadModelInterval is the time between two refreshes of the lists
	// served from memory (schedules, jobs, drills, status); optional,
	// defaulted to DefaultReadModelInterval. Refreshes run in the
	// background under RunReadModel, or on demand when it does not run.
	ReadModelInterval time.Duration
	// Records serves finished jobs and drill reports from the history
	// store once Temporal's retention has removed their workflows.
	// Optional: without it such a job or drill is not found.
	Records Records
}

// Records is the history store's view of finished jobs and drills.
type Records interface {
	// JobRecord returns a finished job; the error wraps domain.ErrNotFound
	// when the store has none.
	JobRecord(ctx context.Context, jobID string) (domain.Job, error)
	// ListJobRecords returns stored job records, newest start first; GET
	// /jobs pages past the read model's window through it.
	ListJobRecords(ctx context.Context, f history.JobRecordFilter) ([]domain.Job, error)
	// TargetDrillReports returns a target's newest drill reports first.
	TargetDrillReports(ctx context.Context, target string, limit int) ([]history.DrillReportEntry, error)
	// DrillReport returns a drill's last saved report; the error wraps
	// domain.ErrNotFound when the store has none.
	DrillReport(ctx context.Context, id string) (history.DrillReportEntry, error)
	// ListCommands returns command-log rows, newest first.
	ListCommands(ctx context.Context, f history.CommandFilter) ([]commandlog.Command, error)
}

// Service implements api.Service on a Temporal client.
//
// It keeps no lock of its own: several API processes may serve one
// namespace. Schedule names and "defaults installed" are claims in Temporal
// (claims.go), and updates are conditional on the Schedule's conflict token
// (schedules.go).
type Service struct {
	c       client.Client
	opts    Options
	targets map[string]bool
	// drivers maps target names to their driver names.
	drivers map[string]string
	// queues maps target names to their task queues (queues.go), and
	// allQueues lists every queue of this deployment, the base first.
	queues map[string]string
	// blackouts are the configured targets' blackouts (blackouts.go).
	blackouts map[string][]domain.Blackout
	allQueues []string

	// probes are this service's health probes; health runs them and
	// those of health.Default, and caches their signals for GET /health.
	probes *health.Registry
	health *health.Runner
	// rm serves the lists from memory (readmodel.go).
	rm *readModel
}

var _ api.Service = (*Service)(nil)

// New returns a service using c.
func New(c client.Client, opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Namespace == "" {
		opts.Namespace = config.DefaultNamespace
	}
	if opts.TaskQueue == "" {
		opts.TaskQueue = config.DefaultTaskQueue
	}
	if opts.HealthProbes == nil {
		opts.HealthProbes = health.NewRegistry()
	}
	s := &Service{c: c, opts: opts, targets: map[string]bool{}, drivers: map[string]string{}, probes: opts.HealthProbes,
		queues: map[string]string{}, allQueues: []string{opts.TaskQueue}, blackouts: map[string][]domain.Blackout{}}
	s.health = health.NewRunner(health.RunnerOptions{
		Interval: opts.HealthProbeInterval, Timeout: opts.HealthProbeTimeout, Logger: opts.Logger, Now: opts.Now,
	}, opts.HealthProbes, health.Default)
	s.rm = newReadModel(s, opts.ReadModelInterval)
	for _, t := range opts.Targets {
		s.targets[t.Name] = true
		s.drivers[t.Name] = t.Driver
		s.blackouts[t.Name] = t.Blackouts
		q := config.GroupQueue(opts.TaskQueue, t.Group)
		s.queues[t.Name] = q
		if !slices.Contains(s.allQueues, q) {
			s.allQueues = append(s.allQueues, q)
		}
	}
	slices.Sort(s.allQueues[1:])
	return s
}

// TargetKnown reports whether a target is configured.
func (s *Service) TargetKnown(name string) bool { return s.targets[name] }

// DefaultTarget is the target of schedules that name none.
func (s *Service) DefaultTarget() string { return s.opts.DefaultTarget }

// Ready reports whether Temporal answers.
func (s *Service) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := s.c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return fmt.Errorf("temporal health: %w: %v", domain.ErrUnavailable, err)
	}
	return nil
}

// RunReadModel refreshes the lists served from memory every
// ReadModelInterval until ctx ends (the API process runs it).
func (s *Service) RunReadModel(ctx context.Context) { s.rm.Run(ctx) }

// Status summarises schedules and active jobs from the read model.
func (s *Service) Status(ctx context.Context) (api.Status, error) {
	st := api.Status{
		Service: "themis-maintenance", Version: Version, TemporalAddress: s.opts.Address,
		Namespace: s.opts.Namespace, TaskQueue: s.opts.TaskQueue, TemporalUIURL: s.opts.UIURL,
		DefaultTarget: s.opts.DefaultTarget,
	}
	if err := s.rm.fresh(ctx); err != nil {
		return st, err
	}
	scheds, asOf, _ := s.rm.scheduleList()
	st.Schedules, st.AsOfMs = len(scheds), asOf.UnixMilli()
	for _, sc := range scheds {
		if sc.Enabled {
			st.EnabledSchedules++
		}
	}
	jobs, _, _ := s.rm.jobList()
	for _, j := range jobs {
		if !j.State.Terminal() {
			st.ActiveJobs++
		}
	}
	return st, nil
}

// EnsureSearchAttributes registers the custom search attributes jobs and
// schedules are filtered by; already-registered attributes are fine.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	want := map[string]enums.IndexedValueType{}
	for _, k := range []string{workflows.ScheduleIDKey.GetName(), workflows.TargetKey.GetName(), workflows.JobStateKey.GetName(), workflows.ScheduleNameKey.GetName()} {
		want[k] = enums.INDEXED_VALUE_TYPE_KEYWORD
	}
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enums.IndexedValueType{}
	for k, v := range want {
		if _, ok := have.GetCustomAttributes()[k]; !ok {
			missing[k] = v
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: namespace, SearchAttributes: missing,
	})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return nil
}

// uiURL links a job to its page in the Temporal UI.
func (s *Service) uiURL(workflowID, runID string) string {
	if s.opts.UIURL == "" {
		return ""
	}
	u := fmt.Sprintf("%s/namespaces/%s/workflows/%s", s.opts.UIURL, url.PathEscape(s.opts.Namespace), url.PathEscape(workflowID))
	if runID != "" {
		u += "/" + url.PathEscape(runID) + "/history"
	}
	return u
}

// mapErr turns Temporal service errors into domain errors.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var nf *serviceerror.NotFound
	var exists *serviceerror.AlreadyExists
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	switch {
	case errors.As(err, &nf):
		return fmt.Errorf("%w: %v", domain.ErrNotFound, err)
	case errors.As(err, &exists), errors.As(err, &started):
		return fmt.Errorf("%w: %v", domain.ErrConflict, err)
	case errors.As(err, &unavailable), errors.As(err, &deadline), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: temporal: %v", domain.ErrUnavailable, err)
	}
	return err
}
