package cmdutil

import (
	"bytes"
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
)

// IOStreams are the standard streams of a command. Commands write only
// through them, never to os.Stdout directly.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// IsTTY reports whether Out is a terminal: tables get headers and
	// aligned columns, times are friendly, progress is redrawn in place.
	// When false (piped), output is tab-separated and line-oriented.
	IsTTY bool
	// StdinTTY reports whether In is a terminal (confirmation prompts).
	StdinTTY bool
	// TerminalWidth returns the current width of the terminal Out is, in
	// columns, or 0 when unknown (not a terminal; tests). Asked on every
	// redraw, so a resized window is honoured. Optional.
	TerminalWidth func() int
}

// Width is TerminalWidth(), or 0 when it is not set.
func (s *IOStreams) Width() int {
	if s.TerminalWidth == nil {
		return 0
	}
	return s.TerminalWidth()
}

// System returns the process's streams with terminal detection.
func System() *IOStreams {
	ios := &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		IsTTY:    isTerminal(os.Stdout),
		StdinTTY: isTerminal(os.Stdin),
	}
	if ios.IsTTY {
		ios.TerminalWidth = func() int { return terminalWidth(ttyColumns(os.Stdout), os.Getenv("COLUMNS")) }
	}
	return ios
}

// terminalWidth is the width the terminal reports, else $COLUMNS, else 0.
func terminalWidth(cols int, env string) int {
	if cols > 0 {
		return cols
	}
	if n, err := strconv.Atoi(strings.TrimSpace(env)); err == nil && n > 0 {
		return n
	}
	return 0
}

// FitWidth cuts every line of s that would not fit in a terminal width
// columns wide, ending it with "…", so no line wraps: text redrawn in place
// then spans exactly as many rows as it has lines. A line may use width-1
// columns (a line filling the last column makes some terminals wrap). Width
// 0 or less leaves s as is. Columns are counted as runes; the text must not
// hold tabs or escape sequences.
func FitWidth(s string, width int) string {
	if width <= 0 {
		return s
	}
	limit := max(width-1, 1)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if utf8.RuneCountInString(l) > limit {
			r := []rune(l)
			lines[i] = string(r[:limit-1]) + "…"
		}
	}
	return strings.Join(lines, "\n")
}

func isTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// TestStreams returns streams over buffers for tests: in, out and errOut.
func TestStreams(tty bool) (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut, IsTTY: tty, StdinTTY: tty}, in, out, errOut
}

// ExecuteForTest runs cmd with args under ctx, with cobra's own output
// discarded (tests read the IOStreams), and returns its error.
func ExecuteForTest(ctx context.Context, cmd *cobra.Command, args ...string) error {
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	return cmd.ExecuteContext(ctx)
}
