// Package config loads the Themis Maintenance configuration: one YAML file
// (THEMIS_CONFIG) plus environment overrides, with defaults that run locally.
// Secrets (DSNs, API keys) are resolved here and never echoed back.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/themis-maintenance/themis/driver"
)

// Defaults of SPEC §9.
const (
	DefaultAPIListen       = "127.0.0.1:8080"
	DefaultTemporalAddress = "127.0.0.1:7233"
	DefaultTemporalUI      = "http://127.0.0.1:8233"
	DefaultNamespace       = "default"
	DefaultTaskQueue       = "themis-maintenance"
	DefaultDataDir         = ".data"
)

// Config is the whole configuration.
type Config struct {
	DefaultTarget string         `yaml:"default_target"`
	DataDir       string         `yaml:"data_dir"`
	Temporal      TemporalConfig `yaml:"temporal"`
	API           APIConfig      `yaml:"api"`
	History       HistoryConfig  `yaml:"history"`
	Targets       []TargetConfig `yaml:"targets"`
	Auth          AuthConfig     `yaml:"auth"`
	Drill         DrillConfig    `yaml:"drill"`
}

// TemporalConfig says how to reach Temporal (any cluster or Temporal Cloud).
type TemporalConfig struct {
	Address   string `yaml:"address"`
	Namespace string `yaml:"namespace"`
	TaskQueue string `yaml:"task_queue"`
	// APIKey authenticates to Temporal Cloud; prefer TEMPORAL_API_KEY.
	APIKey string `yaml:"api_key"`
	// TLS client certificate, key and CA bundle paths (mTLS).
	TLSCert       string `yaml:"tls_cert"`
	TLSKey        string `yaml:"tls_key"`
	TLSCA         string `yaml:"tls_ca"`
	TLSServerName string `yaml:"tls_server_name"`
	// UIURL is the Temporal UI base used for job links.
	UIURL string `yaml:"ui_url"`
}

// APIConfig configures the gateway.
type APIConfig struct {
	Listen string `yaml:"listen"`
	// MaxBodyBytes bounds request bodies (default 1 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// AuditLog is the JSON-lines audit file (default <data_dir>/audit.log).
	AuditLog string `yaml:"audit_log"`
}

// HistoryConfig locates the history store.
type HistoryConfig struct {
	// Path of the SQLite history database (default <data_dir>/history.db).
	Path string `yaml:"path"`
}

// TargetConfig is one database under maintenance.
type TargetConfig struct {
	Name         string   `yaml:"name"`
	Driver       string   `yaml:"driver"`
	DSN          string   `yaml:"dsn"`
	DSNEnv       string   `yaml:"dsn_env"`
	DSNFile      string   `yaml:"dsn_file"`
	ReplicaDSNs  []string `yaml:"replica_dsns"`
	QuotaBytes   int64    `yaml:"quota_bytes"`
	RTOObjective Duration `yaml:"rto_objective"`
	RPOObjective Duration `yaml:"rpo_objective"`
	BackupDir    string   `yaml:"backup_dir"`
	ScratchDir   string   `yaml:"scratch_dir"`
	BinDir       string   `yaml:"bin_dir"`
	OSUser       string   `yaml:"os_user"`
}

// AuthConfig lists API tokens, stored as SHA-256 hex digests only.
type AuthConfig struct {
	Tokens []TokenConfig `yaml:"tokens"`
}

// TokenConfig is one bearer token.
type TokenConfig struct {
	Name   string   `yaml:"name"`
	SHA256 string   `yaml:"sha256"`
	Scopes []string `yaml:"scopes"`
}

// DrillConfig sets approval timeouts of DR drills.
type DrillConfig struct {
	StartApprovalTimeout    Duration `yaml:"start_approval_timeout"`
	CompleteApprovalTimeout Duration `yaml:"complete_approval_timeout"`
}

// Duration is a time.Duration written as "15m" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q: %w", n.Line, s, err)
	}
	*d = Duration(v)
	return nil
}

// Load reads path (empty: defaults only), applies environment overrides and
// defaults, and validates the result.
func Load(path string) (*Config, error) {
	cfg := &Config{}
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("parse config %s: %w", path, err)
		}
	}
	cfg.applyEnv()
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (c *Config) applyEnv() {
	set := func(dst *string, env string) {
		if v, ok := os.LookupEnv(env); ok && v != "" {
			*dst = v
		}
	}
	set(&c.Temporal.Address, "TEMPORAL_ADDRESS")
	set(&c.Temporal.Namespace, "TEMPORAL_NAMESPACE")
	set(&c.Temporal.APIKey, "TEMPORAL_API_KEY")
	set(&c.Temporal.TLSCert, "TEMPORAL_TLS_CERT")
	set(&c.Temporal.TLSKey, "TEMPORAL_TLS_KEY")
	set(&c.Temporal.TLSCA, "TEMPORAL_TLS_CA")
	set(&c.Temporal.UIURL, "TEMPORAL_UI_URL")
	set(&c.Temporal.TaskQueue, "THEMIS_TASK_QUEUE")
	set(&c.API.Listen, "THEMIS_API_LISTEN")
	set(&c.DataDir, "THEMIS_DATA_DIR")
	set(&c.DefaultTarget, "THEMIS_DEFAULT_TARGET")
}

// ApplyDefaults fills unset fields with the defaults of SPEC §9; Load calls
// it, and callers that add targets afterwards call it again.
func (c *Config) ApplyDefaults() {
	def := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	def(&c.DataDir, DefaultDataDir)
	def(&c.Temporal.Address, DefaultTemporalAddress)
	def(&c.Temporal.Namespace, DefaultNamespace)
	def(&c.Temporal.TaskQueue, DefaultTaskQueue)
	def(&c.API.Listen, DefaultAPIListen)
	def(&c.API.AuditLog, filepath.Join(c.DataDir, "audit.log"))
	def(&c.History.Path, filepath.Join(c.DataDir, "history.db"))
	if c.Temporal.UIURL == "" && c.Temporal.Address == DefaultTemporalAddress {
		c.Temporal.UIURL = DefaultTemporalUI
	}
	if c.API.MaxBodyBytes == 0 {
		c.API.MaxBodyBytes = 1 << 20
	}
	if c.Drill.StartApprovalTimeout == 0 {
		c.Drill.StartApprovalTimeout = Duration(24 * time.Hour)
	}
	if c.Drill.CompleteApprovalTimeout == 0 {
		c.Drill.CompleteApprovalTimeout = Duration(4 * time.Hour)
	}
	if c.DefaultTarget == "" && len(c.Targets) == 1 {
		c.DefaultTarget = c.Targets[0].Name
	}
	for i := range c.Targets {
		t := &c.Targets[i]
		if t.BackupDir == "" {
			t.BackupDir = filepath.Join(c.DataDir, "backups", t.Name)
		}
		if t.ScratchDir == "" {
			t.ScratchDir = filepath.Join(c.DataDir, "scratch", t.Name)
		}
		if t.RTOObjective == 0 {
			t.RTOObjective = Duration(15 * time.Minute)
		}
		if t.RPOObjective == 0 {
			t.RPOObjective = Duration(time.Minute)
		}
	}
}

// Validate checks the configuration for mistakes an operator must fix.
func (c *Config) Validate() error {
	seen := map[string]bool{}
	for i, t := range c.Targets {
		if t.Name == "" {
			return fmt.Errorf("config: targets[%d]: name is required", i)
		}
		if seen[t.Name] {
			return fmt.Errorf("config: target %q is defined twice", t.Name)
		}
		seen[t.Name] = true
		switch t.Driver {
		case "postgres", "sqlite":
		default:
			return fmt.Errorf("config: target %q: driver must be postgres or sqlite, got %q", t.Name, t.Driver)
		}
		n := 0
		for _, s := range []string{t.DSN, t.DSNEnv, t.DSNFile} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("config: target %q: set exactly one of dsn, dsn_env, dsn_file", t.Name)
		}
		if t.QuotaBytes < 0 {
			return fmt.Errorf("config: target %q: quota_bytes must not be negative", t.Name)
		}
	}
	if c.DefaultTarget != "" && len(c.Targets) > 0 && !seen[c.DefaultTarget] {
		return fmt.Errorf("config: default_target %q is not a configured target", c.DefaultTarget)
	}
	for i, tok := range c.Auth.Tokens {
		if len(tok.SHA256) != 64 || strings.Trim(strings.ToLower(tok.SHA256), "0123456789abcdef") != "" {
			return fmt.Errorf("config: auth.tokens[%d] (%s): sha256 must be 64 hex digits", i, tok.Name)
		}
	}
	return nil
}

// HasTarget reports whether name is a configured target.
func (c *Config) HasTarget(name string) bool {
	for _, t := range c.Targets {
		if t.Name == name {
			return true
		}
	}
	return false
}

// ResolveTargets returns the targets with their DSNs read from the config,
// environment or file. Errors name the target and the source, never the DSN.
func (c *Config) ResolveTargets() ([]driver.Target, error) {
	out := make([]driver.Target, 0, len(c.Targets))
	for _, t := range c.Targets {
		dsn := t.DSN
		switch {
		case t.DSNEnv != "":
			v, ok := os.LookupEnv(t.DSNEnv)
			if !ok || v == "" {
				return nil, fmt.Errorf("target %s: environment variable %s is not set", t.Name, t.DSNEnv)
			}
			dsn = v
		case t.DSNFile != "":
			raw, err := os.ReadFile(t.DSNFile)
			if err != nil {
				return nil, fmt.Errorf("target %s: read dsn_file: %w", t.Name, err)
			}
			dsn = strings.TrimSpace(string(raw))
		}
		out = append(out, driver.Target{
			Name: t.Name, Driver: t.Driver, DSN: dsn, ReplicaDSNs: t.ReplicaDSNs,
			QuotaBytes: t.QuotaBytes, BackupDir: t.BackupDir, ScratchDir: t.ScratchDir,
			RTOObjective: time.Duration(t.RTOObjective), RPOObjective: time.Duration(t.RPOObjective),
			BinDir: t.BinDir, OSUser: t.OSUser,
		})
	}
	return out, nil
}

// TargetInfo is a target as the API shows it: no secrets.
type TargetInfo struct {
	Name           string `json:"name"`
	Driver         string `json:"driver"`
	QuotaBytes     int64  `json:"quota_bytes"`
	RTOObjectiveMs int64  `json:"rto_objective_ms"`
	RPOObjectiveMs int64  `json:"rpo_objective_ms"`
	BackupDir      string `json:"backup_dir"`
	Default        bool   `json:"default"`
}

// TargetInfos lists the targets without secrets.
func (c *Config) TargetInfos() []TargetInfo {
	out := make([]TargetInfo, 0, len(c.Targets))
	for _, t := range c.Targets {
		out = append(out, TargetInfo{
			Name: t.Name, Driver: t.Driver, QuotaBytes: t.QuotaBytes,
			RTOObjectiveMs: time.Duration(t.RTOObjective).Milliseconds(),
			RPOObjectiveMs: time.Duration(t.RPOObjective).Milliseconds(),
			BackupDir:      t.BackupDir, Default: t.Name == c.DefaultTarget,
		})
	}
	return out
}
