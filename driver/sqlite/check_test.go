package sqlite

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

func TestChecksPassOnHealthyDatabase(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	res := h.run(domain.TaskConsistencyCheck, nil)
	if res.Details["tables_checked"] != 4 {
		t.Errorf("tables_checked = %v, want 4", res.Details["tables_checked"])
	}
	if _, ok := res.Details["ignored_options"]; ok {
		t.Errorf("ignored_options without options: %v", res.Details["ignored_options"])
	}
	res = h.run(domain.TaskFullCheckDB, domain.TaskOptions{"statement_timeout_ms": int64(60_000)})
	if !strings.Contains(res.Summary, "integrity_check ok") {
		t.Errorf("summary = %q", res.Summary)
	}
	// parallelism is a PostgreSQL option; SQLite says it did not use it.
	for _, task := range []domain.TaskType{domain.TaskConsistencyCheck, domain.TaskFullCheckDB} {
		res = h.run(task, domain.TaskOptions{"parallelism": int64(4)})
		if ign, _ := res.Details["ignored_options"].(map[string]string); ign["parallelism"] == "" {
			t.Errorf("%s: ignored_options = %v, want parallelism explained", task, res.Details["ignored_options"])
		}
	}
}

// corruptIndexPage overwrites the cell area of a leaf page of index in the
// database file at path.
func corruptIndexPage(t *testing.T, path, index string) {
	t.Helper()
	db := rawDB(t, path)
	var pageno, pgsize int64
	if err := db.QueryRow(`SELECT pageno, pgsize FROM dbstat WHERE name = ? AND pagetype = 'leaf' LIMIT 1 OFFSET 1`, index).Scan(&pageno, &pgsize); err != nil {
		t.Fatal(err)
	}
	db.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := make([]byte, 200)
	for i := range junk {
		junk[i] = 0x5a
	}
	if _, err := f.WriteAt(junk, pageno*pgsize-400); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptIndexFailsChecks(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	corruptIndexPage(t, h.target.DSN, "idx_orders_customer")
	for _, task := range []domain.TaskType{domain.TaskFullCheckDB, domain.TaskConsistencyCheck} {
		_, err := h.d.Run(context.Background(), h.req(task, nil, nil))
		if permanentKind(err) != driver.KindIntegrityViolation {
			t.Fatalf("%s: err = %v, want IntegrityViolation", task, err)
		}
		if !strings.Contains(err.Error(), "idx_orders_customer") {
			t.Errorf("%s: error does not name the damaged index: %v", task, err)
		}
	}
	// A healthy copy of the same database still passes.
	healthy := newHarness(t)
	healthy.run(domain.TaskFullCheckDB, nil)
}

func TestForeignKeyViolation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	db := rawDB(t, h.target.DSN)
	// foreign_keys is off on this connection, as in many applications.
	if _, err := db.Exec(`INSERT INTO order_items (order_id, sku, quantity, price_cents) VALUES (999999, 'SKU-X', 1, 100)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, task := range []domain.TaskType{domain.TaskConsistencyCheck, domain.TaskFullCheckDB} {
		_, err := h.d.Run(context.Background(), h.req(task, nil, nil))
		if permanentKind(err) != driver.KindIntegrityViolation {
			t.Fatalf("%s: err = %v, want IntegrityViolation", task, err)
		}
		for _, name := range []string{"order_items", "orders", "foreign key"} {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("%s: error does not mention %q: %v", task, name, err)
			}
		}
	}
}

func TestConsistencyCheckResumes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cp, _ := json.Marshal(loopCheckpoint[tableCheck]{
		Done:    []string{"customers", "events"},
		Results: map[string]tableCheck{"customers": {}, "events": {}},
	})
	hb := &heartbeats{}
	req := h.req(domain.TaskConsistencyCheck, nil, hb)
	req.Checkpoint = cp
	res, err := h.d.Run(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Details["resumed"] != true {
		t.Error("details do not say the check resumed")
	}
	notes := strings.Join(hb.notes(), "\n")
	for _, skipped := range []string{"quick_check customers", "quick_check events"} {
		if strings.Contains(notes, skipped) {
			t.Errorf("checkpointed table re-checked: %q in\n%s", skipped, notes)
		}
	}
	for _, checked := range []string{"quick_check orders", "quick_check order_items"} {
		if !strings.Contains(notes, checked) {
			t.Errorf("%q missing from heartbeats:\n%s", checked, notes)
		}
	}
}

func TestRelationsIn(t *testing.T) {
	t.Parallel()
	roots := map[int64]string{6: "idx_orders_customer", 2: "customers"}
	got := relationsIn([]string{
		"Tree 6 page 61: free space corruption",
		"row 51 missing from index idx_a",
		"wrong # of entries in index idx_b",
		"NULL value in orders.status",
		"CHECK constraint failed in order_items",
		"Tree 99 page 3 cell 0: invalid page number",
		"Page 12: never used",
	}, roots)
	want := "b-tree rooted at page 99,idx_a,idx_b,idx_orders_customer,order_items,orders"
	if strings.Join(got, ",") != want {
		t.Errorf("relationsIn = %v, want %s", got, want)
	}
}
