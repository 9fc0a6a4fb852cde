package impact

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/themis-maintenance/themis/internal/bench/pgbench"
)

// The targets for ours.
const (
	// TargetP99 bounds ours' foreground p99 as a multiple of the quiet one.
	TargetP99 = 1.2
	// TargetLag bounds ours' largest lag as a multiple of max_lag_ms.
	TargetLag = 1.0
	// TargetTime bounds ours' maintenance time as a multiple of native's.
	TargetTime = 1.5
)

// Report is a benchmark's outcome.
type Report struct {
	StartedAt       time.Time `json:"started_at"`
	Server          string    `json:"server_version"`
	CPUs            int       `json:"cpus"`
	Dataset         Dataset   `json:"dataset"`
	Jobs            int       `json:"jobs"`
	Clients         int       `json:"pgbench_clients"`
	Threads         int       `json:"pgbench_threads"`
	Rate            int       `json:"pgbench_rate_tps"`
	Runs            int       `json:"runs"`
	BaselineSeconds int       `json:"baseline_seconds"`
	TailSeconds     int       `json:"tail_seconds"`
	SampleMs        int64     `json:"lag_sample_ms"`
	MaxLagMs        int64     `json:"max_lag_ms"`
	MaxActive       int64     `json:"max_active_backends"`
	Intensity       float64   `json:"intensity"`
	// Sides are quiet, ours and native, in the order they ran.
	Sides []Side `json:"sides"`
	// Ratios against the targets (NaN where a figure is missing).
	Ratios       Ratios  `json:"ratios"`
	TotalSeconds float64 `json:"total_seconds"`
}

// Side is one row of the table.
type Side struct {
	Name string `json:"name"`
	// WindowSeconds is the measured window: the maintenance for ours and
	// native, the baseline for quiet.
	WindowSeconds      float64    `json:"window_seconds"`
	MaintenanceSeconds float64    `json:"maintenance_seconds"`
	Steps              []Step     `json:"steps,omitempty"`
	ThrottledMs        int64      `json:"throttled_ms"`
	Foreground         Foreground `json:"foreground"`
	Lag                Lag        `json:"lag"`
	// CPUsBusy is how many of the machine's CPUs were busy on average over
	// the window, every process counted (/proc/stat; 0: not measured).
	CPUsBusy float64 `json:"cpus_busy,omitempty"`
	// Runs are the side's rounds when there were several; the figures
	// above are their medians.
	Runs []Side `json:"runs,omitempty"`
}

// medianSide is a side whose every figure is the median of its rounds'.
func medianSide(runs []Side) Side {
	if len(runs) == 1 {
		return runs[0]
	}
	med := func(f func(Side) float64) float64 {
		v := make([]float64, len(runs))
		for i, s := range runs {
			v[i] = f(s)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	m := Side{Name: runs[0].Name, Runs: runs,
		WindowSeconds:      med(func(s Side) float64 { return s.WindowSeconds }),
		MaintenanceSeconds: med(func(s Side) float64 { return s.MaintenanceSeconds }),
		ThrottledMs:        int64(med(func(s Side) float64 { return float64(s.ThrottledMs) })),
		CPUsBusy:           med(func(s Side) float64 { return s.CPUsBusy }),
		Foreground: Foreground{
			Transactions: int(med(func(s Side) float64 { return float64(s.Foreground.Transactions) })),
			TPS:          med(func(s Side) float64 { return s.Foreground.TPS }),
			P50Ms:        med(func(s Side) float64 { return s.Foreground.P50Ms }),
			P99Ms:        med(func(s Side) float64 { return s.Foreground.P99Ms }),
			MaxMs:        med(func(s Side) float64 { return s.Foreground.MaxMs }),
		},
		Lag: Lag{
			Samples:      int(med(func(s Side) float64 { return float64(s.Lag.Samples) })),
			MaxMs:        med(func(s Side) float64 { return s.Lag.MaxMs }),
			MaxStandbyMs: med(func(s Side) float64 { return s.Lag.MaxStandbyMs }),
			MaxBytes:     int64(med(func(s Side) float64 { return float64(s.Lag.MaxBytes) })),
			OverMs:       med(func(s Side) float64 { return s.Lag.OverMs }),
		},
	}
	for _, s := range runs {
		m.Lag.Missing += s.Lag.Missing
	}
	for i, st := range runs[0].Steps {
		st.Seconds = med(func(s Side) float64 { return s.Steps[i].Seconds })
		st.ThrottledMs = int64(med(func(s Side) float64 { return float64(s.Steps[i].ThrottledMs) }))
		st.SleptMs = int64(med(func(s Side) float64 { return float64(s.Steps[i].SleptMs) }))
		st.Waits = int(med(func(s Side) float64 { return float64(s.Steps[i].Waits) }))
		st.P99Ms = med(func(s Side) float64 { return s.Steps[i].P99Ms })
		st.MaxLagMs = med(func(s Side) float64 { return s.Steps[i].MaxLagMs })
		st.Summary = ""
		st.Reasons = nil
		for _, s := range runs {
			for _, r := range s.Steps[i].Reasons {
				if !slices.Contains(st.Reasons, r) {
					st.Reasons = append(st.Reasons, r)
				}
			}
		}
		m.Steps = append(m.Steps, st)
	}
	return m
}

// Ratios are ours' (and, for contrast, native's) figures against the
// targets.
type Ratios struct {
	OursP99VsQuiet   float64 `json:"ours_p99_vs_quiet"`
	NativeP99VsQuiet float64 `json:"native_p99_vs_quiet"`
	OursLagVsMax     float64 `json:"ours_max_lag_vs_max_lag_ms"`
	NativeLagVsMax   float64 `json:"native_max_lag_vs_max_lag_ms"`
	OursTimeVsNative float64 `json:"ours_time_vs_native"`
	OursTPSVsQuiet   float64 `json:"ours_tps_vs_quiet"`
	NativeTPSVsQuiet float64 `json:"native_tps_vs_quiet"`
}

// MarshalJSON writes NaN as null.
func (r Ratios) MarshalJSON() ([]byte, error) {
	m := map[string]*float64{}
	for k, v := range map[string]float64{
		"ours_p99_vs_quiet": r.OursP99VsQuiet, "native_p99_vs_quiet": r.NativeP99VsQuiet,
		"ours_max_lag_vs_max_lag_ms": r.OursLagVsMax, "native_max_lag_vs_max_lag_ms": r.NativeLagVsMax,
		"ours_time_vs_native": r.OursTimeVsNative, "ours_tps_vs_quiet": r.OursTPSVsQuiet, "native_tps_vs_quiet": r.NativeTPSVsQuiet,
	} {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			m[k] = &v
		}
	}
	return json.Marshal(m)
}

// MaxLagMs is the larger of the two lag readings' maxima.
func (l Lag) MaxLagMs() float64 { return max(l.MaxMs, l.MaxStandbyMs) }

func (r *Report) side(name string) (Side, bool) {
	for _, s := range r.Sides {
		if s.Name == name {
			return s, true
		}
	}
	return Side{}, false
}

// compare fills Ratios from the sides.
func (r *Report) compare() {
	q, _ := r.side(sideQuiet)
	o, _ := r.side(sideOurs)
	n, _ := r.side(sideNative)
	r.Ratios = Ratios{
		OursP99VsQuiet: ratio(o.Foreground.P99Ms, q.Foreground.P99Ms), NativeP99VsQuiet: ratio(n.Foreground.P99Ms, q.Foreground.P99Ms),
		OursLagVsMax: ratio(o.Lag.MaxLagMs(), float64(r.MaxLagMs)), NativeLagVsMax: ratio(n.Lag.MaxLagMs(), float64(r.MaxLagMs)),
		OursTimeVsNative: ratio(o.MaintenanceSeconds, n.MaintenanceSeconds),
		OursTPSVsQuiet:   ratio(o.Foreground.TPS, q.Foreground.TPS), NativeTPSVsQuiet: ratio(n.Foreground.TPS, q.Foreground.TPS),
	}
}

func ratio(a, b float64) float64 {
	if b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report: the context, one table, the ratios against
// the targets, each side's commands.
func (r *Report) WriteText(w io.Writer) error {
	d := r.Dataset
	rate := fmt.Sprintf("-R %d", r.Rate)
	if r.Rate <= 0 {
		rate = "no rate limit"
	}
	fmt.Fprintf(w, "maintenance impact on a pgbench workload, PostgreSQL %s, %d CPUs\n", r.Server, r.CPUs)
	fmt.Fprintf(w, "maintained: %s in %d tables, %d indexes (heap %s, indexes %s), %d dead tuples (%d %% deleted, %d %% updated), generated in %.0f s\n",
		pgbench.HumanBytes(d.DatabaseBytes), d.Tables, d.Indexes, pgbench.HumanBytes(d.HeapBytes), pgbench.HumanBytes(d.IndexBytes),
		d.DeadTuples, d.DeletePct, d.UpdatePct, d.GenSeconds)
	fmt.Fprintf(w, "foreground: pgbench tpcb-like -c %d -j %d %s on its own database (scale %d, %s), on the primary of a streaming standby;\n",
		r.Clients, r.Threads, rate, d.Scale, pgbench.HumanBytes(d.AppBytes))
	fmt.Fprintf(w, "every side from the same snapshot with a fresh standby; lag sampled every %d ms; ours: max_lag_ms=%d max_active_backends=%d intensity=%g, -j %d on both sides\n",
		r.SampleMs, r.MaxLagMs, r.MaxActive, r.Intensity, r.Jobs)
	if r.Runs > 1 {
		fmt.Fprintf(w, "%d rounds, the order rotating; each figure is the median of the side's rounds\n", r.Runs)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "side\tmaintenance s\tvacuum s\treindex s\tthrottled s\tTPS\tp50 ms\tp99 ms\tmax lag ms\tstandby view ms\tmax lag WAL\tover max_lag_ms s\tCPUs busy\t")
	for _, s := range r.Sides {
		maint, vac, rei, thr := "-", "-", "-", "-"
		if s.Name != sideQuiet {
			maint = fmt.Sprintf("%.1f", s.MaintenanceSeconds)
			if len(s.Steps) == 2 {
				vac, rei = fmt.Sprintf("%.1f", s.Steps[0].Seconds), fmt.Sprintf("%.1f", s.Steps[1].Seconds)
			}
		}
		if s.Name == sideOurs {
			thr = fmt.Sprintf("%.1f", float64(s.ThrottledMs)/1000)
		}
		name := s.Name
		if s.Name == sideQuiet {
			name = fmt.Sprintf("quiet (%.0f s)", s.WindowSeconds)
		}
		cpu := "-"
		if s.CPUsBusy > 0 {
			cpu = fmt.Sprintf("%.2f", s.CPUsBusy)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.1f\t%.2f\t%.2f\t%.0f\t%.0f\t%s\t%.1f\t%s\t\n", name, maint, vac, rei, thr,
			s.Foreground.TPS, s.Foreground.P50Ms, s.Foreground.P99Ms, s.Lag.MaxMs, s.Lag.MaxStandbyMs,
			pgbench.HumanBytes(s.Lag.MaxBytes), s.Lag.OverMs/1000, cpu)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	rt := r.Ratios
	fmt.Fprintf(w, "\nagainst the targets (printed, not asserted):\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  foreground p99 / quiet p99\tours %s\tnative %s\ttarget ours ≤ %.1f\n", fx(rt.OursP99VsQuiet), fx(rt.NativeP99VsQuiet), TargetP99)
	fmt.Fprintf(tw, "  max replica lag / max_lag_ms (%d)\tours %s\tnative %s\ttarget ours ≤ %.1f\n", r.MaxLagMs, fx(rt.OursLagVsMax), fx(rt.NativeLagVsMax), TargetLag)
	fmt.Fprintf(tw, "  maintenance time / native's\tours %s\t\ttarget ours ≤ %.1f\n", fx(rt.OursTimeVsNative), TargetTime)
	fmt.Fprintf(tw, "  foreground TPS / quiet TPS\tours %s\tnative %s\t\n", fx(rt.OursTPSVsQuiet), fx(rt.NativeTPSVsQuiet))
	fmt.Fprintf(tw, "  CPUs busy beyond quiet's\tours %s\tnative %s\t\n", r.extraCPU(sideOurs), r.extraCPU(sideNative))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, s := range r.Sides {
		for _, st := range s.Steps {
			line := fmt.Sprintf("%s: %s — %.1f s, foreground p99 %.1f ms, max lag %.0f ms", st.Name, st.Command, st.Seconds, st.P99Ms, st.MaxLagMs)
			if s.Name == sideOurs {
				line += fmt.Sprintf(", throttled %.1f s in %d waits", float64(st.ThrottledMs)/1000, st.Waits)
				if st.SleptMs > 0 {
					line += fmt.Sprintf(", intensity sleeps %.1f s", float64(st.SleptMs)/1000)
				}
				if len(st.Reasons) > 0 {
					line += " (" + strings.Join(st.Reasons, " | ") + ")"
				}
			}
			fmt.Fprintln(w, line)
		}
		if len(s.Runs) > 1 {
			fmt.Fprintf(w, "%s rounds: p99 %s ms; max lag %s ms; TPS %s", s.Name,
				joinRuns(s.Runs, func(x Side) float64 { return x.Foreground.P99Ms }, "%.1f"),
				joinRuns(s.Runs, func(x Side) float64 { return x.Lag.MaxLagMs() }, "%.0f"),
				joinRuns(s.Runs, func(x Side) float64 { return x.Foreground.TPS }, "%.1f"))
			if s.Name != sideQuiet {
				fmt.Fprintf(w, "; maintenance %s s", joinRuns(s.Runs, func(x Side) float64 { return x.MaintenanceSeconds }, "%.1f"))
			}
			fmt.Fprintln(w)
		}
		if s.Lag.Missing > 0 {
			fmt.Fprintf(w, "%s: %d lag sample(s) missing or without a standby\n", s.Name, s.Lag.Missing)
		}
	}
	_, err := fmt.Fprintf(w, "\nTPS, p50, p99: transactions completed in the window (the maintenance, or the quiet baseline), latency from the scheduled start (-R);\n"+
		"max lag ms: pg_stat_replication.replay_lag on the primary; standby view: now() − pg_last_xact_replay_timestamp() on the standby while WAL\n"+
		"waits to be replayed; both sampled from the window's start until %d s after its end. Total %.0f s.\n", r.TailSeconds, r.TotalSeconds)
	return err
}

// extraCPU renders how many CPUs a side kept busy beyond the quiet
// baseline on average, and the CPU time that adds up to over its
// maintenance ("-" without both measurements).
func (r *Report) extraCPU(name string) string {
	q, okq := r.side(sideQuiet)
	s, oks := r.side(name)
	if !okq || !oks || q.CPUsBusy <= 0 || s.CPUsBusy <= 0 {
		return "-"
	}
	d := s.CPUsBusy - q.CPUsBusy
	return fmt.Sprintf("%.2f (%.0f CPU·s)", d, d*s.MaintenanceSeconds)
}

// joinRuns lists one figure of every round.
func joinRuns(runs []Side, f func(Side) float64, format string) string {
	parts := make([]string, len(runs))
	for i, s := range runs {
		parts[i] = fmt.Sprintf(format, f(s))
	}
	return strings.Join(parts, ", ")
}

// fx formats a ratio.
func fx(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf("%.2f×", v)
}
