package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// TestExtensionsOnlyWhenAllowed: with allow_create_extension off, a routine
// task creates nothing in the database: consistency_check fails for good
// naming amcheck, fragmentation_monitoring falls back to the estimate and
// performance_analysis leaves top statements out, each saying which
// extension is missing and what it did instead. Allowed, amcheck is
// created in the configured schema and the check runs.
func TestExtensionsOnlyWhenAllowed(t *testing.T) {
	t.Parallel()
	db := newDB(t, shared)
	shared.Exec(t, db, `CREATE TABLE public.t (id int PRIMARY KEY, v text)`)
	shared.Exec(t, db, `INSERT INTO public.t SELECT g, repeat('x', 100) FROM generate_series(1, 2000) g`)
	e := newEnv(t, shared, db)
	e.target.AllowCreateExtension = false
	ctx := context.Background()

	_, _, err := e.run(ctx, domain.TaskConsistencyCheck, nil, nil)
	if permanentKind(err) != driver.KindMisconfigured || !strings.Contains(err.Error(), "extension amcheck") ||
		!strings.Contains(err.Error(), "allow_create_extension") {
		t.Fatalf("consistency_check: %v, want a permanent Misconfigured error naming amcheck and allow_create_extension", err)
	}
	res := e.mustRun(domain.TaskFragmentationMonitoring, domain.TaskOptions{"min_size_bytes": int64(0)})
	d := detailsJSON(t, res)
	reason, _ := d["method_reason"].(string)
	if d["method"] != "statistics_estimate" || !strings.Contains(reason, "extension pgstattuple") || !strings.Contains(reason, "estimate") {
		t.Errorf("fragmentation_monitoring: method %v, reason %q", d["method"], reason)
	}
	res = e.mustRun(domain.TaskPerformanceAnalysis, nil)
	d = detailsJSON(t, res)
	if s, _ := d["pg_stat_statements"].(string); !strings.Contains(s, "extension pg_stat_statements") || !strings.Contains(s, "left out") {
		t.Errorf("performance_analysis pg_stat_statements: %v", d["pg_stat_statements"])
	}
	if n := pgcluster.Scalar[int64](t, shared, db, `SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql'`); n != 0 {
		t.Fatalf("%d extensions created although creation is not allowed", n)
	}
	if n := pgcluster.Scalar[int64](t, shared, db, `SELECT count(*) FROM pg_namespace WHERE nspname = 'themis_ext'`); n != 0 {
		t.Fatal("schema themis_ext created although creation is not allowed")
	}

	e.target.AllowCreateExtension = true
	e.target.ExtensionSchema = "maint ext"
	e.mustRun(domain.TaskConsistencyCheck, nil)
	if s := pgcluster.Scalar[string](t, shared, db, `SELECT n.nspname::text FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace WHERE x.extname = 'amcheck'`); s != "maint ext" {
		t.Fatalf("amcheck created in schema %q, want the configured one", s)
	}
}
