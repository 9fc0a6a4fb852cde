package postgres

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/commandlog"
)

// Dry runs (driver.Request.DryRun). A planned task reads the catalog
// exactly as a real run does — the same listings, thresholds, estimates and
// exact measurements (pgstatindex and pgstattuple_approx read under ACCESS
// SHARE) — and chooses the same units; the session layer then records
// every statement that would change the target (session.exec and
// session.query: VACUUM, ANALYZE, REINDEX, DROP INDEX, CREATE EXTENSION,
// the amcheck calls) in the plan instead of sending it, and the reads a
// real run does after each unit (dead tuples, sizes after) are skipped.
// Units are planned one after the other, unpaced, in the order a real run
// starts them.

// plannedTasks are the task types the driver can plan: its heavy tasks.
var plannedTasks = map[domain.TaskType]bool{
	domain.TaskMVCCCleanup:        true,
	domain.TaskStatisticsUpdate:   true,
	domain.TaskStorageCompaction:  true,
	domain.TaskIndexRebuild:       true,
	domain.TaskIndexReorganize:    true,
	domain.TaskConsistencyCheck:   true,
	domain.TaskFullCheckDB:        true,
	domain.TaskVectorReindex:      true,
	domain.TaskOrphanCleanup:      true,
	domain.TaskBackupVerification: true,
}

var _ driver.DryRunner = (*Driver)(nil)

// PlansDryRun implements driver.DryRunner.
func (d *Driver) PlansDryRun(task domain.TaskType) bool { return plannedTasks[task] }

// skippedDryRun is the Skipped of a unit's result in a dry run: planned,
// not done.
const skippedDryRun = "dry run: planned, not executed"

// planNoteKey carries why the statements of one unit are planned.
type planNoteKey struct{}

type planNote struct {
	reason  string
	figures map[string]any
}

// withPlanNote returns ctx saying why the statements run with it are due
// and with what figures (what crossed which threshold), for the plan of a
// dry run. A real run ignores it.
func withPlanNote(ctx context.Context, reason string, figures map[string]any) context.Context {
	return context.WithValue(ctx, planNoteKey{}, planNote{reason: reason, figures: figures})
}

// planner is a run's plan: the statements a dry run would have sent.
type planner struct {
	mu    sync.Mutex
	stmts []driver.PlannedStatement
	// extensions are those a real run would create first (name →
	// schema).
	extensions map[string]string
}

// extensionPlanned returns the schema a dry run planned to create
// extension name in.
func (r *run) extensionPlanned(name string) (string, bool) {
	r.plan.mu.Lock()
	defer r.plan.mu.Unlock()
	s, ok := r.plan.extensions[name]
	return s, ok
}

// dry reports whether the run is a dry run.
func (r *run) dry() bool { return r.req.DryRun }

// planStatement records sql as sent by a dry run: its object as the
// command log names it (commandlog.WithObject, else the statement's own),
// the reason and figures of ctx (withPlanNote) and its predicted duration.
func (r *run) planStatement(ctx context.Context, sql string) {
	obj := commandlog.ObjectFrom(ctx)
	if obj == "" {
		obj = statementObject(sql)
	}
	n, _ := ctx.Value(planNoteKey{}).(planNote)
	ps := driver.PlannedStatement{Object: obj, Statement: sql, Reason: n.reason, Figures: n.figures}
	if d, ok := r.unitDurations(ctx)[obj]; ok {
		ps.PredictedMs = d.Milliseconds()
	}
	r.plan.mu.Lock()
	r.plan.stmts = append(r.plan.stmts, ps)
	r.plan.mu.Unlock()
}

// plannedStatements returns the plan so far.
func (r *run) plannedStatements() []driver.PlannedStatement {
	r.plan.mu.Lock()
	defer r.plan.mu.Unlock()
	return slices.Clone(r.plan.stmts)
}

// drySummary is the summary of a dry run: "dry run: would VACUUM 12 of 50
// tables".
func drySummary(verb string, n, total int, noun string) string {
	return fmt.Sprintf("dry run: would %s %d of %d %s", verb, n, total, noun)
}

// dryResult completes a dry run's result: the plan, a summary saying so
// (tasks that have their own say "dry run: ..." already) and its figures.
func (r *run) dryResult(res *driver.Result) {
	res.Plan = r.plannedStatements()
	if res.Plan == nil {
		res.Plan = []driver.PlannedStatement{}
	}
	if len(res.Summary) < 8 || res.Summary[:8] != "dry run:" {
		res.Summary = fmt.Sprintf("dry run: would run %d statement(s); %s", len(res.Plan), res.Summary)
	}
	res.Details["dry_run"] = true
	res.Details["planned_statements"] = len(res.Plan)
	var predicted int64
	for _, p := range res.Plan {
		predicted += p.PredictedMs
	}
	if predicted > 0 {
		res.Details["predicted_ms"] = predicted
	}
}
