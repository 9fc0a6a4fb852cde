package cmdutil_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/domain"
)

func TestFactoryResolvesConnection(t *testing.T) {
	env := map[string]string{}
	ios, _, _, _ := cmdutil.TestStreams(false)
	newF := func() *cmdutil.Factory {
		f := cmdutil.NewFactory(ios, "1.0")
		f.Getenv = func(k string) string { return env[k] }
		return f
	}
	if got := newF().ResolvedAPIURL(); got != client.DefaultBaseURL {
		t.Fatalf("default %q", got)
	}
	env[cmdutil.EnvAPIURL] = "http://env:1"
	if got := newF().ResolvedAPIURL(); got != "http://env:1" {
		t.Fatalf("env %q", got)
	}
	f := newF()
	root := &cobra.Command{Use: "themisctl", RunE: func(*cobra.Command, []string) error { return nil }}
	f.AddConnectionFlags(root.PersistentFlags())
	root.SetArgs([]string{"--api-url", "http://flag:2", "--token", "t0k"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if f.ResolvedAPIURL() != "http://flag:2" || f.Token != "t0k" {
		t.Fatalf("flags %q %q", f.ResolvedAPIURL(), f.Token)
	}
	if strings.Contains(root.PersistentFlags().Lookup("token").DefValue, "t0k") {
		t.Fatal("token shown as a default")
	}
	c1, err := f.APIClient()
	if err != nil || c1.BaseURL() != "http://flag:2" {
		t.Fatalf("client %v %v", c1, err)
	}
	if c2, _ := f.APIClient(); c2 != c1 {
		t.Fatal("client built twice")
	}
	bad := newF()
	bad.APIURL = "ftp://nope"
	if _, err := bad.APIClient(); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("bad URL: %v", err)
	}
}

func TestFactorySendsTokenFromEnv(t *testing.T) {
	var got string
	srv := apitest.NewServer(t, nil, api.Options{Authenticator: func(c *gin.Context) {
		got = c.GetHeader("Authorization")
		api.SetPrincipal(c, "x")
		c.Next()
	}})
	ios, _, _, _ := cmdutil.TestStreams(false)
	f := cmdutil.NewFactory(ios, "1.0")
	f.APIURL = srv.URL
	f.Getenv = func(k string) string {
		if k == cmdutil.EnvToken {
			return "from-env"
		}
		return ""
	}
	c, err := f.APIClient()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got != "Bearer from-env" {
		t.Fatalf("Authorization %q", got)
	}
}

func TestTablePrinter(t *testing.T) {
	for _, tty := range []bool{true, false} {
		ios, _, out, _ := cmdutil.TestStreams(tty)
		tp := cmdutil.NewTablePrinter(ios)
		tp.AddHeader("ID", "NAME")
		tp.AddRow("a", "first\tname")
		tp.AddRow("bbbbbb", "line\nbreak")
		if err := tp.Render(); err != nil {
			t.Fatal(err)
		}
		want := "a\tfirst name\nbbbbbb\tline break\n"
		if tty {
			want = "ID      NAME\na       first name\nbbbbbb  line break\n"
		}
		if out.String() != want {
			t.Errorf("tty=%v:\n%q\nwant\n%q", tty, out.String(), want)
		}
	}
}

func TestFormatting(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{cmdutil.FormatTime(0, true), "-"},
		{cmdutil.FormatTime(0, false), ""},
		{cmdutil.FormatTime(1_735_696_800_000, true), "2025-01-01 02:00:00 UTC"},
		{cmdutil.FormatTime(1_735_696_800_000, false), "2025-01-01T02:00:00Z"},
		{cmdutil.FormatDuration(0), "-"},
		{cmdutil.FormatDuration(250), "250ms"},
		{cmdutil.FormatDuration(12_345), "12.3s"},
		{cmdutil.FormatDuration(83_400), "1m23s"},
		{cmdutil.FormatPct(50), "50%"},
		{cmdutil.FormatPct(66.666), "66.7%"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	for _, ok := range []string{"table", "json", "yaml"} {
		if err := cmdutil.CheckOutput(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	if err := cmdutil.CheckOutput("yml"); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Errorf("yml accepted: %v", err)
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("x"), cmdutil.ExitFailure},
		{cmdutil.FlagErrorf("bad"), cmdutil.ExitUsage},
		{errors.New(`unknown command "x" for "themisctl"`), cmdutil.ExitUsage},
		{&cmdutil.ExitError{Code: 7}, 7},
		{fmt.Errorf("wrapped: %w", context.Canceled), cmdutil.ExitInterrupted},
		{&client.APIError{Status: 401, Code: "unauthorized"}, cmdutil.ExitAuth},
		{&client.APIError{Status: 403, Code: "forbidden"}, cmdutil.ExitAuth},
		{&client.APIError{Status: 503, Code: "unavailable"}, cmdutil.ExitUnavailable},
		{&client.APIError{Status: 404, Code: "not_found"}, cmdutil.ExitFailure},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, cmdutil.ExitUnavailable},
	} {
		if got := cmdutil.ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestExecute(t *testing.T) {
	mk := func(runE func(*cobra.Command, []string) error) *cobra.Command {
		root := &cobra.Command{Use: "themisctl"}
		sub := &cobra.Command{Use: "do", RunE: runE, Args: cmdutil.ExactArgs(1, "<thing>")}
		sub.Flags().Bool("flag", false, "")
		root.AddCommand(sub)
		return root
	}
	run := func(root *cobra.Command, args ...string) (int, string, string) {
		ios, _, out, errOut := cmdutil.TestStreams(false)
		root.SetArgs(args)
		code := cmdutil.Execute(context.Background(), root, ios)
		return code, out.String(), errOut.String()
	}
	ok := func(*cobra.Command, []string) error { return nil }
	if code, _, stderr := run(mk(ok), "do", "x"); code != 0 || stderr != "" {
		t.Fatalf("ok: %d %q", code, stderr)
	}
	code, stdout, stderr := run(mk(ok), "do", "x", "--nope")
	if code != cmdutil.ExitUsage || stdout != "" || stderr != "error: unknown flag: --nope\nRun 'themisctl do --help' for usage.\n" {
		t.Fatalf("bad flag: %d %q %q", code, stdout, stderr)
	}
	if code, _, stderr := run(mk(ok), "do"); code != cmdutil.ExitUsage || !strings.HasPrefix(stderr, "error: missing argument: <thing>\n") {
		t.Fatalf("missing arg: %d %q", code, stderr)
	}
	if code, _, stderr := run(mk(ok), "undo"); code != cmdutil.ExitUsage || !strings.HasPrefix(stderr, `error: unknown command "undo"`) {
		t.Fatalf("unknown command: %d %q", code, stderr)
	}
	apiErr := func(*cobra.Command, []string) error {
		return &client.APIError{Status: 503, Code: "unavailable", Detail: "Temporal is\nunavailable", RequestID: "r1"}
	}
	if code, _, stderr := run(mk(apiErr), "do", "x"); code != cmdutil.ExitUnavailable || stderr != "error: Temporal is unavailable [HTTP 503 unavailable, request r1]\n" {
		t.Fatalf("api error: %d %q", code, stderr)
	}
	silent := func(*cobra.Command, []string) error { return cmdutil.ErrSilent }
	if code, _, stderr := run(mk(silent), "do", "x"); code != cmdutil.ExitFailure || stderr != "" {
		t.Fatalf("silent: %d %q", code, stderr)
	}
	quietExit := func(*cobra.Command, []string) error { return &cmdutil.ExitError{Code: 3} }
	if code, _, stderr := run(mk(quietExit), "do", "x"); code != 3 || stderr != "" {
		t.Fatalf("exit error: %d %q", code, stderr)
	}
}

func TestResolveSchedule(t *testing.T) {
	srv := apitest.NewServer(t, nil, api.Options{})
	srv.Fake.SeedDefaults()
	// A schedule whose name looks like another's id.
	spec := domain.NewScheduleSpec("orders")
	spec.Name, spec.Tasks = "weekly-maintenance-copy", []domain.TaskType{domain.TaskQuotaCheck}
	srv.Fake.Seed("copy-1", spec)
	c, _ := client.New(srv.URL, "", srv.Client())
	ctx := context.Background()
	for ref, want := range map[string]string{
		"daily-maintenance":       "daily-maintenance",
		"Daily Maintenance":       "daily-maintenance",
		"weekly-maintenance-copy": "copy-1",
	} {
		s, err := cmdutil.ResolveSchedule(ctx, c, ref)
		if err != nil || s.ID != want {
			t.Errorf("%q: %v %v", ref, s.ID, err)
		}
	}
	_, err := cmdutil.ResolveSchedule(ctx, c, "DAILY MAINTENANCE")
	if err == nil || !strings.Contains(err.Error(), `did you mean "Daily Maintenance" (daily-maintenance)?`) {
		t.Fatalf("suggestion: %v", err)
	}
	srv.Fake.FailWith(apitest.MethodGetSchedule, domain.ErrUnavailable)
	_, err = cmdutil.ResolveSchedule(ctx, c, "daily-maintenance")
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
		t.Fatalf("server error not propagated: %v", err)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"1h":                   now.Add(-time.Hour),
		"90m":                  now.Add(-90 * time.Minute),
		"7d":                   now.Add(-7 * 24 * time.Hour),
		"2w":                   now.Add(-14 * 24 * time.Hour),
		"2025-01-01T02:00:00Z": time.Date(2025, 1, 1, 2, 0, 0, 0, time.UTC),
		"1735696800000":        time.Date(2025, 1, 1, 2, 0, 0, 0, time.UTC),
	} {
		got, err := cmdutil.ParseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-1h", "0s", "1y", "xd", "2025-13-01T00:00:00Z"} {
		if _, err := cmdutil.ParseSince(bad, now); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
			t.Errorf("%q: %v, want a usage error", bad, err)
		}
	}
}

func TestPrintYAML(t *testing.T) {
	type inner struct {
		B string `json:"b_key"`
	}
	v := struct {
		Z      string            `json:"z"`
		A      []inner           `json:"a_list"`
		Yes    string            `json:"yes_string"`
		Num    string            `json:"num_string"`
		N      int64             `json:"n"`
		F      float64           `json:"f"`
		Empty  []string          `json:"empty"`
		None   map[string]string `json:"none"`
		Nil    *inner            `json:"nil"`
		Omit   string            `json:"omit,omitempty"`
		Multi  string            `json:"multi"`
		Accent string            `json:"accent"`
	}{Z: "first", A: []inner{{"x"}, {"y: z"}}, Yes: "yes", Num: "0123", N: 1_735_696_800_000, F: 1.5,
		Empty: []string{}, None: map[string]string{}, Multi: "a\nb", Accent: "é<&>"}
	var out strings.Builder
	if err := cmdutil.PrintStructured(&out, "yaml", v); err != nil {
		t.Fatal(err)
	}
	want := `z: first
a_list:
  - b_key: x
  - b_key: 'y: z'
yes_string: "yes"
num_string: "0123"
"n": 1735696800000
f: 1.5
empty: []
none: {}
nil: null
multi: |-
  a
  b
accent: é<&>
`
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
	// The YAML reads back as the JSON does.
	var fromYAML, fromJSON any
	if err := yaml.Unmarshal([]byte(out.String()), &fromYAML); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(v)
	_ = json.Unmarshal(raw, &fromJSON)
	again, _ := json.Marshal(fromYAML)
	var roundTrip any
	_ = json.Unmarshal(again, &roundTrip)
	if !reflect.DeepEqual(roundTrip, fromJSON) {
		t.Fatalf("yaml %v\njson %v", roundTrip, fromJSON)
	}
}

// The token comes from --token-file, $THEMIS_TOKEN_FILE or $THEMIS_TOKEN;
// --token still works but warns that it shows in ps.
func TestFactoryTokenSources(t *testing.T) {
	var got string
	srv := apitest.NewServer(t, nil, api.Options{Authenticator: func(c *gin.Context) {
		got = c.GetHeader("Authorization")
		api.SetPrincipal(c, "x")
		c.Next()
	}})
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("  from-file \nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(dir, "env-token")
	if err := os.WriteFile(envFile, []byte("from-env-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, flag, flagFile string
		env                  map[string]string
		want                 string
		warn                 bool
	}{
		{"flag file", "", file, map[string]string{cmdutil.EnvToken: "from-env"}, "Bearer from-file", false},
		{"env file", "", "", map[string]string{cmdutil.EnvTokenFile: envFile, cmdutil.EnvToken: "from-env"}, "Bearer from-env-file", false},
		{"env", "", "", map[string]string{cmdutil.EnvToken: "from-env"}, "Bearer from-env", false},
		{"deprecated flag", "from-flag", file, nil, "Bearer from-flag", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = ""
			ios, _, _, errOut := cmdutil.TestStreams(false)
			f := cmdutil.NewFactory(ios, "1.0")
			f.APIURL, f.Token, f.TokenFile = srv.URL, tc.flag, tc.flagFile
			f.Getenv = func(k string) string { return tc.env[k] }
			c, err := f.APIClient()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Status(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Authorization %q, want %q", got, tc.want)
			}
			if warned := strings.Contains(errOut.String(), "ps"); warned != tc.warn {
				t.Fatalf("warning %t: %q", warned, errOut.String())
			}
		})
	}
	// A missing or empty token file is a usage error.
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, nil, 0o600)
	for _, f := range []string{filepath.Join(dir, "missing"), empty} {
		ios, _, _, _ := cmdutil.TestStreams(false)
		fac := cmdutil.NewFactory(ios, "1.0")
		fac.APIURL, fac.TokenFile = srv.URL, f
		fac.Getenv = func(string) string { return "" }
		if _, err := fac.APIClient(); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
			t.Fatalf("%s: %v", f, err)
		}
	}
}
