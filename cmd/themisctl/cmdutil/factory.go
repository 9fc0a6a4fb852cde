package cmdutil

import (
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
	// Token is the --token flag; empty means $THEMIS_TOKEN (no token when
	// both are empty).
	Token string
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
	fs.StringVar(&f.Token, "token", "", "API bearer token (env "+EnvToken+")")
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

// resolvedToken is the bearer token: flag, environment, then — only for an
// API on loopback — the local dev admin token `themisctl dev` keeps in
// <data dir>/dev-token ($THEMIS_DATA_DIR, default .data).
func (f *Factory) resolvedToken() string {
	if f.Token != "" {
		return f.Token
	}
	if v := f.getenv(EnvToken); v != "" {
		return v
	}
	return f.devToken()
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
		c, err := client.New(f.ResolvedAPIURL(), f.resolvedToken(), f.HTTPClient)
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
