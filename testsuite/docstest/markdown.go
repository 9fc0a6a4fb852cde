// Package docstest runs every shell command in the repository's README.md
// and docs/*.md against a real dev stack (`themisctl dev`: a Temporal dev
// server, a worker and the API on the demo SQLite database), so that the
// documentation cannot drift from what the CLI and the API do.
//
// A fenced block tagged sh, bash, shell or console is run; a console block
// runs only its "$ " lines. An HTML comment on the line before the fence
// changes that:
//
//	<!-- docs-test: skip (needs a Kubernetes cluster) -->   not run; the reason is required
//	<!-- docs-test: expect-fail -->                          must exit non-zero
//
// The blocks of one file run in order in one bash process (set -e -o
// pipefail), so a variable set by one block is seen by the next.
package docstest

import (
	"bufio"
	"fmt"
	"regexp"
	"strings"
)

// Mode says how a block is treated.
type Mode int

// Block modes.
const (
	ModeRun Mode = iota
	ModeSkip
	ModeExpectFail
)

// Block is one fenced shell block of a markdown file.
type Block struct {
	File string
	// Line is the 1-based line of the opening fence.
	Line int
	Lang string
	Mode Mode
	// Reason is the skip reason.
	Reason string
	// Script is the code to run (for console blocks: the "$ " lines).
	Script string
}

// Commands counts the block's commands: non-empty, non-comment logical
// lines (a line ending in a backslash continues the next).
func (b Block) Commands() int {
	n := 0
	cont := false
	inHeredoc := ""
	for _, l := range strings.Split(b.Script, "\n") {
		t := strings.TrimSpace(l)
		if inHeredoc != "" {
			if t == inHeredoc {
				inHeredoc = ""
			}
			continue
		}
		if m := heredoc.FindStringSubmatch(t); m != nil {
			inHeredoc = m[1]
		}
		if t == "" || strings.HasPrefix(t, "#") {
			cont = false
			continue
		}
		if !cont && !isContinuationKeyword(t) {
			n++
		}
		cont = strings.HasSuffix(t, "\\") || strings.HasSuffix(t, "|") || strings.HasSuffix(t, "&&") || strings.HasSuffix(t, "||")
	}
	return n
}

var heredoc = regexp.MustCompile(`<<-?\s*'?"?([A-Za-z_]+)'?"?`)

// isContinuationKeyword: lines that belong to the compound command begun
// above (do, done, then, fi ...).
func isContinuationKeyword(t string) bool {
	for _, k := range []string{"do", "done", "then", "else", "elif", "fi", "esac", "}", ")", ";;"} {
		if t == k || strings.HasPrefix(t, k+" ") || strings.HasPrefix(t, k+";") {
			return true
		}
	}
	return false
}

var (
	fence     = regexp.MustCompile("^(\\s*)(```+|~~~+)\\s*([A-Za-z0-9_-]*)")
	directive = regexp.MustCompile(`^<!--\s*docs-test:\s*([a-z-]+)\s*(?:\((.*)\))?\s*-->$`)
)

// shellLangs are the fence tags whose blocks run.
var shellLangs = map[string]bool{"sh": true, "bash": true, "shell": true, "console": true}

// Parse returns the shell blocks of one markdown document. A misused
// directive (unknown word, skip without a reason, not followed by a shell
// fence) is an error.
func Parse(file, text string) ([]Block, error) {
	var out []Block
	var pending *Block // directive seen, waiting for its fence
	pendingLine := 0
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		t := strings.TrimSpace(line)
		if m := directive.FindStringSubmatch(t); m != nil {
			b := Block{File: file}
			switch m[1] {
			case "skip":
				if strings.TrimSpace(m[2]) == "" {
					return nil, fmt.Errorf("%s:%d: docs-test: skip needs a reason in parentheses", file, lineNo)
				}
				b.Mode, b.Reason = ModeSkip, strings.TrimSpace(m[2])
			case "expect-fail":
				b.Mode = ModeExpectFail
			default:
				return nil, fmt.Errorf("%s:%d: unknown docs-test directive %q (skip, expect-fail)", file, lineNo, m[1])
			}
			pending, pendingLine = &b, lineNo
			continue
		}
		m := fence.FindStringSubmatch(line)
		if m == nil {
			if pending != nil && t != "" {
				return nil, fmt.Errorf("%s:%d: docs-test directive not directly followed by a shell block", file, pendingLine)
			}
			continue
		}
		// An opening fence: read to its closing fence.
		indent, marker, lang := m[1], m[2], strings.ToLower(m[3])
		start := lineNo
		var body []string
		closed := false
		for sc.Scan() {
			lineNo++
			l := sc.Text()
			if strings.HasPrefix(strings.TrimSpace(l), marker) && strings.TrimSpace(strings.Trim(strings.TrimSpace(l), marker[:1])) == "" {
				closed = true
				break
			}
			body = append(body, strings.TrimPrefix(l, indent))
		}
		if !closed {
			return nil, fmt.Errorf("%s:%d: unclosed code fence", file, start)
		}
		if !shellLangs[lang] {
			if pending != nil {
				return nil, fmt.Errorf("%s:%d: docs-test directive before a %q block (only sh, bash, shell, console run)", file, pendingLine, lang)
			}
			continue
		}
		b := Block{File: file}
		if pending != nil {
			b = *pending
			pending = nil
		}
		b.Line, b.Lang = start, lang
		if lang == "console" {
			b.Script = consoleCommands(body)
		} else {
			b.Script = strings.Join(body, "\n")
		}
		out = append(out, b)
	}
	if pending != nil {
		return nil, fmt.Errorf("%s:%d: docs-test directive at the end of the file", file, pendingLine)
	}
	return out, sc.Err()
}

// consoleCommands keeps the "$ " lines of a console block (and the lines
// continuing them after a trailing backslash).
func consoleCommands(lines []string) string {
	var out []string
	cont := false
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "$ "):
			out = append(out, strings.TrimPrefix(l, "$ "))
		case cont:
			out = append(out, strings.TrimPrefix(l, "> "))
		default:
			continue
		}
		cont = strings.HasSuffix(strings.TrimSpace(l), "\\")
	}
	return strings.Join(out, "\n")
}

// Script builds the bash program that runs blocks in order: each block is
// announced on stderr, a failing command stops the program with its
// location, and an expect-fail block runs in a subshell that must fail.
func Script(blocks []Block) string {
	var sb strings.Builder
	sb.WriteString("set -E -e -o pipefail\n")
	sb.WriteString(`trap 'rc=$?; echo "docs-test: FAILED (exit $rc) in $DOCS_BLOCK: $BASH_COMMAND" >&2' ERR` + "\n")
	for _, b := range blocks {
		if b.Mode == ModeSkip {
			continue
		}
		loc := fmt.Sprintf("%s:%d", b.File, b.Line)
		fmt.Fprintf(&sb, "DOCS_BLOCK=%q\necho \"docs-test: running %s\" >&2\n", loc, loc)
		if b.Mode == ModeExpectFail {
			fmt.Fprintf(&sb, "if (\n%s\n); then echo \"docs-test: %s was expected to fail and succeeded\" >&2; exit 97; fi\n", b.Script, loc)
			continue
		}
		sb.WriteString(b.Script)
		sb.WriteString("\n")
	}
	sb.WriteString("echo 'docs-test: all blocks done' >&2\n")
	return sb.String()
}
