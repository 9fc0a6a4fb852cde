package cmdutil

import "testing"

func TestTerminalWidth(t *testing.T) {
	for _, tc := range []struct {
		cols int
		env  string
		want int
	}{{120, "80", 120}, {0, "80", 80}, {0, " 100 ", 100}, {0, "", 0}, {0, "wide", 0}, {0, "-3", 0}} {
		if got := terminalWidth(tc.cols, tc.env); got != tc.want {
			t.Errorf("terminalWidth(%d, %q) = %d, want %d", tc.cols, tc.env, got, tc.want)
		}
	}
	var ios IOStreams
	if ios.Width() != 0 {
		t.Fatal("unset width")
	}
	ios.TerminalWidth = func() int { return 33 }
	if ios.Width() != 33 {
		t.Fatal("width")
	}
}

func TestFitWidth(t *testing.T) {
	in := "short\n0123456789\n  ● running  [####] 50%\n\n"
	for _, tc := range []struct {
		width int
		want  string
	}{
		{0, in},
		{-1, in},
		{80, in},
		{25, in},
		{11, "short\n0123456789\n  ● runni…\n\n"},
		{10, "short\n01234567…\n  ● runn…\n\n"},
		{6, "short\n0123…\n  ● …\n\n"},
		{2, "…\n…\n…\n\n"},
		{1, "…\n…\n…\n\n"},
	} {
		if got := FitWidth(in, tc.width); got != tc.want {
			t.Errorf("width %d: %q, want %q", tc.width, got, tc.want)
		}
	}
}
