package job

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/domain"
)

// A dry run's plan and a budgeted run's units left, as the API answers
// them (details decoded from JSON), in the terminal view and the lines.
func TestWritePlans(t *testing.T) {
	var j domain.Job
	raw := `{"id": "w-1", "dry_run": true, "state": "succeeded", "tasks": [
		{"task_type": "mvcc_cleanup", "state": "succeeded", "details": {"dry_run": true, "plan": [
			{"object": "public.orders", "statement": "VACUUM (ANALYZE) \"public\".\"orders\"", "reason": "12000 dead tuples >= 1000",
			 "figures": {"dead_tuples": 12000}}]}},
		{"task_type": "index_rebuild", "state": "succeeded", "details": {"units_left": ["public.events", "public.users"], "stopped_by": "window_closed"}},
		{"task_type": "quota_check", "state": "skipped", "result_summary": "skipped: dry run: quota_check only reads the target, so there is nothing to plan"}]}`
	if err := json.Unmarshal([]byte(raw), &j); err != nil {
		t.Fatal(err)
	}
	var tty bytes.Buffer
	writeJob(&tty, j, true)
	for _, want := range []string{
		"(dry run: plans only, nothing executed)",
		"Plan of mvcc_cleanup: 1 statement(s), none executed",
		`public.orders  VACUUM (ANALYZE) "public"."orders"  12000 dead tuples >= 1000`,
		"Left for the next run by index_rebuild (window_closed): public.events, public.users",
	} {
		if !strings.Contains(tty.String(), want) {
			t.Errorf("terminal view lacks %q:\n%s", want, tty.String())
		}
	}
	var lines bytes.Buffer
	WritePlans(&lines, j)
	want := "plan\tmvcc_cleanup\tpublic.orders\tVACUUM (ANALYZE) \"public\".\"orders\"\t12000 dead tuples >= 1000\n" +
		"left\tindex_rebuild\tpublic.events\twindow_closed\nleft\tindex_rebuild\tpublic.users\twindow_closed\n"
	if lines.String() != want {
		t.Fatalf("lines:\n%q\nwant\n%q", lines.String(), want)
	}
}
