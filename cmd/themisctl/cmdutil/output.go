package cmdutil

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// Output formats of -o/--output.
const (
	OutputTable = "table"
	OutputJSON  = "json"
	OutputYAML  = "yaml"
)

// AddOutputFlag registers -o/--output (table, json or yaml) bound to p.
func AddOutputFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "output", "o", OutputTable, "output format: table, json or yaml")
}

// CheckOutput validates an -o value.
func CheckOutput(format string) error {
	switch format {
	case OutputTable, OutputJSON, OutputYAML:
		return nil
	}
	return FlagErrorf("invalid --output %q: want table, json or yaml", format)
}

// Structured reports whether format is a machine-readable one (json or
// yaml) rather than a table.
func Structured(format string) bool {
	return format == OutputJSON || format == OutputYAML
}

// PrintStructured writes v as YAML when format is yaml, otherwise as JSON.
func PrintStructured(w io.Writer, format string, v any) error {
	if format == OutputYAML {
		return PrintYAML(w, v)
	}
	return PrintJSON(w, v)
}

// PrintYAML writes v as a YAML document with the same keys, key order and
// values as its JSON encoding: v is marshalled to JSON (so json tags,
// omitempty and MarshalJSON methods apply) and the JSON is re-emitted as
// block-style YAML.
func PrintYAML(w io.Writer, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("convert output to YAML: %w", err)
	}
	blockStyle(&doc)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	return enc.Close()
}

var yaml11Bools = map[string]bool{}

func init() {
	for _, b := range []string{"y", "yes", "on", "n", "no", "off"} {
		for _, v := range []string{b, strings.ToUpper(b[:1]) + b[1:], strings.ToUpper(b)} {
			yaml11Bools[v] = true
		}
	}
}

// blockStyle drops the flow and quoting styles the JSON source gave the
// nodes; the encoder still quotes strings that would read as another type
// ("123", "true"), and so does blockStyle for the YAML 1.1 booleans ("yes",
// "off") that older parsers would misread. Empty collections stay in flow
// style ({} and []).
func blockStyle(n *yaml.Node) {
	n.Style = 0
	switch {
	case (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) && len(n.Content) == 0:
		n.Style = yaml.FlowStyle
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str" && yaml11Bools[n.Value]:
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
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

// Clip shortens s to at most n runes, ending a cut string with "…".
func Clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
