package cmdutil

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// Output formats of -o/--output.
const (
	OutputTable = "table"
	OutputJSON  = "json"
)

// AddOutputFlag registers -o/--output (table or json) bound to p.
func AddOutputFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "output", "o", OutputTable, "output format: table or json")
}

// CheckOutput validates an -o value.
func CheckOutput(format string) error {
	switch format {
	case OutputTable, OutputJSON:
		return nil
	}
	return FlagErrorf("invalid --output %q: want table or json", format)
}

// PrintJSON writes v as indented JSON with a trailing newline.
func PrintJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// TablePrinter prints rows: on a terminal with a header and aligned
// columns, otherwise tab-separated without a header (for cut, awk...).
type TablePrinter struct {
	out    io.Writer
	tty    bool
	header []string
	rows   [][]string
}

// NewTablePrinter returns a printer for ios.Out.
func NewTablePrinter(ios *IOStreams) *TablePrinter {
	return &TablePrinter{out: ios.Out, tty: ios.IsTTY}
}

// AddHeader sets the column titles (printed on a terminal only).
func (t *TablePrinter) AddHeader(cols ...string) { t.header = cols }

// AddRow adds one row; tabs and newlines inside fields become spaces.
func (t *TablePrinter) AddRow(fields ...string) {
	row := make([]string, len(fields))
	for i, f := range fields {
		row[i] = strings.Join(strings.FieldsFunc(f, func(r rune) bool { return r == '\t' || r == '\n' || r == '\r' }), " ")
	}
	t.rows = append(t.rows, row)
}

// Render writes the table.
func (t *TablePrinter) Render() error {
	if !t.tty {
		for _, r := range t.rows {
			if _, err := fmt.Fprintln(t.out, strings.Join(r, "\t")); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(t.out, 0, 8, 2, ' ', 0)
	if len(t.header) > 0 {
		fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	}
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// FormatTime renders a _ms timestamp: "2006-01-02 15:04:05 UTC" on a
// terminal, RFC 3339 otherwise; 0 is "-" on a terminal and "" otherwise.
func FormatTime(ms int64, tty bool) string {
	if ms == 0 {
		if tty {
			return "-"
		}
		return ""
	}
	t := time.UnixMilli(ms).UTC()
	if tty {
		return t.Format("2006-01-02 15:04:05 UTC")
	}
	return t.Format(time.RFC3339)
}

// FormatDuration renders milliseconds as a rounded duration ("1m23s").
func FormatDuration(ms int64) string {
	if ms <= 0 {
		return "-"
	}
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// FormatPct renders a percentage without needless decimals.
func FormatPct(p float64) string {
	if p == float64(int64(p)) {
		return fmt.Sprintf("%d%%", int64(p))
	}
	return fmt.Sprintf("%.1f%%", p)
}

// YesNo renders a boolean for tables.
func YesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
