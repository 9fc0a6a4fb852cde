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

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// Defaults (docs/ARCHITECTURE.md, Configuration).
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
	Worker        WorkerConfig   `yaml:"worker"`
	// Log sets the log format and level (internal/config/operations.go).
	Log LogConfig `yaml:"log"`
}

// WorkerConfig configures a worker process.
type WorkerConfig struct {
	// HostID names this worker's host: steps that touch a scratch instance
	// (drill restore, verify, clean-up) are pinned to the host that created
	// it through a per-host task queue derived from it. Default: the OS
	// hostname.
	HostID string `yaml:"host_id"`
	// MetricsListen is where `themisctl worker` serves /metrics
	// (default 127.0.0.1:9464; "off" serves none).
	MetricsListen string `yaml:"metrics_listen"`
	// TargetGroups are the target groups this worker serves
	// (internal/config/groups.go; $THEMIS_WORKER_TARGET_GROUPS,
	// comma-separated): it polls each group's task queue and opens only
	// those groups' targets. Empty: an ungrouped worker, which polls the
	// base task queue and opens only the targets without a group.
	TargetGroups []string `yaml:"target_groups"`
	// Worker tuning (internal/config/operations.go): zero takes the
	// Temporal SDK's defaults.
	WorkerTuning `yaml:",inline"`
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
	// TLS enables TLS with the system roots when no certificate, CA or API
	// key does ($TEMPORAL_TLS). Profile names a profile of the Temporal
	// client config file ($TEMPORAL_PROFILE, $TEMPORAL_CONFIG_FILE;
	// internal/config/operations.go).
	TLS     bool   `yaml:"tls"`
	Profile string `yaml:"profile"`
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
	// AuditSink is "file" (default: AuditLog, one per API process) or
	// "history" (the shared history store: one log for all API replicas).
	AuditSink string `yaml:"audit_sink"`

	// The HTTP server (apiserver.go: defaults, environment, validation).
	//
	// TLSCertFile and TLSKeyFile (PEM; both or neither) serve the API over
	// TLS; the pair is read again when either file changes (rotation).
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// AllowInsecureListen lets the API listen on a non-loopback address
	// without TLS (e.g. behind a TLS-terminating proxy on a private
	// network). Without it such a listen address is refused at start.
	AllowInsecureListen bool `yaml:"allow_insecure_listen"`
	// ReadHeaderTimeout, ReadTimeout (headers and body), WriteTimeout and
	// IdleTimeout of the HTTP server (defaults 10 s, 30 s, 30 s, 120 s).
	// Long polls (?wait=, a run's "wait", up to 60 s) extend their own
	// connection's deadlines.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	ReadTimeout       Duration `yaml:"read_timeout"`
	WriteTimeout      Duration `yaml:"write_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout"`
	// DenialsPerMinute and DenialBurst are each client address's budget of
	// refused (401/403) requests (defaults 60 and 20); beyond it they are
	// answered 429. Requests with valid credentials are never limited.
	DenialsPerMinute float64 `yaml:"denials_per_minute"`
	DenialBurst      int     `yaml:"denial_burst"`
}

// History store drivers.
const (
	HistorySQLite   = "sqlite"
	HistoryPostgres = "postgres"
)

// HistoryConfig locates the history store: an embedded SQLite file (one
// host) or a PostgreSQL database shared by every worker and API replica.
type HistoryConfig struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver string `yaml:"driver"`
	// Path of the SQLite history database (default <data_dir>/history.db).
	Path string `yaml:"path"`
	// DSN, DSNEnv or DSNFile give the PostgreSQL connection string (exactly
	// one, with driver postgres).
	DSN     string `yaml:"dsn"`
	DSNEnv  string `yaml:"dsn_env"`
	DSNFile string `yaml:"dsn_file"`
	// SampleRetention and JobRetention bound how long samples and job/task
	// records are kept (defaults 400 days and 90 days); older rows are
	// pruned periodically.
	SampleRetention Duration `yaml:"sample_retention"`
	JobRetention    Duration `yaml:"job_retention"`
}

// DefaultExtensionSchema is the schema tasks create extensions in when a
// target allows it (allow_create_extension) and names none.
const DefaultExtensionSchema = "themis_ext"

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
	// MaxHeavyTasks is how many heavy tasks (VACUUM, REINDEX, backups,
	// restores) may run on this target at once across the whole cluster
	// (default 1).
	MaxHeavyTasks int `yaml:"max_heavy_tasks"`
	// Group puts the target in a target group (a zone): its jobs and drills
	// run on the group's own task queue, served only by the workers whose
	// worker.target_groups name the group (internal/config/groups.go,
	// docs/TARGETS.md). Empty: the base task queue.
	Group string `yaml:"group"`

	// Secrets and production safety of PostgreSQL targets (docs/TARGETS.md).
	// ReplicaDSNEnvs and ReplicaDSNFiles give standbys' connection strings
	// by environment variable or file, as dsn_env and dsn_file do the
	// primary's; they follow replica_dsns, envs first.
	ReplicaDSNEnvs  []string `yaml:"replica_dsn_envs"`
	ReplicaDSNFiles []string `yaml:"replica_dsn_files"`
	// AllowCreateExtension lets tasks CREATE EXTENSION (amcheck,
	// pgstattuple, pg_stat_statements) on the target, into ExtensionSchema
	// (default themis_ext). Off by default: a missing extension is
	// reported with the fallback the task used.
	AllowCreateExtension bool   `yaml:"allow_create_extension"`
	ExtensionSchema      string `yaml:"extension_schema"`
	// WALArchiveDir is the directory archive_command copies WAL segments
	// into; backup_verification checks the WAL chain there when it is set.
	WALArchiveDir string `yaml:"wal_archive_dir"`
	// Drill sets the target's drills: drill.strategy is how they restore
	// (backup_restore or replica_clone, docs/DR_DRILL.md); empty: the
	// driver's default.
	Drill TargetDrillConfig `yaml:"drill"`
	// Blackouts are periods when no scheduled maintenance starts on the
	// target (blackouts.go).
	Blackouts []BlackoutConfig `yaml:"blackouts"`
}

// AuthConfig lists API tokens, stored as SHA-256 hex digests only.
type AuthConfig struct {
	Tokens []TokenConfig `yaml:"tokens"`
	// TokensFile is a YAML list of further tokens (name, sha256, scopes),
	// kept out of the main file: a mounted Kubernetes Secret
	// (internal/config/operations.go).
	TokensFile string `yaml:"tokens_file"`
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
	if err := cfg.loadTokensFile(); err != nil {
		return nil, err
	}
	if err := cfg.applyTemporalProfile(); err != nil {
		return nil, err
	}
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
	set(&c.History.Driver, "THEMIS_HISTORY_DRIVER")
	set(&c.History.DSNEnv, "THEMIS_HISTORY_DSN_ENV")
	set(&c.API.AuditSink, "THEMIS_AUDIT_SINK")
	set(&c.Worker.HostID, "THEMIS_HOST_ID")
	set(&c.Worker.MetricsListen, "THEMIS_WORKER_METRICS_LISTEN")
	c.applyOperationsEnv()
	c.applyGroupsEnv()
	c.API.applyServerEnv()
}

// ApplyDefaults fills unset fields with the defaults; Load calls
// it, and callers that add targets afterwards call it again.
func (c *Config) ApplyDefaults() {
	def := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	def(&c.DataDir, DefaultDataDir)
	c.DataDir = absPath(c.DataDir)
	def(&c.Temporal.Address, DefaultTemporalAddress)
	def(&c.Temporal.Namespace, DefaultNamespace)
	def(&c.Temporal.TaskQueue, DefaultTaskQueue)
	def(&c.API.Listen, DefaultAPIListen)
	def(&c.API.AuditLog, filepath.Join(c.DataDir, "audit.log"))
	def(&c.History.Path, filepath.Join(c.DataDir, "history.db"))
	def(&c.History.Driver, HistorySQLite)
	def(&c.API.AuditSink, "file")
	def(&c.Worker.MetricsListen, "127.0.0.1:9464")
	if c.Worker.HostID == "" {
		c.Worker.HostID, _ = os.Hostname()
	}
	if c.History.SampleRetention == 0 {
		c.History.SampleRetention = Duration(400 * 24 * time.Hour)
	}
	if c.History.JobRetention == 0 {
		c.History.JobRetention = Duration(90 * 24 * time.Hour)
	}
	for _, p := range []*string{&c.API.AuditLog, &c.History.Path, &c.History.DSNFile,
		&c.Temporal.TLSCert, &c.Temporal.TLSKey, &c.Temporal.TLSCA} {
		*p = absPath(*p)
	}
	if c.Temporal.UIURL == "" && c.Temporal.Address == DefaultTemporalAddress {
		c.Temporal.UIURL = DefaultTemporalUI
	}
	if c.API.MaxBodyBytes == 0 {
		c.API.MaxBodyBytes = 1 << 20
	}
	c.API.applyServerDefaults()
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
		if t.MaxHeavyTasks == 0 {
			t.MaxHeavyTasks = 1
		}
		t.BackupDir, t.ScratchDir, t.BinDir, t.DSNFile = absPath(t.BackupDir), absPath(t.ScratchDir), absPath(t.BinDir), absPath(t.DSNFile)
		t.WALArchiveDir = absPath(t.WALArchiveDir)
		for j := range t.ReplicaDSNFiles {
			t.ReplicaDSNFiles[j] = absPath(t.ReplicaDSNFiles[j])
		}
		if t.ExtensionSchema == "" {
			t.ExtensionSchema = DefaultExtensionSchema
		}
		if t.Driver == "sqlite" && t.DSN != "" && !strings.Contains(t.DSN, ":") {
			// A SQLite DSN without a scheme is a file path.
			t.DSN = absPath(t.DSN)
		}
		if t.RTOObjective == 0 {
			t.RTOObjective = Duration(15 * time.Minute)
		}
		if t.RPOObjective == 0 {
			t.RPOObjective = Duration(time.Minute)
		}
	}
}

// absPath makes a non-empty path absolute against the working directory
// (an unreadable working directory leaves it as it is: Validate rejects it).
func absPath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// Validate checks the configuration for mistakes an operator must fix.
func (c *Config) Validate() error {
	if !filepath.IsAbs(c.DataDir) {
		return fmt.Errorf("config: data_dir %q cannot be made absolute", c.DataDir)
	}
	switch c.History.Driver {
	case HistorySQLite:
	case HistoryPostgres:
		n := 0
		for _, s := range []string{c.History.DSN, c.History.DSNEnv, c.History.DSNFile} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("config: history: driver postgres needs exactly one of dsn, dsn_env, dsn_file")
		}
	default:
		return fmt.Errorf("config: history.driver must be sqlite or postgres, got %q", c.History.Driver)
	}
	if err := c.validateOperations(); err != nil {
		return err
	}
	switch c.API.AuditSink {
	case "file", "history":
	default:
		return fmt.Errorf("config: api.audit_sink must be file or history, got %q", c.API.AuditSink)
	}
	if err := c.API.validateServer(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, t := range c.Targets {
		if t.Name == "" {
			return fmt.Errorf("config: targets[%d]: name is required", i)
		}
		if !ValidTargetName(t.Name) {
			return fmt.Errorf("config: targets[%d]: name %q must be 1–64 letters, digits, _ or -, starting with a letter or digit (it is used in paths and ids)", i, clipText(t.Name, 80))
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
		if t.MaxHeavyTasks < 0 || t.MaxHeavyTasks > 64 {
			return fmt.Errorf("config: target %q: max_heavy_tasks must be between 1 and 64, got %d", t.Name, t.MaxHeavyTasks)
		}
		for _, e := range t.ReplicaDSNEnvs {
			if e == "" {
				return fmt.Errorf("config: target %q: replica_dsn_envs has an empty name", t.Name)
			}
		}
		for _, f := range t.ReplicaDSNFiles {
			if f == "" {
				return fmt.Errorf("config: target %q: replica_dsn_files has an empty path", t.Name)
			}
		}
		if t.QuotaBytes < 0 {
			return fmt.Errorf("config: target %q: quota_bytes must not be negative", t.Name)
		}
		if err := t.validateTargetExtras(); err != nil {
			return err
		}
	}
	if err := c.validateGroups(); err != nil {
		return err
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

// ValidTargetName is domain.ValidTargetName: the configuration refuses
// other target names.
func ValidTargetName(name string) bool { return domain.ValidTargetName(name) }

func clipText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
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
		rt, err := t.Resolve()
		if err != nil {
			return nil, err
		}
		out = append(out, rt)
	}
	return out, nil
}

// Resolve returns the target with its DSNs read from the config,
// environment or file. Errors name the target and the source, never the DSN.
func (t TargetConfig) Resolve() (driver.Target, error) {
	dsn := t.DSN
	switch {
	case t.DSNEnv != "":
		v, ok := os.LookupEnv(t.DSNEnv)
		if !ok || v == "" {
			return driver.Target{}, fmt.Errorf("target %s: environment variable %s is not set", t.Name, t.DSNEnv)
		}
		dsn = v
	case t.DSNFile != "":
		raw, err := os.ReadFile(t.DSNFile)
		if err != nil {
			return driver.Target{}, fmt.Errorf("target %s: read dsn_file: %w", t.Name, err)
		}
		dsn = strings.TrimSpace(string(raw))
	}
	replicas, err := t.replicaDSNs()
	if err != nil {
		return driver.Target{}, err
	}
	return driver.Target{
		Name: t.Name, Driver: t.Driver, DSN: dsn, ReplicaDSNs: replicas,
		AllowCreateExtension: t.AllowCreateExtension, ExtensionSchema: t.ExtensionSchema, WALArchiveDir: t.WALArchiveDir,
		QuotaBytes: t.QuotaBytes, BackupDir: t.BackupDir, ScratchDir: t.ScratchDir,
		RTOObjective: time.Duration(t.RTOObjective), RPOObjective: time.Duration(t.RPOObjective),
		BinDir: t.BinDir, OSUser: t.OSUser, MaxHeavyTasks: t.MaxHeavyTasks,
		DrillStrategy: t.Drill.Strategy, Blackouts: t.blackouts(),
	}, nil
}

// replicaDSNs returns replica_dsns, then the values of replica_dsn_envs,
// then the contents of replica_dsn_files. Errors name the target and the
// source, never a DSN.
func (t TargetConfig) replicaDSNs() ([]string, error) {
	out := append([]string(nil), t.ReplicaDSNs...)
	for _, e := range t.ReplicaDSNEnvs {
		v, ok := os.LookupEnv(e)
		if !ok || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("target %s: environment variable %s (replica_dsn_envs) is not set", t.Name, e)
		}
		out = append(out, strings.TrimSpace(v))
	}
	for _, f := range t.ReplicaDSNFiles {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("target %s: read replica_dsn_files entry: %w", t.Name, err)
		}
		v := strings.TrimSpace(string(raw))
		if v == "" {
			return nil, fmt.Errorf("target %s: replica_dsn_files entry %s is empty", t.Name, f)
		}
		out = append(out, v)
	}
	return out, nil
}

// HistoryDSN resolves the PostgreSQL history store's connection string from
// the config, environment or file. Errors name the source, never the DSN.
func (c *Config) HistoryDSN() (string, error) {
	h := c.History
	switch {
	case h.DSNEnv != "":
		v, ok := os.LookupEnv(h.DSNEnv)
		if !ok || v == "" {
			return "", fmt.Errorf("history: environment variable %s is not set", h.DSNEnv)
		}
		return v, nil
	case h.DSNFile != "":
		raw, err := os.ReadFile(h.DSNFile)
		if err != nil {
			return "", fmt.Errorf("history: read dsn_file: %w", err)
		}
		return strings.TrimSpace(string(raw)), nil
	}
	return h.DSN, nil
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
	// Group is the target's group ("": none); its workflows run on
	// GroupQueue(temporal.task_queue, Group).
	Group string `json:"group,omitempty"`
	// Blackouts are the target's blackouts (the starter skips them in
	// next_run_ms; forcing a run inside one needs the admin scope).
	Blackouts []domain.Blackout `json:"-"`
}

// TargetInfos lists the targets without secrets.
func (c *Config) TargetInfos() []TargetInfo {
	out := make([]TargetInfo, 0, len(c.Targets))
	for _, t := range c.Targets {
		out = append(out, TargetInfo{
			Name: t.Name, Driver: t.Driver, QuotaBytes: t.QuotaBytes,
			RTOObjectiveMs: time.Duration(t.RTOObjective).Milliseconds(),
			RPOObjectiveMs: time.Duration(t.RPOObjective).Milliseconds(),
			BackupDir:      t.BackupDir, Default: t.Name == c.DefaultTarget, Group: t.Group,
			Blackouts: t.blackouts(),
		})
	}
	return out
}
