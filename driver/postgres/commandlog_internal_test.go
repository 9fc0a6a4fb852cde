package postgres

import "testing"

func TestStatementObject(t *testing.T) {
	for sql, want := range map[string]string{
		`VACUUM (ANALYZE) "public"."t1"`:                                 "public.t1",
		`VACUUM (FREEZE, ANALYZE) "public"."Big ""q"" Table"`:            `public.Big "q" Table`,
		`ANALYZE public.orders`:                                          "public.orders",
		`VACUUM "s".t`:                                                   "s.t",
		`REINDEX INDEX CONCURRENTLY "public"."t1_pkey"`:                  "public.t1_pkey",
		`REINDEX TABLE CONCURRENTLY "app"."events"`:                      "app.events",
		`CREATE INDEX CONCURRENTLY IF NOT EXISTS ix ON ONLY "s"."t" (a)`: "s.t",
		`CREATE UNIQUE INDEX ON s.t (a)`:                                 "s.t",
		`DROP INDEX CONCURRENTLY IF EXISTS "s"."ccnew"`:                  "s.ccnew",
		`CREATE EXTENSION IF NOT EXISTS "amcheck" SCHEMA "themis_ext"`:   "amcheck",
		`-- comment
VACUUM x`: "x",
		`SELECT bt_index_check(index => $1::oid::regclass)`: "",
		`SELECT relname FROM pg_class`:                      "",
		``:                                                  "",
		`VACUUM`:                                            "",
		`VACUUM (ANALYZE`:                                   "",
	} {
		if got := statementObject(sql); got != want {
			t.Errorf("statementObject(%q) = %q, want %q", sql, got, want)
		}
	}
}
