package cmdutil

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/themis-maintenance/themis/api/client"
)

// Environment variables of the client commands (docs/README.md).
const (
	EnvAPIURL = "THEMIS_API_URL"
	EnvToken  = "THEMIS_TOKEN"
	// EnvTokenFile names a file holding the token (first line; kept 0600).
	EnvTokenFile = "THEMIS_TOKEN_FILE"
)

// Factory hands commands their dependencies. Nothing is dialled or built
// when the factory or a command is constructed: APIClient builds the client
// on first use, after flags are parsed.
type Factory struct {
	IOStreams *IOStreams
	// APIClient returns the API client for APIURL and Token. Tests replace
	// it; by default it builds (once) a client.Client.
	APIClient func() (*client.Client, error)

	// APIURL is the --api-url flag; empty means $THEMIS_API_URL, then
	// client.DefaultBaseURL (http://127.0.0.1:8080).
	APIURL string
	// Token is the --token flag (deprecated: a flag's value shows in ps
	// and shell history); empty means --token-file, then $THEMIS_TOKEN_FILE,
	// then $THEMIS_TOKEN (no token when all are empty).
	Token string
	// TokenFile is the --token-file flag: a file whose first line is the
	// token.
	TokenFile string
	// Version is themisctl's version, sent in the User-Agent.
	Version string
	// HTTPClient is used by the default APIClient. Optional: defaulted to
	// a client with a 30-second timeout.
	HTTPClient *http.Client
	// Getenv reads the environment. Optional: defaulted to os.Getenv.
	Getenv func(string) string
	// PollInterval is how often --wait and --watch poll a job. Optional:
	// defaulted to 2 seconds.
	PollInterval time.Duration

	once      sync.Once
	apiClient *client.Client
	apiErr    error
	warned    bool
}

// NewFactory returns the factory of the themisctl client commands. Bind
// --api-url and --token with AddConnectionFlags on the root command.
func NewFactory(ios *IOStreams, version string) *Factory {
	f := &Factory{IOStreams: ios, Version: version}
	f.APIClient = f.defaultAPIClient
	return f
}

// AddConnectionFlags registers --api-url and --token on fs (normally the
// root command's persistent flags). Their defaults come from the
// environment at run time, so the token never appears in --help.
func (f *Factory) AddConnectionFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.APIURL, "api-url", "", "Themis API base URL (env "+EnvAPIURL+", default "+client.DefaultBaseURL+")")
	fs.StringVar(&f.Token, "token", "", "API bearer token; deprecated: it shows in ps and shell history, use --token-file or env "+EnvToken)
	fs.StringVar(&f.TokenFile, "token-file", "", "file holding the API bearer token (env "+EnvTokenFile+")")
}

// ResolvedAPIURL is the URL the client talks to: flag, environment, default.
func (f *Factory) ResolvedAPIURL() string {
	if f.APIURL != "" {
		return f.APIURL
	}
	if v := f.getenv(EnvAPIURL); v != "" {
		return v
	}
	return client.DefaultBaseURL
}

// resolvedToken is the bearer token: --token (deprecated, with a warning
// on stderr), --token-file, $THEMIS_TOKEN_FILE, $THEMIS_TOKEN, then — only
// for an API on loopback — the local dev admin token `themisctl dev` keeps
// in <data dir>/dev-token ($THEMIS_DATA_DIR, default .data). A token file
// that cannot be read is an error.
func (f *Factory) resolvedToken() (string, error) {
	if f.Token != "" {
		if !f.warned && f.IOStreams != nil && f.IOStreams.ErrOut != nil {
			f.warned = true
			fmt.Fprintf(f.IOStreams.ErrOut, "warning: --token shows in ps and shell history; use --token-file or %s / %s\n", EnvTokenFile, EnvToken)
		}
		return f.Token, nil
	}
	for _, file := range []string{f.TokenFile, f.getenv(EnvTokenFile)} {
		if file != "" {
			return ReadTokenFile(file)
		}
	}
	if v := f.getenv(EnvToken); v != "" {
		return v, nil
	}
	return f.devToken(), nil
}

// ReadTokenFile returns the first line of file, trimmed: the token. An
// empty file is an error.
func ReadTokenFile(file string) (string, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", FlagErrorf("read the token file: %v", err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	tok := strings.TrimSpace(line)
	if tok == "" {
		return "", FlagErrorf("the token file %s is empty", file)
	}
	return tok, nil
}

func (f *Factory) devToken() string {
	u, err := url.Parse(f.ResolvedAPIURL())
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return ""
	}
	dir := f.getenv("THEMIS_DATA_DIR")
	if dir == "" {
		dir = ".data"
	}
	raw, err := os.ReadFile(filepath.Join(dir, "dev-token"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(raw))
}

func (f *Factory) getenv(k string) string {
	if f.Getenv != nil {
		return f.Getenv(k)
	}
	return os.Getenv(k)
}

// Interval returns PollInterval or its default.
func (f *Factory) Interval() time.Duration {
	if f.PollInterval > 0 {
		return f.PollInterval
	}
	return 2 * time.Second
}

func (f *Factory) defaultAPIClient() (*client.Client, error) {
	f.once.Do(func() {
		tok, err := f.resolvedToken()
		if err != nil {
			f.apiErr = err
			return
		}
		c, err := client.New(f.ResolvedAPIURL(), tok, f.HTTPClient)
		if err != nil {
			f.apiErr = FlagErrorf("%v (set --api-url or %s)", err, EnvAPIURL)
			return
		}
		ua := "themisctl"
		if f.Version != "" {
			ua += "/" + f.Version
		}
		c.SetUserAgent(ua)
		f.apiClient = c
	})
	return f.apiClient, f.apiErr
}
