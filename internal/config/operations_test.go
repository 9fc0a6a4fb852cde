package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLogAndWorkerTuning(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte("data_dir: "+dir+"\n"+s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("log: {format: json, level: debug}\nworker:\n  max_concurrent_activities: 4\n  activity_pollers: 2\n  workflow_pollers: 3\n  max_concurrent_workflow_tasks: 8\n  stop_timeout: 2m\n")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Format != "json" || cfg.Log.Level != "debug" || cfg.Worker.MaxConcurrentActivities != 4 || cfg.Worker.ActivityPollers != 2 ||
		cfg.Worker.WorkflowPollers != 3 || cfg.Worker.MaxConcurrentWorkflowTasks != 8 || time.Duration(cfg.Worker.StopTimeout) != 2*time.Minute {
		t.Errorf("loaded %+v %+v", cfg.Log, cfg.Worker)
	}
	t.Setenv("THEMIS_LOG_LEVEL", "warn")
	if cfg, err = Load(path); err != nil || cfg.Log.Level != "warn" {
		t.Errorf("THEMIS_LOG_LEVEL: %v %q", err, cfg.Log.Level)
	}
	for bad, want := range map[string]string{
		"log: {format: xml}\n":                      "log.format",
		"log: {level: loud}\n":                      "log.level",
		"worker: {max_concurrent_activities: -1}\n": "max_concurrent_activities",
		"worker: {stop_timeout: -5s}\n":             "stop_timeout",
		"worker: {max_concurrent_activitys: 3}\n":   "max_concurrent_activitys",
	} {
		t.Setenv("THEMIS_LOG_LEVEL", "")
		write(bad)
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one naming %s", bad, err, want)
		}
	}
}

func TestTokensFile(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.yaml")
	digest := strings.Repeat("ab", 32)
	if err := os.WriteFile(tokens, []byte("- name: ops\n  sha256: "+digest+"\n  scopes: [maintenance:admin]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte("data_dir: "+dir+"\nauth:\n  tokens_file: "+tokens+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Auth.Tokens) != 1 || cfg.Auth.Tokens[0].SHA256 != digest {
		t.Errorf("tokens %+v", cfg.Auth.Tokens)
	}
	if err := os.WriteFile(tokens, []byte("- name: ops\n  sha: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "tokens_file") {
		t.Errorf("unknown field in tokens file: %v", err)
	}
}

// The standard Temporal environment variables and a Temporal client
// profile: environment over the config file over the profile.
func TestTemporalEnvAndProfile(t *testing.T) {
	dir := t.TempDir()
	toml := filepath.Join(dir, "temporal.toml")
	if err := os.WriteFile(toml, []byte(`[profile.prod]
address = "prod.tmprl.cloud:7233"
namespace = "prod-ns"
[profile.prod.tls]
client_cert_path = "/certs/prod.pem"
client_key_path = "/certs/prod.key"
server_name = "prod.tmprl.cloud"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte("data_dir: "+dir+"\ntemporal:\n  namespace: from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEMPORAL_CONFIG_FILE", toml)
	t.Setenv("TEMPORAL_PROFILE", "prod")
	t.Setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", "/certs/ca.pem")
	t.Setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", "/certs/env.key")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	tc := cfg.Temporal
	if tc.Address != "prod.tmprl.cloud:7233" || tc.Namespace != "from-file" || tc.TLSCert != "/certs/prod.pem" ||
		tc.TLSKey != "/certs/env.key" || tc.TLSCA != "/certs/ca.pem" || tc.TLSServerName != "prod.tmprl.cloud" || !tc.TLS {
		t.Errorf("temporal config %+v", tc)
	}
	t.Setenv("TEMPORAL_ADDRESS", "env:7233")
	if cfg, err = Load(path); err != nil || cfg.Temporal.Address != "env:7233" {
		t.Errorf("TEMPORAL_ADDRESS over the profile: %v %q", err, cfg.Temporal.Address)
	}
	t.Setenv("TEMPORAL_PROFILE", "missing")
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing named profile: %v", err)
	}
	t.Setenv("TEMPORAL_PROFILE", "")
	t.Setenv("TEMPORAL_TLS", "maybe")
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "TEMPORAL_TLS") {
		t.Errorf("TEMPORAL_TLS=maybe: %v", err)
	}
}
