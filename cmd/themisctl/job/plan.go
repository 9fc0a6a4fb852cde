package job

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// taskPlan decodes the plan a dry run left in a task's details (nil when
// there is none).
func taskPlan(t domain.TaskRun) []driver.PlannedStatement {
	raw, ok := t.Details["plan"]
	if !ok {
		return nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil
	}
	var plan []driver.PlannedStatement
	if json.Unmarshal(b, &plan) != nil {
		return nil
	}
	return plan
}

// unitsLeft returns the units a task left for the next run and why.
func unitsLeft(t domain.TaskRun) (units []string, why string) {
	raw, ok := t.Details["units_left"].([]any)
	if !ok {
		return nil, ""
	}
	for _, u := range raw {
		if s, ok := u.(string); ok {
			units = append(units, s)
		}
	}
	why, _ = t.Details["stopped_by"].(string)
	return units, why
}

// WritePlans prints what a dry run would execute and what a budgeted run
// left, in the line format of writePlans without a terminal (`schedule run
// --dry-run` prints it after watching the job).
func WritePlans(w io.Writer, j domain.Job) { writePlans(w, j, false) }

// writePlans prints, after a job's tasks, what a dry run would execute and
// what a budgeted run left for the next one; it returns the lines written.
// Without tty each statement is a line "plan<TAB>task<TAB>object<TAB>
// statement<TAB>reason" and each unit left "left<TAB>task<TAB>unit<TAB>why".
func writePlans(w io.Writer, j domain.Job, tty bool) int {
	lines := 0
	for _, t := range j.Tasks {
		plan := taskPlan(t)
		units, why := unitsLeft(t)
		if !tty {
			for _, p := range plan {
				fmt.Fprintf(w, "plan\t%s\t%s\t%s\t%s\n", t.TaskType, p.Object, oneLine(p.Statement), oneLine(p.Reason))
				lines++
			}
			for _, u := range units {
				fmt.Fprintf(w, "left\t%s\t%s\t%s\n", t.TaskType, u, why)
				lines++
			}
			continue
		}
		if j.DryRun && t.State == domain.StateSucceeded {
			fmt.Fprintf(w, "\n  Plan of %s: %d statement(s), none executed\n", t.TaskType, len(plan))
			lines += 2
			if len(plan) > 0 {
				tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "    OBJECT\tSTATEMENT\tREASON")
				lines++
				for _, p := range plan {
					fmt.Fprintf(tw, "    %s\t%s\t%s\n", firstNonEmpty(p.Object, "(database)"), cmdutil.Clip(oneLine(p.Statement), 70), cmdutil.Clip(oneLine(p.Reason), 60))
					lines++
				}
				_ = tw.Flush()
			}
		}
		if len(units) > 0 {
			fmt.Fprintf(w, "\n  Left for the next run by %s (%s): %s\n", t.TaskType, why, cmdutil.Clip(strings.Join(units, ", "), 200))
			lines += 2
		}
	}
	return lines
}
