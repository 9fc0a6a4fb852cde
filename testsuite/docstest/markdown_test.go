package docstest

import (
	"os/exec"
	"strings"
	"testing"
)

func TestParseDirectivesAndConsole(t *testing.T) {
	md := "intro\n\n```sh\na=1 \\\n  b\necho $a\n```\n\n" +
		"<!-- docs-test: skip (needs a cluster) -->\n```bash\nkubectl apply\n```\n\n" +
		"<!-- docs-test: expect-fail -->\n```sh\nfalse\n```\n\n" +
		"```console\n$ echo hi\nhi\n$ true \\\n> && true\n```\n\n```yaml\nnot: run\n```\n"
	blocks, err := Parse("x.md", md)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 4 {
		t.Fatalf("got %d blocks, want 4: %+v", len(blocks), blocks)
	}
	if blocks[0].Commands() != 2 || blocks[0].Line != 3 {
		t.Errorf("block 0: %d commands at line %d, want 2 at 3", blocks[0].Commands(), blocks[0].Line)
	}
	if blocks[1].Mode != ModeSkip || blocks[1].Reason != "needs a cluster" {
		t.Errorf("block 1: %+v", blocks[1])
	}
	if blocks[2].Mode != ModeExpectFail {
		t.Errorf("block 2: %+v", blocks[2])
	}
	if got := blocks[3].Script; got != "echo hi\ntrue \\\n&& true" {
		t.Errorf("console script %q", got)
	}
}

func TestParseRefusesMisusedDirectives(t *testing.T) {
	for name, md := range map[string]string{
		"skip without reason": "<!-- docs-test: skip -->\n```sh\ntrue\n```\n",
		"unknown directive":   "<!-- docs-test: maybe -->\n```sh\ntrue\n```\n",
		"not before a block":  "<!-- docs-test: expect-fail -->\ntext\n```sh\ntrue\n```\n",
		"before yaml":         "<!-- docs-test: expect-fail -->\n```yaml\na: 1\n```\n",
		"unclosed fence":      "```sh\ntrue\n",
	} {
		if _, err := Parse("x.md", md); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestScriptStopsAtFailure: the generated program fails on a failing
// command (naming its block), fails when an expect-fail block succeeds,
// and keeps variables from one block to the next.
func TestScriptStopsAtFailure(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	run := func(blocks ...Block) (string, error) {
		out, err := exec.Command("bash", "-c", Script(blocks)).CombinedOutput()
		return string(out), err
	}
	ok := Block{File: "a.md", Line: 1, Script: "X=42"}
	uses := Block{File: "a.md", Line: 5, Script: "test \"$X\" = 42"}
	if out, err := run(ok, uses); err != nil {
		t.Fatalf("variables do not carry over: %v\n%s", err, out)
	}
	fails := Block{File: "a.md", Line: 9, Script: "true\nfalse\necho not reached"}
	out, err := run(ok, fails)
	if err == nil || !strings.Contains(out, "a.md:9") || strings.Contains(out, "not reached") {
		t.Fatalf("a failing command did not stop the script: %v\n%s", err, out)
	}
	if _, err := run(Block{File: "a.md", Line: 3, Mode: ModeExpectFail, Script: "false"}); err != nil {
		t.Fatalf("expect-fail block that fails: %v", err)
	}
	if _, err := run(Block{File: "a.md", Line: 3, Mode: ModeExpectFail, Script: "true"}); err == nil {
		t.Fatal("expect-fail block that succeeds passed")
	}
	if _, err := run(Block{File: "a.md", Line: 3, Mode: ModeSkip, Reason: "r", Script: "false"}); err != nil {
		t.Fatalf("a skipped block ran: %v", err)
	}
}
