package deploy

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/cmd/themisctl/serve"
	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/internal/daemon"
	"github.com/themis-maintenance/themis/internal/telemetry"
	"github.com/themis-maintenance/themis/workflows"
)

// image is the image name the Dockerfile is built as everywhere.
const image = "themis-maintenance:latest"

// envNames are the environment variables the code reads: every
// "THEMIS_*" / "TEMPORAL_*" string literal of the packages that read the
// environment (config, the Temporal client, pgbin, the serve commands).
func envNames(t *testing.T) []string {
	t.Helper()
	re := regexp.MustCompile(`"((?:THEMIS|TEMPORAL)_[A-Z0-9_]+)"`)
	var out []string
	for _, dir := range []string{"../internal/config", "../internal/temporalclient", "../driver/postgres/pgbin", "../cmd/themisctl/serve"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range re.FindAllStringSubmatch(string(raw), -1) {
				if !slices.Contains(out, m[1]) {
					out = append(out, m[1])
				}
			}
		}
	}
	if !slices.Contains(out, "THEMIS_CONFIG") || !slices.Contains(out, "TEMPORAL_ADDRESS") {
		t.Fatalf("env names not found in the code: %v", out)
	}
	return out
}

// searchAttributes are the attribute names the workflows set.
func searchAttributes() []string {
	return []string{workflows.ScheduleIDKey.GetName(), workflows.TargetKey.GetName(), workflows.JobStateKey.GetName(), workflows.ScheduleNameKey.GetName()}
}

// subcommand is the themisctl subcommand name of a cobra Use line.
func subcommands() map[string]bool {
	return map[string]bool{serve.NewCmdWorker(nil).Name(): true, serve.NewCmdAPI(nil).Name(): true, serve.NewCmdServer(nil).Name(): true}
}

// loadConfig loads raw with the real loader (strict: unknown keys fail),
// with dsnEnv variables set and tokens, when given, as auth.tokens_file.
func loadConfig(t *testing.T, raw string, tokens string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "THEMIS_") || strings.HasPrefix(k, "TEMPORAL_") {
			t.Setenv(k, "")
		}
	}
	if tokens != "" {
		tf := filepath.Join(dir, "tokens.yaml")
		if err := os.WriteFile(tf, []byte(tokens), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("THEMIS_TOKENS_FILE", tf)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config does not load: %v\n%s", err, raw)
	}
	return cfg
}

func portOf(t *testing.T, listen string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The Dockerfile: multi-stage, static binary, non-root user, PostgreSQL 15
// binaries where pgbin looks, the ports the configs listen on.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, exposed []string
	var user string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "FROM":
			froms = append(froms, f[1])
		case "EXPOSE":
			exposed = append(exposed, f[1:]...)
		case "USER":
			user = f[1]
		}
	}
	text := string(raw)
	switch {
	case len(froms) < 2:
		t.Errorf("not multi-stage: FROM %v", froms)
	case !strings.Contains(text, "CGO_ENABLED=0"):
		t.Error("binary not static (CGO_ENABLED=0)")
	case user == "" || strings.HasPrefix(user, "0") || user == "root":
		t.Errorf("USER %q is not a non-root user", user)
	case !strings.Contains(text, "postgresql-15") || !strings.Contains(text, "THEMIS_PG_BINDIR=/usr/lib/postgresql/15/bin"):
		t.Error("no PostgreSQL 15 binaries for the restore steps")
	case !strings.Contains(text, "./cmd/themisctl"):
		t.Error("does not build cmd/themisctl")
	}
	if !slices.Contains(exposed, strconv.Itoa(portOf(t, "0.0.0.0:8080"))) || !slices.Contains(exposed, "9464") {
		t.Errorf("EXPOSE %v lacks 8080 and 9464", exposed)
	}
	if !slices.Contains(envNames(t), "THEMIS_PG_BINDIR") {
		t.Error("THEMIS_PG_BINDIR is not read by the code")
	}
}

// decodeDocs splits a multi-document YAML file.
func docs(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(d, "")) != "" {
			out = append(out, d)
		}
	}
	return out
}

func strict(t *testing.T, doc string, v any) {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("strict decode: %v\n%s", err, doc)
	}
}

// The worker's /healthz is served where the probes look.
func TestWorkerProbePaths(t *testing.T) {
	cfg := &config.Config{}
	tel, err := telemetry.Setup("themis-deploy-test")
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	rec := httptest.NewRecorder()
	daemon.WorkerHandler(cfg, tel, nil).ServeHTTP(rec, httptest.NewRequest("GET", api.HealthzPath, nil))
	if rec.Code != 200 {
		t.Errorf("worker %s: %d", api.HealthzPath, rec.Code)
	}
}

// yamlUnmarshal decodes without the strict check (to read a document's kind).
func yamlUnmarshal(doc string, v any) error { return yaml.Unmarshal([]byte(doc), v) }
