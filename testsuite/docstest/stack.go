package docstest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Stack is a running `themisctl dev` in a scratch working directory: its
// data dir is <Dir>/.data, so `.data/dev-token` works as the docs say.
type Stack struct {
	// Dir is the working directory of the stack and of the doc commands;
	// it holds bin/themisctl and bin/temporal.
	Dir string
	// BinDir is Dir/bin (on PATH for the doc commands).
	BinDir          string
	APIURL          string
	TemporalAddress string
	UIPort          string
	Token           string

	cmd  *exec.Cmd
	done chan error
	mu   sync.Mutex
	log  strings.Builder
}

// RepoRoot walks up from the working directory to go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// TemporalBinary finds the Temporal CLI: THEMIS_TEMPORAL_BIN, then
// <repo>/bin/temporal, then temporal on PATH.
func TemporalBinary(root string) (string, error) {
	if p := os.Getenv("THEMIS_TEMPORAL_BIN"); p != "" {
		return p, nil
	}
	if p := filepath.Join(root, "bin", "temporal"); isFile(p) {
		return p, nil
	}
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	return "", errors.New("no Temporal CLI: run `make temporal-cli` or set THEMIS_TEMPORAL_BIN")
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// freePort asks the kernel for an unused loopback port.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// BuildThemisctl builds cmd/themisctl of root into binDir.
func BuildThemisctl(ctx context.Context, root, binDir string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(binDir, "themisctl"), "./cmd/themisctl")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/themisctl: %w\n%s", err, out)
	}
	return nil
}

// StartStack runs `bin/themisctl dev` in dir on free ports and waits until
// the API answers with the dev token.
func StartStack(ctx context.Context, dir, temporalBin string) (*Stack, error) {
	s := &Stack{Dir: dir, BinDir: filepath.Join(dir, "bin"), done: make(chan error, 1)}
	// bin/temporal beside bin/themisctl, as `make run` leaves them.
	if err := os.Symlink(temporalBin, filepath.Join(s.BinDir, "temporal")); err != nil {
		return nil, fmt.Errorf("link temporal CLI: %w", err)
	}
	var ports [4]string
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	api := "127.0.0.1:" + ports[0]
	s.TemporalAddress = "127.0.0.1:" + ports[1]
	s.UIPort = ports[2]
	s.APIURL = "http://" + api
	s.cmd = exec.Command(filepath.Join(s.BinDir, "themisctl"), "dev", "--ui-port", s.UIPort)
	s.cmd.Dir = dir
	s.cmd.Env = append(cleanEnv(),
		"THEMIS_TEMPORAL_BIN="+temporalBin,
		"THEMIS_API_LISTEN="+api,
		"TEMPORAL_ADDRESS="+s.TemporalAddress,
		"THEMIS_WORKER_METRICS_LISTEN=127.0.0.1:"+ports[3],
	)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	s.cmd.Stdout, s.cmd.Stderr = pw, pw
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start themisctl dev: %w", err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.mu.Lock()
			s.log.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
		}
	}()
	go func() { err := s.cmd.Wait(); pw.Close(); s.done <- err }()

	tokenFile := filepath.Join(dir, ".data", "dev-token")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case err := <-s.done:
			return nil, fmt.Errorf("themisctl dev exited early (%v):\n%s", err, s.Log())
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("themisctl dev not ready within 2 minutes:\n%s", s.Log())
		}
		raw, err := os.ReadFile(tokenFile)
		if err != nil || strings.TrimSpace(string(raw)) == "" {
			continue
		}
		s.Token = strings.TrimSpace(string(raw))
		if s.ready() {
			return s, nil
		}
	}
}

// ready: GET /status answers 200 with the dev token, and the cached health
// report is healthy. Its first probes may run before the worker polls (a
// module not OK is probed again within 5 s), and the docs run `themisctl
// health` first thing, as an operator does a few seconds after `make run`.
func (s *Stack) ready() bool {
	get := func(path string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodGet, s.APIURL+"/api/v1/maintenance"+path, nil)
		req.Header.Set("Authorization", "Bearer "+s.Token)
		return http.DefaultClient.Do(req)
	}
	resp, err := get("/status")
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	resp, err = get("/health")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var rep struct {
		OverallStatus string `json:"overall_status"`
	}
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&rep) == nil && rep.OverallStatus == "healthy"
}

// Env is the environment of the doc commands: themisctl and temporal on
// PATH, the API URL and token, the Temporal address.
func (s *Stack) Env() []string {
	return append(cleanEnv(),
		"PATH="+s.BinDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"THEMIS_API_URL="+s.APIURL,
		"THEMIS_TOKEN="+s.Token,
		"TEMPORAL_ADDRESS="+s.TemporalAddress,
		"THEMIS_TEMPORAL_UI=http://127.0.0.1:"+s.UIPort,
		"HOME="+s.Dir,
		"COLUMNS=200",
	)
}

// cleanEnv is the process environment without THEMIS_* and TEMPORAL_*
// (the stack and Env set their own; later entries of an exec env win).
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "THEMIS_") || strings.HasPrefix(kv, "TEMPORAL_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Log returns what the stack printed so far.
func (s *Stack) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// Stop interrupts the stack (it stops its dev server) and kills its process
// group if it has not exited within 30 s.
func (s *Stack) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
}
