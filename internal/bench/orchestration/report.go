package orchestration

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Report is the bench's outcome: one table and its notes.
type Report struct {
	CPUs    int
	Machine string
	Rows    []Row
	Notes   []string
	// Failed names the phases that could not run, with their errors.
	Failed []string
	Total  time.Duration
}

// Row is one figure beside its reference and target.
type Row struct {
	Figure, Measured, Reference, Ratio, Target, Met string
}

// WriteText writes the table and the notes.
func (r *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "make bench: orchestration against the Temporal floor — %d CPUs (runtime.NumCPU), %s\n\n", r.CPUs, r.Machine)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tMEASURED\tREFERENCE\tRATIO\tTARGET\tMET")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", row.Figure, dash(row.Measured), dash(row.Reference), dash(row.Ratio), dash(row.Target), dash(row.Met))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w, "\nnotes:")
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
	if len(r.Failed) > 0 {
		fmt.Fprintln(w, "\nFAILED phases:")
		for _, f := range r.Failed {
			fmt.Fprintf(w, "  - %s\n", f)
		}
	}
	_, err := fmt.Fprintf(w, "\ntotal %s\n", r.Total.Round(time.Second))
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

func msText(d time.Duration) string {
	v := ms(d)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.2f ms", v)
	}
}

func ratioText(a, b time.Duration) (string, float64) {
	if b <= 0 {
		return "", 0
	}
	r := float64(a) / float64(b)
	return fmt.Sprintf("%.2f×", r), r
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
