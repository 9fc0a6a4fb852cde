package cluster

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/themis-maintenance/themis/testsuite/pgcluster"
)

// seedTables creates n tables mk_001..mk_n in the target database, each
// with rows rows, a primary key and one more index, half the rows deleted
// (dead tuples), autovacuum off; it waits until the statistics show the
// dead tuples of every table.
func seedTables(t *testing.T, c *Cluster, n, rows int) []string {
	t.Helper()
	start := time.Now()
	ctx := context.Background()
	c.Primary.Exec(t, PGDatabase, fmt.Sprintf(`DO $$
BEGIN
  FOR i IN 1..%d LOOP
    EXECUTE format('CREATE TABLE public.%%I (id bigint PRIMARY KEY, k integer NOT NULL, note text NOT NULL) WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false)', 'mk_' || lpad(i::text, 3, '0'));
    EXECUTE format('CREATE INDEX %%I ON public.%%I (k)', 'mk_' || lpad(i::text, 3, '0') || '_k', 'mk_' || lpad(i::text, 3, '0'));
    EXECUTE format('INSERT INTO public.%%I SELECT g, (g * 7919) %%%% 5000, md5(g::text) FROM generate_series(1, %d) g', 'mk_' || lpad(i::text, 3, '0'));
    EXECUTE format('DELETE FROM public.%%I WHERE id %%%% 2 = 0', 'mk_' || lpad(i::text, 3, '0'));
  END LOOP;
END $$`, n, rows))
	var names []string
	for i := 1; i <= n; i++ {
		names = append(names, fmt.Sprintf("mk_%03d", i))
	}
	conn := c.Primary.Conn(t, PGDatabase)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var without int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_user_tables WHERE relname LIKE 'mk\_%' AND coalesce(n_dead_tup, 0) = 0`).Scan(&without); err != nil {
			t.Fatal(err)
		}
		var have int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_user_tables WHERE relname LIKE 'mk\_%'`).Scan(&have); err != nil {
			t.Fatal(err)
		}
		if have == n && without == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("seed: statistics show %d of %d tables, %d without dead tuples after 30s", have, n, without)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("seeded %d tables × %d rows (half deleted) in %s", n, rows, time.Since(start).Round(time.Millisecond))
	return names
}

// vacuumCounts returns vacuum_count (manual VACUUMs completed) of each mk_
// table.
func vacuumCounts(t *testing.T, c *Cluster) map[string]int64 {
	t.Helper()
	conn, err := c.Primary.Connect(context.Background(), PGDatabase)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT relname, vacuum_count FROM pg_stat_user_tables WHERE relname LIKE 'mk\_%'`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct {
		n string
		v int64
	}, error) {
		var x struct {
			n string
			v int64
		}
		err := r.Scan(&x.n, &x.v)
		return x, err
	})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	for _, x := range out {
		m[x.n] = x.v
	}
	return m
}

// session is one non-idle backend of a Themis task.
type session struct {
	pid     int
	appName string
	state   string
	query   string
}

// appNameRE parses application_name themis:<job>:<task>:a<attempt>.
var appNameRE = regexp.MustCompile(`^themis:(.+):([a-z_]+):a(\d+)$`)

func parseAppName(s string) (job, task string, attempt int, ok bool) {
	m := appNameRE.FindStringSubmatch(s)
	if m == nil {
		return "", "", 0, false
	}
	n, _ := strconv.Atoi(m[3])
	return m[1], m[2], n, true
}

// themisSessions lists the backends on the target database whose
// application_name starts with "themis:"; busyOnly leaves out idle ones.
func themisSessions(ctx context.Context, conn *pgx.Conn, busyOnly bool) ([]session, error) {
	q := `SELECT pid, application_name, coalesce(state, ''), left(coalesce(query, ''), 120)
		FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'themis:%' AND pid <> pg_backend_pid()`
	if busyOnly {
		q += ` AND state IS DISTINCT FROM 'idle'`
	}
	rows, err := conn.Query(ctx, q, PGDatabase)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (session, error) {
		var s session
		err := r.Scan(&s.pid, &s.appName, &s.state, &s.query)
		return s, err
	})
}

// ccnewIndexes lists the leftovers of interrupted REINDEX CONCURRENTLY.
func ccnewIndexes(t *testing.T, p *pgcluster.Cluster) []string {
	t.Helper()
	conn := p.Conn(t, PGDatabase)
	rows, err := conn.Query(context.Background(), `SELECT relname FROM pg_class WHERE relname LIKE '%\_ccnew%'`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(context.Background())
	return names
}

// slowVacuum throttles VACUUM on the target database (cost-based delay) so
// that a job over the seeded tables runs long enough to act on mid-way.
func slowVacuum(t *testing.T, c *Cluster) {
	t.Helper()
	c.Primary.Exec(t, "postgres", `ALTER DATABASE `+PGDatabase+` SET vacuum_cost_delay = '2ms'`)
	c.Primary.Exec(t, "postgres", `ALTER DATABASE `+PGDatabase+` SET vacuum_cost_limit = 50`)
}
