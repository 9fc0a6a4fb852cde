package postgres

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/jackc/pgerrcode"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// defaultMinSizeBytes: relations smaller than 1 MiB are neither reported
// nor rebuilt; their bloat costs nothing worth a lock.
const defaultMinSizeBytes = 1 << 20

// Measurement methods reported per relation.
const (
	methodPgstattuple  = "pgstattuple"
	methodEstimate     = "statistics_estimate"
	methodDeadTupRatio = "dead_tuple_ratio"
)

// relBloat is the measured waste of one table or index.
type relBloat struct {
	Relation       string  `json:"relation"`
	Kind           string  `json:"kind"` // table or index
	Table          string  `json:"table,omitempty"`
	SizeBytes      int64   `json:"size_bytes"`
	BloatPct       float64 `json:"bloat_pct"`
	WastedBytes    int64   `json:"wasted_bytes"`
	DeadTuplePct   float64 `json:"dead_tuple_pct,omitempty"`
	FreePct        float64 `json:"free_pct,omitempty"`
	LeafDensityPct float64 `json:"avg_leaf_density_pct,omitempty"`
	LeafFragPct    float64 `json:"leaf_fragmentation_pct,omitempty"`
	Method         string  `json:"method"`
	Level          string  `json:"level,omitempty"`
	Skipped        string  `json:"skipped,omitempty"`
}

// measurer measures bloat with pgstattuple when the extension is there (or
// can be created) and usable, and with catalog statistics otherwise.
type measurer struct {
	r      *run
	schema string // pgstattuple's schema; "" = estimate
	why    string // why the estimate is used
	to     sessionSettings
}

func (r *run) newMeasurer(ctx context.Context) (*measurer, error) {
	schema, why, err := r.ensureExtension(ctx, "pgstattuple")
	if err != nil {
		return nil, err
	}
	if why != "" {
		why += "; falling back to the catalog-statistics estimate"
	}
	to, err := r.timeoutOpts()
	if err != nil {
		return nil, err
	}
	return &measurer{r: r, schema: schema, why: why, to: to}, nil
}

func (m *measurer) method() string {
	if m.schema != "" {
		return methodPgstattuple
	}
	return methodEstimate
}

// fallBack switches to the estimate after pgstattuple turned out unusable.
func (m *measurer) fallBack(err error) {
	m.schema = ""
	m.why = "pgstattuple is installed but not usable by this role: " + pgMessage(err)
}

// measure runs a one-row measurement query on a session with the task's
// timeouts (pgstattuple reads under ACCESS SHARE locks). It reports
// skipped=true for a relation dropped or locked meanwhile.
func (m *measurer) measure(ctx context.Context, sql string, args []any, dest ...any) (skipped string, err error) {
	s, err := m.r.session(ctx, m.to)
	if err != nil {
		return "", err
	}
	defer s.release()
	err = s.queryRow(ctx, sql, args, dest...)
	switch {
	case err == nil:
		return "", nil
	case ctx.Err() != nil:
		return "", ctx.Err()
	case isGone(err):
		return "dropped while the task ran", nil
	case isLockTimeout(err):
		return fmt.Sprintf("lock not available within %d ms", m.to.LockMs), nil
	}
	return "", err
}

// table measures a table: pgstattuple_approx (free space from the
// visibility and free-space maps, dead tuples counted), or the estimate.
func (m *measurer) table(ctx context.Context, t table) (relBloat, error) {
	b := relBloat{Relation: t.String(), Kind: "table", SizeBytes: t.SizeBytes}
	if m.schema != "" {
		var size int64
		var free, dead float64
		skipped, err := m.measure(ctx, `SELECT table_len, approx_free_percent, dead_tuple_percent FROM `+fn(m.schema, "pgstattuple_approx")+`($1::oid::regclass)`,
			[]any{int64(t.OID)}, &size, &free, &dead)
		switch {
		case err == nil && skipped != "":
			b.Skipped = skipped
			return b, nil
		case err == nil:
			b.Method, b.SizeBytes, b.FreePct, b.DeadTuplePct = methodPgstattuple, size, round1(free), round1(dead)
			b.BloatPct = round1(math.Min(100, free+dead))
			b.WastedBytes = int64(float64(size) * b.BloatPct / 100)
			return b, nil
		case isCode(err, pgerrcode.InsufficientPrivilege):
			m.fallBack(err)
		default:
			return b, classify(ctx, err, "pgstattuple_approx(%s)", t)
		}
	}
	return m.tableEstimate(ctx, t)
}

// tableEstimate estimates a table's waste from catalog statistics: the
// pages its rows need at their average width against the pages it has,
// or the dead-tuple ratio when the statistics do not cover every column.
func (m *measurer) tableEstimate(ctx context.Context, t table) (relBloat, error) {
	b := relBloat{Relation: t.String(), Kind: "table", SizeBytes: t.SizeBytes}
	var pages, blockSize, ff, ncols, nstats, live, dead int64
	var reltuples, width float64
	skipped, err := m.measure(ctx, `
		SELECT pg_relation_size(c.oid) / current_setting('block_size')::int8, c.reltuples::float8,
		       current_setting('block_size')::int8,
		       coalesce((SELECT option_value::int8 FROM pg_options_to_table(c.reloptions) WHERE option_name = 'fillfactor'), 100),
		       (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
		       (SELECT count(*) FROM pg_stats s WHERE s.schemaname = n.nspname AND s.tablename = c.relname AND NOT s.inherited),
		       coalesce((SELECT sum(s.avg_width) FROM pg_stats s WHERE s.schemaname = n.nspname AND s.tablename = c.relname AND NOT s.inherited), 0)::float8,
		       coalesce(st.n_live_tup, 0), coalesce(st.n_dead_tup, 0)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_stat_all_tables st ON st.relid = c.oid
		WHERE c.oid = $1`, []any{int64(t.OID)}, &pages, &reltuples, &blockSize, &ff, &ncols, &nstats, &width, &live, &dead)
	if err != nil {
		return b, classify(ctx, err, "estimate bloat of %s", t)
	}
	if skipped != "" {
		b.Skipped = skipped
		return b, nil
	}
	b.SizeBytes = pages * blockSize
	if live+dead > 0 {
		b.DeadTuplePct = round1(100 * float64(dead) / float64(live+dead))
	}
	if nstats >= ncols && ncols > 0 && reltuples >= 0 && pages > 0 {
		tuple := 24 + maxAlign(width) + 4 // heap tuple header, data, line pointer
		usable := float64(blockSize-24) * float64(ff) / 100
		est := math.Ceil(reltuples * tuple / usable)
		b.Method = methodEstimate
		b.BloatPct = round1(math.Max(0, 100*(1-est/float64(pages))))
	} else {
		b.Method = methodDeadTupRatio
		b.BloatPct = b.DeadTuplePct
	}
	b.WastedBytes = int64(float64(b.SizeBytes) * b.BloatPct / 100)
	return b, nil
}

// btreeBloat starts the measurement of ix; ok is false (and the result
// says why) for access methods other than btree, which are not measured.
func btreeBloat(ix index) (b relBloat, ok bool) {
	b = relBloat{Relation: ix.String(), Kind: "index", Table: ix.Table.String(), SizeBytes: ix.SizeBytes}
	if ix.AccessMethod != "btree" {
		b.Skipped = "access method " + ix.AccessMethod + " is not measured"
		return b, false
	}
	return b, true
}

// index measures a btree index: pgstatindex's leaf density against the
// index's fillfactor, plus empty and deleted pages, or the estimate from
// the key columns' average widths. Other access methods are not measured.
func (m *measurer) index(ctx context.Context, ix index) (relBloat, error) {
	b, ok := btreeBloat(ix)
	if !ok {
		return b, nil
	}
	var ff, blockSize int64
	if m.schema != "" {
		var size, leafPages, emptyPages, deletedPages int64
		var density, frag float64
		skipped, err := m.measure(ctx, `
			SELECT s.index_size, s.leaf_pages, s.empty_pages, s.deleted_pages, s.avg_leaf_density, s.leaf_fragmentation,
			       coalesce((SELECT option_value::int8 FROM pg_options_to_table(c.reloptions) WHERE option_name = 'fillfactor'), 90),
			       current_setting('block_size')::int8
			FROM `+fn(m.schema, "pgstatindex")+`($1::oid::regclass) s, pg_class c WHERE c.oid = $1`,
			[]any{int64(ix.OID)}, &size, &leafPages, &emptyPages, &deletedPages, &density, &frag, &ff, &blockSize)
		switch {
		case err == nil && skipped != "":
			b.Skipped = skipped
			return b, nil
		case err == nil:
			b.Method, b.SizeBytes = methodPgstattuple, size
			if math.IsNaN(density) {
				density = 0
			}
			if math.IsNaN(frag) {
				frag = 0
			}
			b.LeafDensityPct, b.LeafFragPct = round1(density), round1(frag)
			wasted := 0.0
			if leafPages > 0 && density > 0 {
				wasted = float64(leafPages*blockSize) * math.Max(0, 1-density/float64(ff))
			}
			wasted += float64((emptyPages + deletedPages) * blockSize)
			if size > 0 {
				b.BloatPct = round1(math.Min(100, 100*wasted/float64(size)))
			}
			b.WastedBytes = int64(wasted)
			return b, nil
		case isCode(err, pgerrcode.InsufficientPrivilege):
			m.fallBack(err)
		default:
			return b, classify(ctx, err, "pgstatindex(%s)", ix)
		}
	}
	return m.indexEstimate(ctx, ix)
}

// noUsableStatistics is the Skipped of an index estimate without the
// statistics it needs.
const noUsableStatistics = "no usable statistics (expression index, or table never analysed)"

// indexEstimate estimates a btree index's waste from catalog statistics:
// the pages its entries need at the key columns' average widths (leaves
// at the index's fillfactor, inner pages at 70 %) against the pages it
// has.
func (m *measurer) indexEstimate(ctx context.Context, ix index) (relBloat, error) {
	b, ok := btreeBloat(ix)
	if !ok {
		return b, nil
	}
	var ff, blockSize int64
	var pages int64
	var reltuples float64
	var width *float64
	skipped, err := m.measure(ctx, `
		SELECT pg_relation_size(c.oid) / current_setting('block_size')::int8, c.reltuples::float8,
		       current_setting('block_size')::int8,
		       coalesce((SELECT option_value::int8 FROM pg_options_to_table(c.reloptions) WHERE option_name = 'fillfactor'), 90),
		       (SELECT CASE WHEN bool_or(k = 0) OR count(s.avg_width) < count(*) THEN NULL ELSE sum(s.avg_width)::float8 END
		        FROM unnest(i.indkey::int2[]) AS k
		        LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k
		        LEFT JOIN pg_stats s ON s.schemaname = tn.nspname AND s.tablename = t.relname AND s.attname = a.attname AND NOT s.inherited)
		FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_class t ON t.oid = i.indrelid
		JOIN pg_namespace tn ON tn.oid = t.relnamespace
		WHERE i.indexrelid = $1`, []any{int64(ix.OID)}, &pages, &reltuples, &blockSize, &ff, &width)
	if err != nil {
		return b, classify(ctx, err, "estimate bloat of %s", ix)
	}
	if skipped != "" {
		b.Skipped = skipped
		return b, nil
	}
	b.SizeBytes = pages * blockSize
	if width == nil || reltuples < 0 || pages <= 1 {
		b.Skipped = noUsableStatistics
		return b, nil
	}
	tuple := 8 + maxAlign(*width) + 4 // index tuple header, key, line pointer
	perLeaf := math.Max(1, math.Floor(float64(blockSize-24-16)*float64(ff)/100/tuple))
	perInner := math.Max(2, math.Floor(float64(blockSize-24-16)*0.7/tuple))
	leaves := math.Ceil(reltuples / perLeaf)
	est := 1 + leaves + math.Ceil(leaves/perInner)
	b.Method = methodEstimate
	b.BloatPct = round1(math.Max(0, 100*(1-est/float64(pages))))
	b.WastedBytes = int64(float64(b.SizeBytes) * b.BloatPct / 100)
	return b, nil
}

func maxAlign(n float64) float64 { return math.Ceil(n/8) * 8 }

// fragmentationMonitoring reports table and index bloat.
func fragmentationMonitoring(ctx context.Context, r *run) (driver.Result, error) {
	return fragmentation(ctx, r, true)
}

// indexFragmentationReport reports index bloat only.
func indexFragmentationReport(ctx context.Context, r *run) (driver.Result, error) {
	return fragmentation(ctx, r, false)
}

// fragmentation measures every relation of at least min_size_bytes (default
// 1 MiB), one after the other (the reads are I/O-heavy), and raises a HIGH
// alert for each at or above high_threshold_pct (default 30). Locks: ACCESS
// SHARE on each relation while it is read (pgstattuple) or none (estimate).
func fragmentation(ctx context.Context, r *run, withTables bool) (driver.Result, error) {
	thr, err := floatOpt(r.opts(), "high_threshold_pct")
	if err != nil {
		return driver.Result{}, err
	}
	minSize, err := intOpt(r.opts(), "min_size_bytes")
	if err != nil {
		return driver.Result{}, err
	}
	m, err := r.newMeasurer(ctx)
	if err != nil {
		return driver.Result{}, err
	}
	type item struct {
		key string
		t   *table
		ix  *index
	}
	var items []item
	small := 0
	if withTables {
		tables, err := r.listTables(ctx)
		if err != nil {
			return driver.Result{}, err
		}
		for i := range tables {
			if sz := tables[i].SizeBytes; sz >= 0 && sz < minSize {
				small++
				continue
			}
			items = append(items, item{key: tables[i].String(), t: &tables[i]})
		}
	}
	indexes, err := r.listIndexes(ctx, false)
	if err != nil {
		return driver.Result{}, err
	}
	for i := range indexes {
		if !indexes[i].Valid {
			continue // invalid indexes are orphan_cleanup's business
		}
		if sz := indexes[i].SizeBytes; sz >= 0 && sz < minSize {
			small++
			continue
		}
		items = append(items, item{key: indexes[i].String(), ix: &indexes[i]})
	}
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.key
	}
	tr := newTracker[relBloat](r, keys)
	startMethod := m.method()
	for _, it := range items {
		if tr.isDone(it.key) {
			continue
		}
		var b relBloat
		if it.t != nil {
			b, err = m.table(ctx, *it.t)
		} else {
			b, err = m.index(ctx, *it.ix)
		}
		if err != nil {
			return driver.Result{}, err
		}
		if b.Skipped == "" && b.SizeBytes < minSize {
			b.Skipped = "smaller than min_size_bytes"
		}
		if b.Skipped == "" && b.BloatPct >= thr {
			b.Level = domain.AlertHigh
		}
		tr.finish(it.key, &b, "measured "+it.key)
	}
	results := tr.results()
	sort.SliceStable(results, func(i, j int) bool { return results[i].WastedBytes > results[j].WastedBytes })
	var alerts []domain.Alert
	var high []string
	var wasted int64
	measured := 0
	for _, b := range results {
		if b.Skipped != "" {
			continue
		}
		measured++
		wasted += b.WastedBytes
		if b.Level == domain.AlertHigh {
			high = append(high, b.Relation)
			alerts = append(alerts, domain.Alert{
				Level:   domain.AlertHigh,
				Subject: b.Relation,
				Message: fmt.Sprintf("%s %s is %.1f%% bloated (%s wasted of %s; %s), at or above %.0f%%",
					b.Kind, b.Relation, b.BloatPct, bytesHuman(b.WastedBytes), bytesHuman(b.SizeBytes), b.Method, thr),
			})
		}
	}
	method := startMethod
	if m.method() != startMethod {
		method = m.method()
	}
	what := "relations"
	metric := "bloat_wasted_bytes"
	if !withTables {
		what, metric = "indexes", "index_bloat_wasted_bytes"
	}
	summary := fmt.Sprintf("measured %d %s with %s: %d at or above %.0f%%, %s wasted", measured, what, method, len(high), thr, bytesHuman(wasted))
	if len(high) > 0 {
		summary += " (HIGH: " + joinNames(high, 5) + ")"
	}
	details := map[string]any{
		"method": method, "high_threshold_pct": thr, "min_size_bytes": minSize,
		"measured": measured, "below_min_size": small, "high_count": len(high),
		"wasted_bytes": wasted, "relations": results, "resumed": tr.resumed,
	}
	if m.why != "" {
		details["method_reason"] = m.why
		summary += "; " + m.why
	}
	if h := r.req.History; h != nil {
		_ = h.RecordSamples(ctx, driver.Sample{Target: r.target().Name, Metric: metric, At: time.Now().UTC(), Value: float64(wasted)})
	}
	return driver.Result{Summary: summary, Details: details, Alerts: alerts}, nil
}
