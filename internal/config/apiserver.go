package config

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults of the API's HTTP server.
const (
	DefaultAPIReadHeaderTimeout = 10 * time.Second
	DefaultAPIReadTimeout       = 30 * time.Second
	DefaultAPIWriteTimeout      = 30 * time.Second
	DefaultAPIIdleTimeout       = 120 * time.Second
	DefaultAPIDenialsPerMinute  = 60
	DefaultAPIDenialBurst       = 20
)

// applyServerEnv reads THEMIS_API_TLS_CERT_FILE, THEMIS_API_TLS_KEY_FILE
// and THEMIS_API_ALLOW_INSECURE_LISTEN (true/false).
func (a *APIConfig) applyServerEnv() {
	if v := os.Getenv("THEMIS_API_TLS_CERT_FILE"); v != "" {
		a.TLSCertFile = v
	}
	if v := os.Getenv("THEMIS_API_TLS_KEY_FILE"); v != "" {
		a.TLSKeyFile = v
	}
	if v := os.Getenv("THEMIS_API_ALLOW_INSECURE_LISTEN"); v != "" {
		if b, err := strconv.ParseBool(v); err == nil {
			a.AllowInsecureListen = b
		}
	}
}

func (a *APIConfig) applyServerDefaults() {
	for _, d := range []struct {
		p *Duration
		v time.Duration
	}{
		{&a.ReadHeaderTimeout, DefaultAPIReadHeaderTimeout}, {&a.ReadTimeout, DefaultAPIReadTimeout},
		{&a.WriteTimeout, DefaultAPIWriteTimeout}, {&a.IdleTimeout, DefaultAPIIdleTimeout},
	} {
		if *d.p == 0 {
			*d.p = Duration(d.v)
		}
	}
	if a.DenialsPerMinute == 0 {
		a.DenialsPerMinute = DefaultAPIDenialsPerMinute
	}
	if a.DenialBurst == 0 {
		a.DenialBurst = DefaultAPIDenialBurst
	}
	a.TLSCertFile, a.TLSKeyFile = absPath(a.TLSCertFile), absPath(a.TLSKeyFile)
}

// TLS reports whether the API is served over TLS.
func (a *APIConfig) TLS() bool { return a.TLSCertFile != "" }

func (a *APIConfig) validateServer() error {
	if (a.TLSCertFile == "") != (a.TLSKeyFile == "") {
		return fmt.Errorf("config: api.tls_cert_file and api.tls_key_file go together: set both or neither")
	}
	for name, d := range map[string]Duration{"read_header_timeout": a.ReadHeaderTimeout, "read_timeout": a.ReadTimeout,
		"write_timeout": a.WriteTimeout, "idle_timeout": a.IdleTimeout} {
		if d < 0 {
			return fmt.Errorf("config: api.%s must not be negative", name)
		}
	}
	if a.DenialsPerMinute < 0 || a.DenialBurst < 0 {
		return fmt.Errorf("config: api.denials_per_minute and api.denial_burst must not be negative")
	}
	return nil
}

// CheckListen (called when the API starts to listen: worker-only processes
// do not listen) refuses a listen address that is not loopback-only when the
// API has no TLS, unless AllowInsecureListen is set: bearer tokens would
// cross the network in clear text. An empty host (":8080", all
// interfaces) is not loopback.
func (a *APIConfig) CheckListen() error {
	if a.TLS() || a.AllowInsecureListen || a.Listen == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(a.Listen)
	if err != nil {
		return fmt.Errorf("config: api.listen %q: %v", a.Listen, err)
	}
	if LoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("config: api.listen %q is not a loopback address and the API has no TLS: set api.tls_cert_file and "+
		"api.tls_key_file, or api.allow_insecure_listen: true (THEMIS_API_ALLOW_INSECURE_LISTEN=true) when a TLS proxy "+
		"in front of it terminates TLS", a.Listen)
}

// LoopbackHost reports whether host names only loopback interfaces:
// localhost or a loopback IP.
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
