package token

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/internal/auth"
	"github.com/themis-maintenance/themis/internal/config"
)

func execute(cmd *cobra.Command, args ...string) error {
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	return cmd.ExecuteContext(context.Background())
}

// factory is a factory without an API client: token create must not
// contact the API (a call would panic).
func factory(tty bool) *cmdutil.Factory {
	ios, _, _, _ := cmdutil.TestStreams(tty)
	f := cmdutil.NewFactory(ios, "test")
	f.APIClient = nil
	return f
}

func TestCreateArgs(t *testing.T) {
	var got *CreateOptions
	capture := func(_ context.Context, o *CreateOptions) error { got = o; return nil }
	f := factory(true)
	if err := execute(NewCmdCreate(f, capture), "--name", "ci", "--scopes", "maintenance:write, read"); err != nil ||
		got.Name != "ci" || strings.Join(got.Scopes, ",") != "maintenance:read,maintenance:write" {
		t.Fatalf("%v %+v", err, got)
	}
	for _, bad := range [][]string{
		{"--scopes", "read"}, {"--name", "ci"}, {"--name", "ci", "--scopes", ""}, {"--name", "ci", "--scopes", "root"},
		{"--name", "has space", "--scopes", "read"}, {"--name", "ci", "--scopes", "read", "-o", "xml"}, {"extra", "--name", "a", "--scopes", "read"},
	} {
		f := factory(true)
		if err := execute(NewCmdCreate(f, capture), bad...); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}

// The printed entry, pasted into a config, authenticates the printed token.
func roundTrip(t *testing.T, tok, entry string) {
	t.Helper()
	var cfg config.AuthConfig
	if err := yaml.Unmarshal([]byte("tokens:\n"+indent(entry)), &cfg); err != nil {
		t.Fatalf("entry is not YAML: %v\n%s", err, entry)
	}
	a, err := auth.New(cfg, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Authenticate("Bearer " + tok)
	if err != nil || id.Name != cfg.Tokens[0].Name {
		t.Fatalf("%+v %v", id, err)
	}
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			b.WriteString("  " + l)
		}
	}
	return b.String()
}

func TestCreateRun(t *testing.T) {
	fixed := func() (string, error) { return "thm_fixedTOKENfixedTOKENfixedTOKENfixedTOKEN12", nil }
	digest := auth.Digest("thm_fixedTOKENfixedTOKENfixedTOKENfixedTOKEN12")
	t.Run("piped", func(t *testing.T) {
		ios, _, out, errOut := cmdutil.TestStreams(false)
		o := &CreateOptions{IO: ios, NewToken: fixed, Name: "ci", Scopes: []string{"maintenance:read", "maintenance:write"}, Output: "table"}
		if err := createRun(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		want := "thm_fixedTOKENfixedTOKENfixedTOKENfixedTOKEN12\n- name: ci\n  sha256: \"" + digest + "\"\n  scopes: [maintenance:read, maintenance:write]\n"
		if out.String() != want || errOut.Len() != 0 {
			t.Fatalf("out %q\nwant %q", out, want)
		}
		lines := strings.SplitN(out.String(), "\n", 2)
		roundTrip(t, lines[0], lines[1])
	})
	t.Run("tty", func(t *testing.T) {
		ios, _, out, _ := cmdutil.TestStreams(true)
		o := &CreateOptions{IO: ios, NewToken: fixed, Name: "ops-oncall", Scopes: []string{"maintenance:admin"}, Output: "table"}
		if err := createRun(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		s := out.String()
		for _, want := range []string{"shown only now", "  thm_fixedTOKEN", "  - name: ops-oncall\n    sha256: \"" + digest + "\"\n    scopes: [maintenance:admin]\n", "THEMIS_TOKEN"} {
			if !strings.Contains(s, want) {
				t.Errorf("lacks %q:\n%s", want, s)
			}
		}
		if strings.Count(s, "thm_fixedTOKEN") != 1 {
			t.Error("token printed more than once")
		}
	})
	t.Run("json with a real token", func(t *testing.T) {
		ios, _, out, _ := cmdutil.TestStreams(false)
		o := &CreateOptions{IO: ios, Name: "true", Scopes: []string{"maintenance:admin"}, Output: "json"}
		if err := createRun(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		var c Created
		if err := json.Unmarshal(out.Bytes(), &c); err != nil || !strings.HasPrefix(c.Token, auth.TokenPrefix) || c.SHA256 != auth.Digest(c.Token) {
			t.Fatalf("%v %s", err, out)
		}
		if !strings.Contains(c.ConfigYAML, `name: "true"`) {
			t.Fatalf("YAML keyword not quoted: %s", c.ConfigYAML)
		}
		roundTrip(t, c.Token, c.ConfigYAML)
	})
}

func TestNewCmdToken(t *testing.T) {
	f := factory(false)
	cmd := NewCmdToken(f)
	if len(cmd.Commands()) != 1 || cmd.Commands()[0].Name() != "create" {
		t.Fatal("subcommands")
	}
}
