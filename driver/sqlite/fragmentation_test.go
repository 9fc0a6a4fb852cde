package sqlite

import (
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// fragOf returns the measured relations of a fragmentation result by name.
func fragOf(t *testing.T, details map[string]any) map[string]relFrag {
	t.Helper()
	list, ok := details["relations"].([]relFrag)
	if !ok {
		t.Fatalf("relations detail is %T", details["relations"])
	}
	out := map[string]relFrag{}
	for _, f := range list {
		out[f.Name] = f
	}
	return out
}

func TestFragmentationFoundAfterDeletesAndLowerAfterVacuum(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	res := h.run(domain.TaskFragmentationMonitoring, nil)
	before := fragOf(t, res.Details)
	events, ok := before["events"]
	if !ok {
		t.Fatalf("events not reported: %v", res.Details["relations"])
	}
	// Every other event was deleted: about half of its pages is unused.
	if events.FragmentationPct < 30 || !events.High {
		t.Errorf("events fragmentation = %+v, want HIGH over 30 %%", events)
	}
	if minSize := (driver.Request{Task: domain.TaskFragmentationMonitoring}).OptionsOn(Name).Int("min_size_bytes"); minSize != 64<<10 || events.TotalBytes < minSize || events.LeafPages == 0 || events.UnusedBytes == 0 {
		t.Errorf("events measurement incomplete: %+v", events)
	}
	if _, ok := before["idx_events_subject"]; !ok {
		t.Error("indexes not reported by fragmentation_monitoring")
	}
	if _, ok := before["sqlite_sequence"]; ok {
		t.Error("a relation under min_size_bytes was reported")
	}
	var high []string
	for _, a := range res.Alerts {
		if a.Level == domain.AlertHigh {
			high = append(high, a.Subject)
		}
	}
	if !strings.Contains(strings.Join(high, ","), "events") {
		t.Errorf("no HIGH alert for events: %v", res.Alerts)
	}
	if !strings.Contains(res.Summary, "events") {
		t.Errorf("summary does not name events: %q", res.Summary)
	}

	// Without full=true compaction does not rewrite the file.
	res = h.run(domain.TaskStorageCompaction, nil)
	if res.Details["exclusive_lock_taken"] != false || !strings.Contains(res.Summary, "full=true") {
		t.Errorf("compaction without full: %q %v", res.Summary, res.Details)
	}
	res = h.run(domain.TaskStorageCompaction, domain.TaskOptions{"full": true})
	if res.Details["method"] != "VACUUM" || !strings.Contains(res.Summary, "whole database") {
		t.Errorf("compaction with full: %q", res.Summary)
	}
	if after, before := res.Details["file_bytes_after"].(int64), res.Details["file_bytes_before"].(int64); after >= before {
		t.Errorf("file did not shrink: %d → %d", before, after)
	}

	res = h.run(domain.TaskFragmentationMonitoring, nil)
	after := fragOf(t, res.Details)
	if after["events"].FragmentationPct >= events.FragmentationPct/2 || after["events"].High {
		t.Errorf("events after VACUUM = %.1f %% (before %.1f %%)", after["events"].FragmentationPct, events.FragmentationPct)
	}
	if len(res.Alerts) != 0 {
		t.Errorf("alerts after VACUUM: %v", res.Alerts)
	}
	if res.Details["freelist_pages"] != int64(0) {
		t.Errorf("free pages after VACUUM = %v", res.Details["freelist_pages"])
	}
}

func TestIndexFragmentationReportAndOptions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	res := h.run(domain.TaskIndexFragmentationReport, domain.TaskOptions{"high_threshold_pct": 10.0, "min_size_bytes": int64(0)})
	rels := fragOf(t, res.Details)
	if len(rels) != 8 { // 7 named indexes and the UNIQUE email autoindex
		t.Errorf("reported %d indexes, want 8: %v", len(rels), rels)
	}
	for name, f := range rels {
		if f.Type != "index" {
			t.Errorf("%s of type %s in the index report", name, f.Type)
		}
	}
	if !rels["idx_events_kind_created"].High {
		t.Errorf("idx_events_kind_created not HIGH at 10 %%: %+v", rels["idx_events_kind_created"])
	}
	// A threshold of 100 % raises nothing; a huge min size reports nothing.
	res = h.run(domain.TaskIndexFragmentationReport, domain.TaskOptions{"high_threshold_pct": 100.0})
	if len(res.Alerts) != 0 {
		t.Errorf("alerts at 100 %%: %v", res.Alerts)
	}
	res = h.run(domain.TaskFragmentationMonitoring, domain.TaskOptions{"min_size_bytes": int64(1 << 40)})
	if n := len(fragOf(t, res.Details)); n != 0 || len(res.Alerts) != 0 {
		t.Errorf("min_size_bytes=1 TiB still reports %d relations, %d alerts", n, len(res.Alerts))
	}
}

func TestReindexLowersIndexFragmentation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	before := fragOf(t, h.run(domain.TaskIndexFragmentationReport, nil).Details)
	h.run(domain.TaskIndexRebuild, nil)
	after := fragOf(t, h.run(domain.TaskIndexFragmentationReport, domain.TaskOptions{"min_size_bytes": int64(0)}).Details)
	for _, idx := range []string{"idx_events_kind_created", "idx_events_subject"} {
		if after[idx].FragmentationPct >= before[idx].FragmentationPct/2 {
			t.Errorf("%s: %.1f %% before REINDEX, %.1f %% after", idx, before[idx].FragmentationPct, after[idx].FragmentationPct)
		}
	}
}
