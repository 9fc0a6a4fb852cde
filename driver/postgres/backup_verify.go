package postgres

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/driver"
)

// verifyRestored checks the restored database: amcheck (bt_index_check with
// heapallindexed on every btree index, verify_heapam on every table where
// available) and row counts against the source's.
func verifyRestored(ctx context.Context, r *run, dsn string, meta backupMeta) (map[string]any, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, driver.Permanent(driver.KindVerificationFailed, fmt.Errorf("connect to the restored database %s: %w", meta.Database, err))
	}
	defer conn.Close(context.Background())
	report := map[string]any{}
	checked, problems, err := amcheckRestored(ctx, conn)
	if err != nil {
		return nil, err
	}
	if checked.Unavailable != "" {
		report["amcheck"] = checked.Unavailable
	}
	report["indexes_checked"] = checked.Indexes
	report["tables_heap_checked"] = checked.Tables
	r.progress(90, "comparing row counts", nil)

	names := make([]string, 0, len(meta.SourceCounts))
	for k := range meta.SourceCounts {
		names = append(names, k)
	}
	sort.Strings(names)
	var differences []string
	compared := 0
	for _, name := range names {
		want := meta.SourceCounts[name]
		schema, table, _ := strings.Cut(name, ".")
		var got int64
		err := conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, table}.Sanitize()).Scan(&got)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			problems = append(problems, fmt.Sprintf("table %s: missing from the restore (%s)", name, pgMessage(err)))
			continue
		}
		compared++
		diff := got - want
		if diff < 0 {
			diff = -diff
		}
		if diff == 0 {
			continue
		}
		msg := fmt.Sprintf("table %s: %d rows restored, %d in the source", name, got, want)
		switch {
		case !meta.ExactCounts:
			differences = append(differences, msg+" (changed during the backup; standby source)")
		case diff <= meta.Tolerance[name]:
			differences = append(differences, msg+fmt.Sprintf(" (within the %d rows changed during the backup)", meta.Tolerance[name]))
		default:
			problems = append(problems, msg)
		}
	}
	report["tables_compared"] = compared
	report["exact_counts"] = meta.ExactCounts
	if len(differences) > 0 {
		report["count_differences_explained"] = differences
	}
	if len(problems) > 0 {
		report["problems"] = problems
		sort.Strings(problems)
		return nil, driver.Permanentf(driver.KindVerificationFailed, "backup of %s does not verify: %d problem(s): %s",
			meta.Database, len(problems), joinNames(problems, 5))
	}
	return report, nil
}
