package cmdutil

import (
	"bytes"
	"io"
	"os"

	"github.com/mattn/go-isatty"
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
}

// System returns the process's streams with terminal detection.
func System() *IOStreams {
	return &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		IsTTY:    isTerminal(os.Stdout),
		StdinTTY: isTerminal(os.Stdin),
	}
}

func isTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// TestStreams returns streams over buffers for tests: in, out and errOut.
func TestStreams(tty bool) (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut, IsTTY: tty, StdinTTY: tty}, in, out, errOut
}
