package sqlite

import (
	"context"
	"fmt"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/driver/commandlog"
)

// Dry runs (driver.Request.DryRun): the task opens the target read-only,
// reads what a real run reads (pragmas, dbstat, the WAL's size, the backup
// directory) and decides as a real run does, but every statement that would
// change the database or do the task's heavy work goes through
// run.maintain, which in a dry run appends it to Result.Plan instead of
// executing it. A read-only connection cannot write even by mistake, and
// closing it does not checkpoint the WAL as closing the last read-write
// connection does.

// planned are the task types a dry run plans: those that write to the
// database or its files, and the integrity checks (their heavy work is the
// check itself). Others only read the target and are not run dry.
var planned = map[domain.TaskType]bool{
	domain.TaskMVCCCleanup:        true,
	domain.TaskStorageCompaction:  true,
	domain.TaskStatisticsUpdate:   true,
	domain.TaskIndexRebuild:       true,
	domain.TaskIndexReorganize:    true,
	domain.TaskConsistencyCheck:   true,
	domain.TaskFullCheckDB:        true,
	domain.TaskBackupVerification: true,
	domain.TaskOrphanCleanup:      true,
}

var _ driver.DryRunner = (*Driver)(nil)

// PlansDryRun implements driver.DryRunner.
func (d *Driver) PlansDryRun(task domain.TaskType) bool { return planned[task] }

// maintain runs one statement that changes the target or does the task's
// heavy work: st.Statement is the text sent, st.Object the table or index
// it works on ("" for the whole database), which the command log records.
// In a dry run it executes nothing and appends st to the plan, with its
// predicted duration when the history knows one.
func (r *run) maintain(ctx context.Context, st driver.PlannedStatement, exec func(ctx context.Context, stmt string) error) error {
	if r.req.DryRun {
		if st.Object != "" && r.budget != nil {
			st.PredictedMs = r.budget.predicted[st.Object].Milliseconds()
		}
		r.plan = append(r.plan, st)
		return nil
	}
	return exec(commandlog.WithObject(ctx, st.Object), st.Statement)
}

// dryRunSummary is the summary of a dry run: "dry run: would …".
func dryRunSummary(format string, args ...any) string {
	return "dry run: would " + fmt.Sprintf(format, args...)
}

// whole runs fn, the statements of a task whose one unit is the whole
// database, within the budget: stopped is true when the budget kept it from
// starting or it was interrupted at the hard stop (r.budget.notStarted is
// then the task's result).
func (r *run) whole(ctx context.Context, fn func(ctx context.Context) error) (stopped bool, err error) {
	if !r.budget.admitWhole() {
		return true, nil
	}
	unitCtx, cancel := r.budget.unitContext(ctx)
	defer cancel()
	if err := fn(unitCtx); err != nil {
		if r.budget.hardStopped(ctx, unitCtx, wholeDatabase, []string{wholeDatabase}) {
			return true, nil
		}
		return false, err
	}
	return false, nil
}
