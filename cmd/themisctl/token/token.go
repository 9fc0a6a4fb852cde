// Package token holds `themisctl token create`: it makes a new API token
// locally (no API call) and prints it once together with the lines to add
// under auth.tokens in the config file, which stores only the token's
// SHA-256 digest.
package token

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/internal/auth"
)

// NewCmdToken returns `themisctl token` with its subcommands.
func NewCmdToken(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "token <command>",
		Aliases: []string{"tokens"},
		Short:   "Make API tokens (locally; the server keeps only their SHA-256)",
	}
	cmd.AddCommand(NewCmdCreate(f, nil))
	return cmdutil.Group(cmd)
}

// CreateOptions are the inputs of `token create`.
type CreateOptions struct {
	IO *cmdutil.IOStreams
	// NewToken makes the token. Optional: defaulted to auth.NewToken.
	NewToken func() (string, error)

	Name   string
	Scopes []string
	Output string
}

// Created is the JSON output of `token create`.
type Created struct {
	Name   string   `json:"name"`
	Token  string   `json:"token"`
	SHA256 string   `json:"sha256"`
	Scopes []string `json:"scopes"`
	// ConfigYAML is the entry to add under auth.tokens.
	ConfigYAML string `json:"config_yaml"`
}

// NewCmdCreate returns `token create`. runF replaces createRun in tests.
func NewCmdCreate(f *cmdutil.Factory, runF func(context.Context, *CreateOptions) error) *cobra.Command {
	opts := &CreateOptions{IO: f.IOStreams}
	var scopes string
	cmd := &cobra.Command{
		Use:   "create --name NAME --scopes SCOPE[,SCOPE]",
		Short: "Make a new API token and print its config entry",
		Long: "Make a new random API token. It is printed once, with the entry to add under auth.tokens in\n" +
			"the config file (name, SHA-256 digest, scopes); the server never stores the token itself.\n" +
			"Nothing is sent anywhere. The name becomes the principal in created_by, triggered_by and\n" +
			"the audit log.\n\n" +
			"Scopes: maintenance:read (every GET), maintenance:write (schedules, runs, cancel) and\n" +
			"maintenance:admin (forced runs, drills, the audit log); each includes the ones before it.\n" +
			"read, write and admin are accepted as short forms.",
		Example: `  themisctl token create --name ops-oncall --scopes maintenance:admin
  themisctl token create --name ci --scopes maintenance:read,maintenance:write
  THEMIS_TOKEN=$(themisctl token create --name dashboards --scopes read | head -1)`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			if !auth.ValidName(opts.Name) {
				return cmdutil.FlagErrorf("invalid --name %q: 1–64 letters, digits or . _ @ -", opts.Name)
			}
			items := strings.Split(scopes, ",")
			for i, s := range items {
				if s = strings.TrimSpace(s); s != "" && !strings.Contains(s, ":") {
					items[i] = "maintenance:" + s
				}
			}
			parsed, err := auth.ParseScopes(items)
			if err != nil {
				return cmdutil.FlagErrorf("invalid --scopes: %v", err)
			}
			opts.Scopes = parsed
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return createRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Name, "name", "n", "", "token name, the principal (required)")
	cmd.Flags().StringVarP(&scopes, "scopes", "s", "", "comma-separated scopes (required)")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("scopes")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

func createRun(_ context.Context, opts *CreateOptions) error {
	newToken := opts.NewToken
	if newToken == nil {
		newToken = auth.NewToken
	}
	tok, err := newToken()
	if err != nil {
		return err
	}
	out := Created{Name: opts.Name, Token: tok, SHA256: auth.Digest(tok), Scopes: opts.Scopes}
	out.ConfigYAML = ConfigEntry(out.Name, out.SHA256, out.Scopes)
	w := opts.IO.Out
	switch {
	case cmdutil.Structured(opts.Output):
		return cmdutil.PrintStructured(w, opts.Output, out)
	case opts.IO.IsTTY:
		fmt.Fprintf(w, "New API token %q (shown only now; store it in your secret manager):\n\n  %s\n\n", out.Name, tok)
		fmt.Fprintf(w, "Add this entry under auth.tokens in the config file and restart the API:\n\n")
		writeIndented(w, out.ConfigYAML, "  ")
		fmt.Fprintf(w, "\nThen use it with --token or %s.\n", cmdutil.EnvToken)
	default:
		fmt.Fprintln(w, tok)
		fmt.Fprint(w, out.ConfigYAML)
	}
	return nil
}

// ConfigEntry renders the auth.tokens entry of a token as three YAML
// lines: the list item "- name: NAME", then "sha256" (quoted hex) and
// "scopes" (a flow list such as [maintenance:read, maintenance:write]).
func ConfigEntry(name, digest string, scopes []string) string {
	return fmt.Sprintf("- name: %s\n  sha256: %q\n  scopes: [%s]\n", yamlScalar(name), digest, strings.Join(scopes, ", "))
}

// yamlScalar quotes name when YAML would read it as something other than
// that string (true, null, 123, 1e3...).
func yamlScalar(s string) string {
	var v any
	if err := yaml.Unmarshal([]byte("k: "+s), &v); err == nil {
		if m, ok := v.(map[string]any); ok {
			if got, ok := m["k"].(string); ok && got == s {
				return s
			}
		}
	}
	return fmt.Sprintf("%q", s)
}

func writeIndented(w io.Writer, text, indent string) {
	for _, line := range strings.SplitAfter(text, "\n") {
		if line != "" {
			fmt.Fprint(w, indent+line)
		}
	}
}
