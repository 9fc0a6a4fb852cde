package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// relFrag is the fragmentation of one b-tree measured from dbstat.
type relFrag struct {
	Name          string `json:"name"`
	Table         string `json:"table"`
	Type          string `json:"type"`
	Pages         int64  `json:"pages"`
	LeafPages     int64  `json:"leaf_pages"`
	OverflowPages int64  `json:"overflow_pages"`
	TotalBytes    int64  `json:"total_bytes"`
	PayloadBytes  int64  `json:"payload_bytes"`
	UnusedBytes   int64  `json:"unused_bytes"`
	// FragmentationPct is unused bytes over total bytes of the b-tree's
	// pages: space lost inside pages (deletes, page splits).
	FragmentationPct float64 `json:"fragmentation_pct"`
	// OutOfOrderPct is the share of leaf pages that do not directly follow
	// the previous leaf in the file: scattering that slows range scans.
	OutOfOrderPct float64 `json:"out_of_order_pct"`
	High          bool    `json:"high"`
}

// measureRelation reads every page of b-tree name from the dbstat virtual
// table, in tree order.
func measureRelation(ctx context.Context, db *sql.DB, rel relation) (relFrag, error) {
	rows, err := db.QueryContext(ctx, `SELECT pageno, pagetype, payload, unused, pgsize FROM dbstat WHERE name = ?`, rel.Name)
	if err != nil {
		return relFrag{}, fmt.Errorf("dbstat %s: %w", rel.Name, err)
	}
	defer rows.Close()
	f := relFrag{Name: rel.Name, Table: rel.Table, Type: rel.Type}
	var prevLeaf, jumps int64
	for rows.Next() {
		var pageno, payload, unused, pgsize int64
		var pagetype string
		if err := rows.Scan(&pageno, &pagetype, &payload, &unused, &pgsize); err != nil {
			return relFrag{}, fmt.Errorf("dbstat %s: %w", rel.Name, err)
		}
		f.Pages++
		f.TotalBytes += pgsize
		f.PayloadBytes += payload
		f.UnusedBytes += unused
		switch pagetype {
		case "leaf":
			if f.LeafPages > 0 && pageno != prevLeaf+1 {
				jumps++
			}
			f.LeafPages++
			prevLeaf = pageno
		case "overflow":
			f.OverflowPages++
		}
	}
	if err := rows.Err(); err != nil {
		return relFrag{}, fmt.Errorf("dbstat %s: %w", rel.Name, err)
	}
	if f.TotalBytes > 0 {
		f.FragmentationPct = round1(100 * float64(f.UnusedBytes) / float64(f.TotalBytes))
	}
	if f.LeafPages > 1 {
		f.OutOfOrderPct = round1(100 * float64(jumps) / float64(f.LeafPages-1))
	}
	return f, nil
}

// fileSpace is the page accounting of the whole file.
type fileSpace struct {
	PageSize      int64
	PageCount     int64
	FreelistCount int64
}

func (s fileSpace) freeBytes() int64 { return s.FreelistCount * s.PageSize }

func (s fileSpace) freePct() float64 {
	if s.PageCount == 0 {
		return 0
	}
	return round1(100 * float64(s.FreelistCount) / float64(s.PageCount))
}

func readFileSpace(ctx context.Context, db *sql.DB) (fileSpace, error) {
	var s fileSpace
	var err error
	if s.PageSize, err = pragmaInt(ctx, db, "page_size"); err != nil {
		return s, err
	}
	if s.PageCount, err = pragmaInt(ctx, db, "page_count"); err != nil {
		return s, err
	}
	if s.FreelistCount, err = pragmaInt(ctx, db, "freelist_count"); err != nil {
		return s, err
	}
	return s, nil
}

// measureAll measures rels one by one (resumable, one heartbeat each) within
// the progress range [from, to].
func measureAll(ctx context.Context, r *run, rels []relation, from, to float64) (map[string]relFrag, bool, error) {
	byName := map[string]relation{}
	names := make([]string, 0, len(rels))
	for _, rel := range rels {
		byName[rel.Name] = rel
		names = append(names, rel.Name)
	}
	var cp loopCheckpoint[relFrag]
	resumed := driver.DecodeCheckpoint(r.req.Checkpoint, &cp)
	err := loop(ctx, r, names, &cp, from, to, "measure", nil, func(ctx context.Context, name string) (relFrag, error) {
		return measureRelation(ctx, r.db, byName[name])
	})
	return cp.Results, resumed, err
}

func fragmentationMonitoring(ctx context.Context, r *run) (driver.Result, error) {
	return fragmentationReport(ctx, r, false)
}

func indexFragmentationReport(ctx context.Context, r *run) (driver.Result, error) {
	return fragmentationReport(ctx, r, true)
}

// fragmentationReport measures every table and index (indexes only when
// indexesOnly) and raises a HIGH alert for each at or above
// high_threshold_pct that is at least min_size_bytes big.
func fragmentationReport(ctx context.Context, r *run, indexesOnly bool) (driver.Result, error) {
	threshold := r.opts().Float("high_threshold_pct")
	minSize := r.opts().Int("min_size_bytes")
	rels, err := listRelations(ctx, r.db)
	if err != nil {
		return driver.Result{}, err
	}
	if indexesOnly {
		var idx []relation
		for _, rel := range rels {
			if rel.Type == "index" {
				idx = append(idx, rel)
			}
		}
		rels = idx
	}
	measured, resumed, err := measureAll(ctx, r, rels, 0, 95)
	if err != nil {
		return driver.Result{}, err
	}
	space, err := readFileSpace(ctx, r.db)
	if err != nil {
		return driver.Result{}, err
	}

	var report []relFrag
	var high []relFrag
	small := 0
	for _, rel := range rels {
		f := measured[rel.Name]
		if f.TotalBytes < minSize {
			small++
			continue
		}
		f.High = f.FragmentationPct >= threshold
		if f.High {
			high = append(high, f)
		}
		report = append(report, f)
	}
	sort.SliceStable(report, func(i, j int) bool { return report[i].FragmentationPct > report[j].FragmentationPct })
	sort.SliceStable(high, func(i, j int) bool { return high[i].FragmentationPct > high[j].FragmentationPct })

	var alerts []domain.Alert
	for _, f := range high {
		alerts = append(alerts, domain.Alert{
			Level:   domain.AlertHigh,
			Subject: f.Name,
			Message: fmt.Sprintf("%s %s: %.1f %% of %s unused (threshold %.0f %%)", f.Type, f.Name, f.FragmentationPct, humanBytes(f.TotalBytes), threshold),
		})
	}
	if !indexesOnly && space.freePct() >= threshold && space.freeBytes() >= minSize {
		alerts = append(alerts, domain.Alert{
			Level:   domain.AlertWarning,
			Subject: "free pages",
			Message: fmt.Sprintf("%.1f %% of the file (%s) is free pages; storage_compaction with full=true (VACUUM) returns it to the file system", space.freePct(), humanBytes(space.freeBytes())),
		})
	}

	kind := "tables and indexes"
	if indexesOnly {
		kind = "indexes"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d %s measured with dbstat (%d under %s not reported): ", len(rels), kind, small, humanBytes(minSize))
	if len(high) == 0 {
		fmt.Fprintf(&sb, "none at or above %.0f %% fragmentation", threshold)
	} else {
		fmt.Fprintf(&sb, "%d at or above %.0f %% —", len(high), threshold)
		for i, f := range high {
			if i == 3 {
				fmt.Fprintf(&sb, " …")
				break
			}
			fmt.Fprintf(&sb, " %s %.1f %%", f.Name, f.FragmentationPct)
		}
	}
	fmt.Fprintf(&sb, "; %d free pages (%s, %.1f %% of the file)", space.FreelistCount, humanBytes(space.freeBytes()), space.freePct())

	if report == nil {
		report = []relFrag{}
	}
	return driver.Result{
		Summary: sb.String(),
		Details: map[string]any{
			"method":             "dbstat",
			"relations":          report,
			"high_count":         len(high),
			"high_threshold_pct": threshold,
			"min_size_bytes":     minSize,
			"not_reported_small": small,
			"page_size":          space.PageSize,
			"page_count":         space.PageCount,
			"freelist_pages":     space.FreelistCount,
			"free_bytes":         space.freeBytes(),
			"free_pct":           space.freePct(),
			"resumed":            resumed,
		},
		Alerts: alerts,
	}, nil
}
