package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/themis-maintenance/themis/internal/config"
)

// ServeAPI serves the API gateway h as cfg.API says until ctx is done, then
// drains in-flight requests for up to 10 seconds:
//
//   - a listen address that is not loopback-only is refused without TLS
//     unless api.allow_insecure_listen is set (config.APIConfig.CheckListen);
//   - with api.tls_cert_file and api.tls_key_file it serves TLS (1.2 and
//     up), reading the pair again when either file's modification time or
//     size changes, so a rotated certificate is used without a restart;
//   - read-header, read (headers and body: a slow-body client is cut off),
//     write and idle timeouts from the config; long polls extend their own
//     connection's deadlines (api.holdConnection).
//
// ready, when not nil, receives the bound address once listening.
func ServeAPI(ctx context.Context, cfg *config.Config, h http.Handler, ready func(string)) error {
	a := cfg.API
	if err := a.CheckListen(); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: time.Duration(a.ReadHeaderTimeout),
		ReadTimeout:       time.Duration(a.ReadTimeout),
		WriteTimeout:      time.Duration(a.WriteTimeout),
		IdleTimeout:       time.Duration(a.IdleTimeout),
		MaxHeaderBytes:    64 << 10,
	}
	if a.TLS() {
		certs, err := NewCertReloader(a.TLSCertFile, a.TLSKeyFile)
		if err != nil {
			return err
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate}
	}
	return serve(ctx, srv, a.Listen, ready)
}

// ServeHTTP listens on addr until ctx is done, then drains in-flight
// requests for up to 10 seconds. ready, when not nil, receives the bound
// address once listening. It is for the worker's metrics endpoint; the API
// is served by ServeAPI.
func ServeHTTP(ctx context.Context, addr string, h http.Handler, ready func(string)) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
	return serve(ctx, srv, addr, ready)
}

func serve(ctx context.Context, srv *http.Server, addr string, ready func(string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	if srv.TLSConfig != nil {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// CertReloader serves a certificate and key pair from files, reading them
// again when either file changes (modification time or size, checked at
// most once a second). A pair that does not load keeps the previous one in
// use (and the error is returned by Err) until the files are fixed.
type CertReloader struct {
	certFile, keyFile string
	mu                sync.Mutex
	cert              *tls.Certificate
	stamp             string
	checked           time.Time
	err               error
}

// NewCertReloader loads the pair once; an error names the files.
func NewCertReloader(certFile, keyFile string) (*CertReloader, error) {
	r := &CertReloader{certFile: certFile, keyFile: keyFile}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *CertReloader) fileStamp() (string, error) {
	var s string
	for _, f := range []string{r.certFile, r.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		s += fmt.Sprintf("%d/%d;", st.ModTime().UnixNano(), st.Size())
	}
	return s, nil
}

// reload loads the pair when the files changed; callers hold no lock.
func (r *CertReloader) reload() error {
	stamp, err := r.fileStamp()
	if err != nil {
		return fmt.Errorf("api TLS: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checked = time.Now()
	if stamp == r.stamp && r.cert != nil {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		r.err = fmt.Errorf("api TLS: load %s and %s: %w", r.certFile, r.keyFile, err)
		return r.err
	}
	r.cert, r.stamp, r.err = &cert, stamp, nil
	return nil
}

// GetCertificate is tls.Config.GetCertificate.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	due := time.Since(r.checked) >= time.Second
	r.mu.Unlock()
	if due {
		_ = r.reload() // a broken pair keeps the previous one (Err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cert == nil {
		return nil, r.err
	}
	return r.cert, nil
}

// Err returns the error of the last reload, nil when it worked.
func (r *CertReloader) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}
