package daemon

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/internal/config"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with common
// name cn, and its key, to dir; it returns the file paths.
func writeCert(t *testing.T, dir, cn string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cf, kf := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	// Written beside and renamed, as rotation tools do.
	for _, f := range []struct {
		path, typ string
		b         []byte
	}{{cf, "CERTIFICATE", der}, {kf, "EC PRIVATE KEY", kb}} {
		tmp := f.path + ".tmp"
		if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.b}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			t.Fatal(err)
		}
	}
	return cf, kf
}

func startAPI(t *testing.T, cfg *config.Config, h http.Handler) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- ServeAPI(ctx, cfg, h, func(a string) { addr <- a }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case a := <-addr:
		return a
	case err := <-errc:
		t.Fatalf("serve: %v", err)
	}
	return ""
}

func apiConfig(listen string) *config.Config {
	cfg := &config.Config{API: config.APIConfig{Listen: listen}}
	cfg.ApplyDefaults()
	return cfg
}

// A non-loopback listen address without TLS is refused at start, with a
// message naming the way out; TLS or the explicit flag allow it.
func TestServeAPIRefusesInsecureListen(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.10:8080", "example.com:8080"} {
		err := ServeAPI(t.Context(), apiConfig(addr), http.NotFoundHandler(), nil)
		if err == nil || !strings.Contains(err.Error(), "allow_insecure_listen") || !strings.Contains(err.Error(), "tls_cert_file") {
			t.Errorf("%s: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		if err := apiConfig(addr).API.CheckListen(); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
	cfg := apiConfig("0.0.0.0:0")
	cfg.API.AllowInsecureListen = true
	startAPI(t, cfg, http.NotFoundHandler())
	cfg = apiConfig("0.0.0.0:0")
	cfg.API.TLSCertFile, cfg.API.TLSKeyFile = writeCert(t, t.TempDir(), "one")
	startAPI(t, cfg, http.NotFoundHandler())
}

// TLS is served from the configured files and a rotated pair is used
// without a restart.
func TestServeAPITLSReload(t *testing.T) {
	dir := t.TempDir()
	cfg := apiConfig("127.0.0.1:0")
	cfg.API.TLSCertFile, cfg.API.TLSKeyFile = writeCert(t, dir, "first")
	addr := startAPI(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	peer := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test's own self-signed certificate
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := peer(); cn != "first" {
		t.Fatalf("served %q", cn)
	}
	// Plain HTTP is not answered as HTTP.
	if resp, err := http.Get("http://" + addr + "/"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) == "ok" {
			t.Fatal("plain HTTP answered")
		}
	}
	time.Sleep(1100 * time.Millisecond) // a new mtime, and past the once-a-second check
	writeCert(t, dir, "second")
	deadline := time.Now().Add(5 * time.Second)
	for peer() != "second" {
		if time.Now().After(deadline) {
			t.Fatal("the rotated certificate was not picked up")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A broken pair keeps the last good one.
	time.Sleep(1100 * time.Millisecond)
	if err := os.WriteFile(cfg.API.TLSKeyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if cn := peer(); cn != "second" {
		t.Fatalf("served %q after a broken rotation", cn)
	}
	// Missing files are an error at start.
	bad := apiConfig("127.0.0.1:0")
	bad.API.TLSCertFile, bad.API.TLSKeyFile = filepath.Join(dir, "nope.crt"), filepath.Join(dir, "nope.key")
	if err := ServeAPI(t.Context(), bad, http.NotFoundHandler(), nil); err == nil || !strings.Contains(err.Error(), "api TLS") {
		t.Fatalf("missing files: %v", err)
	}
}

// A client that sends its body slowly is cut off by the read timeout; a
// slow header sender by the read-header timeout.
func TestServeAPISlowClientsCutOff(t *testing.T) {
	cfg := apiConfig("127.0.0.1:0")
	cfg.API.ReadTimeout = config.Duration(time.Second)
	cfg.API.ReadHeaderTimeout = config.Duration(500 * time.Millisecond)
	addr := startAPI(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusRequestTimeout)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	for name, send := range map[string]func(net.Conn){
		"slow body": func(c net.Conn) {
			_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
			for range 10 {
				time.Sleep(300 * time.Millisecond)
				if _, err := io.WriteString(c, " "); err != nil {
					return
				}
			}
		},
		"slow headers": func(c net.Conn) {
			_, _ = io.WriteString(c, "GET / HTTP/1.1\r\n")
			for range 10 {
				time.Sleep(200 * time.Millisecond)
				if _, err := io.WriteString(c, "X-A: b\r\n"); err != nil {
					return
				}
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			go send(c)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					t.Fatalf("answered 200")
				}
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("connection held for %s", d)
			}
			t.Logf("cut off after %s (%v)", time.Since(start).Round(time.Millisecond), err)
		})
	}
}

// The dev token file is 0600 whether it is created or already there with
// wider permissions; its token is kept.
func TestDevTokenFileMode(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{DataDir: dir}
	path, err := EnsureDevToken(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("created with %v (%v)", st.Mode(), err)
	}
	tok, _ := os.ReadFile(path)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg = &config.Config{DataDir: dir}
	if _, err := EnsureDevToken(cfg); err != nil {
		t.Fatal(err)
	}
	st, _ = os.Stat(path)
	again, _ := os.ReadFile(path)
	if st.Mode().Perm() != 0o600 || string(again) != string(tok) {
		t.Fatalf("existing file: mode %v, token kept %t", st.Mode(), string(again) == string(tok))
	}
}
