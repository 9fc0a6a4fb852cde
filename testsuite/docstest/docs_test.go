package docstest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// docFiles are the documents whose shell blocks run: README.md, then
// docs/*.md in name order.
func docFiles(t *testing.T, root string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return append([]string{filepath.Join(root, "README.md")}, files...)
}

func parseAll(t *testing.T, root string) map[string][]Block {
	t.Helper()
	out := map[string][]Block{}
	for _, f := range docFiles(t, root) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		blocks, err := Parse(rel, string(raw))
		if err != nil {
			t.Fatal(err)
		}
		out[rel] = blocks
	}
	return out
}

// TestDocsParse checks the markdown directives without running anything
// (fast: part of `make unit`).
func TestDocsParse(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	all := parseAll(t, root)
	if len(all) < 2 {
		t.Fatalf("no docs found under %s/docs", root)
	}
	total := 0
	for f, blocks := range all {
		for _, b := range blocks {
			if b.Mode != ModeSkip && strings.TrimSpace(b.Script) == "" {
				t.Errorf("%s:%d: empty %s block", f, b.Line, b.Lang)
			}
			total += b.Commands()
		}
	}
	if total == 0 {
		t.Fatal("no shell commands in the docs")
	}
}

// TestDocsCommands runs every shell block of the docs against a real
// `themisctl dev` stack; each file's blocks run in one bash, in order.
func TestDocsCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a Temporal dev server (runs without -short)")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	temporalBin, err := TemporalBinary(root)
	if err != nil {
		t.Fatal(err)
	}
	all := parseAll(t, root)

	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := BuildThemisctl(ctx, root, filepath.Join(dir, "bin")); err != nil {
		t.Fatal(err)
	}
	stack, err := StartStack(ctx, dir, temporalBin)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		stack.Stop()
		if t.Failed() {
			log := stack.Log()
			if len(log) > 64<<10 { // the head went into the failure already
				log = "[…]\n" + log[len(log)-64<<10:]
			}
			t.Logf("themisctl dev output (the end):\n%s", log)
		}
	}()
	t.Logf("dev stack: API %s, Temporal %s, UI port %s, dir %s", stack.APIURL, stack.TemporalAddress, stack.UIPort, dir)

	files := make([]string, 0, len(all))
	for f := range all {
		files = append(files, f)
	}
	sort.Slice(files, func(i, j int) bool { // README.md first
		if (files[i] == "README.md") != (files[j] == "README.md") {
			return files[i] == "README.md"
		}
		return files[i] < files[j]
	})

	ran, skipped, expectFail := 0, 0, 0
	for _, f := range files {
		blocks := all[f]
		n := 0
		for _, b := range blocks {
			switch b.Mode {
			case ModeSkip:
				skipped += b.Commands()
				t.Logf("%s:%d: skipped (%s)", b.File, b.Line, b.Reason)
				continue
			case ModeExpectFail:
				expectFail++
			}
			n += b.Commands()
		}
		if n == 0 {
			continue
		}
		ok := t.Run(strings.ReplaceAll(f, "/", "_"), func(t *testing.T) {
			fctx, fcancel := context.WithTimeout(ctx, 8*time.Minute)
			defer fcancel()
			cmd := exec.CommandContext(fctx, "bash", "-c", Script(blocks))
			cmd.Dir = dir
			cmd.Env = stack.Env()
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			err := cmd.Run()
			if err != nil {
				t.Fatalf("%s: %v after %s\n%s\nwarnings and errors of the stack:\n%s\noutput:\n%s", f, err, time.Since(start).Round(time.Millisecond),
					stack.ActiveJobs(), stack.Problems(40), out.String())
			}
			if testing.Verbose() {
				t.Logf("%s: %d commands in %s\n%s", f, n, time.Since(start).Round(time.Millisecond), out.String())
			}
		})
		if !ok {
			break
		}
		ran += n
	}
	t.Logf("docs test: %d commands ran (%d expect-fail blocks), %d skipped with a reason", ran, expectFail, skipped)
}
