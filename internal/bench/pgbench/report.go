package pgbench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Goal is the ratio ours/native the issue asks for.
const Goal = 1.05

// Report is a benchmark's outcome.
type Report struct {
	StartedAt     time.Time         `json:"started_at"`
	Server        string            `json:"server_version"`
	Mode          string            `json:"mode"`
	Jobs          int               `json:"jobs"`
	Runs          int               `json:"runs"`
	CPUs          int               `json:"cpus"`
	Settings      map[string]string `json:"settings"`
	Dataset       Dataset           `json:"dataset"`
	RestoreSecAvg float64           `json:"restore_seconds_avg"`
	Rows          []PairRow         `json:"pairs"`
	Notes         []string          `json:"notes"`
	TotalSeconds  float64           `json:"total_seconds"`
	KeptDSN       string            `json:"kept_dsn,omitempty"`
}

// PairRow is one line of the table: ours against one native command.
type PairRow struct {
	Pair      string   `json:"pair"`
	Ours      string   `json:"ours"`
	Native    string   `json:"native"`
	Matched   string   `json:"matched"`
	OursMed   float64  `json:"ours_median_s"`
	NativeMed float64  `json:"native_median_s"`
	Ratio     float64  `json:"ratio"`
	GoalMet   bool     `json:"goal_met"`
	OverMed   *float64 `json:"temporal_overhead_median_ms,omitempty"`
	// OursIdleMed and NativeIdleMed are the medians of the runs' session
	// idle percentages (RunRow).
	OursIdleMed   *float64 `json:"ours_session_idle_median_pct,omitempty"`
	NativeIdleMed *float64 `json:"native_session_idle_median_pct,omitempty"`
	PerRun        []RunRow `json:"runs"`
}

// RunRow is one measured run of a pair.
type RunRow struct {
	Run         int      `json:"run"`
	Order       string   `json:"order"`
	Ours        float64  `json:"ours_s"`
	Native      float64  `json:"native_s"`
	Ratio       float64  `json:"ratio"`
	OursCheck   string   `json:"ours_check"`
	NativeCheck string   `json:"native_check"`
	OverheadMs  *float64 `json:"temporal_overhead_ms,omitempty"`
	// OursOtherCPU and NativeOtherCPU are the percentages of the machine's
	// CPU capacity used outside the cluster and the benchmark process while
	// each side ran (other processes, steal; kernel threads excluded); Noisy marks a
	// run where either exceeded NoisyPct.
	OursOtherCPU   *float64 `json:"ours_other_cpu_pct,omitempty"`
	NativeOtherCPU *float64 `json:"native_other_cpu_pct,omitempty"`
	Noisy          bool     `json:"noisy"`
	// OursIdlePct and NativeIdlePct are the shares of each side's wall time
	// during which its N sessions were not executing SQL: wall time minus
	// the server time of its top-level statements (pg_stat_statements)
	// divided by N. It isolates what the client adds (start-up, catalog
	// reads, per-relation bookkeeping, an idle tail) from the speed of the
	// server work itself, which varies between runs.
	OursIdlePct   *float64 `json:"ours_session_idle_pct,omitempty"`
	NativeIdlePct *float64 `json:"native_session_idle_pct,omitempty"`
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianOf is the median of the known values, nil when none is known.
func medianOf(xs []*float64) *float64 {
	var known []float64
	for _, x := range xs {
		if x != nil {
			known = append(known, *x)
		}
	}
	if len(known) == 0 {
		return nil
	}
	m := median(known)
	return &m
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return math.Inf(1)
	}
	return a / b
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the summary table, the per-run figures and the notes.
func (r *Report) WriteText(w io.Writer) error {
	d := r.Dataset
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("bench-pg: PostgreSQL %s, %d CPUs, -j %d, %d run(s) per pair\n", r.Server, r.CPUs, r.Jobs, r.Runs)
	p("database: %d tables, %d indexes, %s (heap %s, indexes %s, smallest index %s), %d rows loaded, %d dead tuples (delete %d%%, update %d%% of an indexed column)\n",
		d.Tables, d.Indexes, HumanBytes(d.DatabaseBytes), HumanBytes(d.HeapBytes), HumanBytes(d.IndexBytes), HumanBytes(d.SmallestIndex),
		d.Rows, d.DeadTuples, d.DeletePct, d.UpdatePct)
	p("generation: %.1fs on %d connections; snapshot %s in %.1fs; restore before each measured side %.1fs on average (not timed)\n",
		d.GenSeconds, d.GenConns, HumanBytes(d.SnapshotBytes), d.SnapshotSeconds, r.RestoreSecAvg)
	keys := make([]string, 0, len(r.Settings))
	for k := range r.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var kv []string
	for _, k := range keys {
		kv = append(kv, k+"="+r.Settings[k])
	}
	p("server: throwaway pgcluster, %s\n", strings.Join(kv, " "))
	p("NOTE: fsync=off and synchronous_commit=off (throwaway cluster): both sides benefit equally; absolute times are lower than on a durable server.\n")
	p("ours: %s\n\n", r.Mode)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	temporal := false
	for _, row := range r.Rows {
		if row.OverMed != nil {
			temporal = true
		}
	}
	hdr := "PAIR\tOURS (median s)\tNATIVE (median s)\tRATIO\tGOAL ≤1.05\tSESSIONS IDLE % (ours/native)"
	if temporal {
		hdr += "\tTEMPORAL SHARE (median ms)"
	}
	fmt.Fprintln(tw, hdr+"\tNATIVE COMMAND")
	for _, row := range r.Rows {
		goal := "no"
		if row.GoalMet {
			goal = "yes"
		}
		line := fmt.Sprintf("%s\t%.2f\t%.2f\t%.3f\t%s\t%s/%s", row.Pair, row.OursMed, row.NativeMed, row.Ratio, goal,
			pct1Text(row.OursIdleMed), pct1Text(row.NativeIdleMed))
		if temporal {
			if row.OverMed != nil {
				line += fmt.Sprintf("\t%.0f", *row.OverMed)
			} else {
				line += "\t-"
			}
		}
		fmt.Fprintln(tw, line+"\t"+row.Native)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	p("\nper run (order: which side ran first; every side starts from the restored snapshot):\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	h := "PAIR\tRUN\tORDER\tOURS s\tNATIVE s\tRATIO\tIDLE % (ours/native)\tOTHER CPU % (ours/native)"
	if temporal {
		h += "\tTEMPORAL ms"
	}
	fmt.Fprintln(tw, h+"\tOURS CHECK\tNATIVE CHECK")
	for _, row := range r.Rows {
		name := row.Pair
		for _, rr := range row.PerRun {
			flag := ""
			if rr.Noisy {
				flag = " *"
			}
			line := fmt.Sprintf("%s\t%d\t%s\t%.2f\t%.2f\t%.3f%s\t%s/%s\t%s/%s", name, rr.Run, rr.Order, rr.Ours, rr.Native, rr.Ratio, flag,
				pct1Text(rr.OursIdlePct), pct1Text(rr.NativeIdlePct), pctText(rr.OursOtherCPU), pctText(rr.NativeOtherCPU))
			if temporal {
				if rr.OverheadMs != nil {
					line += fmt.Sprintf("\t%.0f", *rr.OverheadMs)
				} else {
					line += "\t-"
				}
			}
			fmt.Fprintln(tw, line+"\t"+rr.OursCheck+"\t"+rr.NativeCheck)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	p("\nwhat was matched:\n")
	seen := map[string]bool{}
	for _, row := range r.Rows {
		if seen[row.Pair] {
			continue
		}
		seen[row.Pair] = true
		p("  %s: ours = %s; %s\n", row.Pair, row.Ours, row.Matched)
	}
	if len(r.Notes) > 0 {
		p("\nnotes:\n")
		for _, n := range r.Notes {
			p("  - %s\n", n)
		}
	}
	p("\ntotal %.0fs\n", r.TotalSeconds)
	if r.KeptDSN != "" {
		p("cluster kept running: %s\n", r.KeptDSN)
	}
	return nil
}

func pct1Text(p *float64) string {
	if p == nil {
		return "?"
	}
	return fmt.Sprintf("%.1f", *p)
}

func pctText(p *float64) string {
	if p == nil {
		return "?"
	}
	return fmt.Sprintf("%.0f", *p)
}
