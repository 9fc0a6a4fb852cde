package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/contrib/envconfig"
	"gopkg.in/yaml.v3"
)

// LogConfig sets the process's logs (docs/METRICS.md, Logs).
type LogConfig struct {
	// Format is "json", "text" or "auto" (default: text on a terminal,
	// JSON otherwise). $THEMIS_LOG_FORMAT.
	Format string `yaml:"format"`
	// Level is debug, info (default), warn or error. $THEMIS_LOG_LEVEL.
	Level string `yaml:"level"`
}

// WorkerTuning are the Temporal worker options of worker.* (zero: the
// SDK's defaults). They apply to each task queue a worker serves (a worker
// of two target groups runs two SDK workers, internal/config/groups.go).
type WorkerTuning struct {
	// MaxConcurrentActivities bounds the tasks one worker runs at once
	// (SDK default 1000; maintenance tasks are heavy, so set it low).
	MaxConcurrentActivities int `yaml:"max_concurrent_activities"`
	// MaxConcurrentWorkflowTasks bounds concurrent workflow tasks.
	MaxConcurrentWorkflowTasks int `yaml:"max_concurrent_workflow_tasks"`
	// ActivityPollers and WorkflowPollers are the pollers per queue.
	ActivityPollers int `yaml:"activity_pollers"`
	WorkflowPollers int `yaml:"workflow_pollers"`
	// StopTimeout is how long a stopping worker lets running tasks finish
	// before cancelling them (default 10s); they are then retried on
	// another worker from their last checkpoint.
	StopTimeout Duration `yaml:"stop_timeout"`
}

// loadTokensFile appends the tokens of auth.tokens_file
// ($THEMIS_TOKENS_FILE), decoded strictly.
func (c *Config) loadTokensFile() error {
	path := c.Auth.TokensFile
	if path == "" {
		return nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: auth.tokens_file: %w", err)
	}
	var tokens []TokenConfig
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&tokens); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config: auth.tokens_file %s: %w", path, err)
	}
	c.Auth.Tokens = append(c.Auth.Tokens, tokens...)
	return nil
}

// applyTemporalEnv reads the Temporal client environment variables as
// Temporal's own tools name them (they override the legacy TEMPORAL_TLS_CERT,
// TEMPORAL_TLS_KEY and TEMPORAL_TLS_CA, still read).
func (c *Config) applyTemporalEnv() {
	for env, dst := range map[string]*string{
		"TEMPORAL_TLS_CLIENT_CERT_PATH":    &c.Temporal.TLSCert,
		"TEMPORAL_TLS_CLIENT_KEY_PATH":     &c.Temporal.TLSKey,
		"TEMPORAL_TLS_SERVER_CA_CERT_PATH": &c.Temporal.TLSCA,
		"TEMPORAL_TLS_SERVER_NAME":         &c.Temporal.TLSServerName,
		"TEMPORAL_PROFILE":                 &c.Temporal.Profile,
	} {
		if v := os.Getenv(env); v != "" {
			*dst = v
		}
	}
	if v, err := strconv.ParseBool(os.Getenv("TEMPORAL_TLS")); err == nil {
		c.Temporal.TLS = v
	}
}

// applyTemporalProfile fills the Temporal settings still unset, after the
// environment and the config file, from the Temporal client config file
// (TOML; $TEMPORAL_CONFIG_FILE, default <user config dir>/temporalio/temporal.toml)
// profile temporal.profile ($TEMPORAL_PROFILE, default "default"), as
// Temporal's CLI and SDKs read it. A missing file is no error; a named
// profile missing from it is. Precedence: environment, then this config
// file, then the profile, then the defaults.
func (c *Config) applyTemporalProfile() error {
	prof, err := envconfig.LoadClientConfigProfile(envconfig.LoadClientConfigProfileOptions{
		ConfigFileProfile: c.Temporal.Profile, ConfigFileStrict: true, DisableEnv: true,
	})
	if err != nil {
		return fmt.Errorf("config: temporal profile: %w", err)
	}
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	t := &c.Temporal
	fill(&t.Address, prof.Address)
	fill(&t.Namespace, prof.Namespace)
	fill(&t.APIKey, prof.APIKey)
	if tls := prof.TLS; tls != nil && !tls.Disabled {
		if len(tls.ClientCertData) > 0 || len(tls.ClientKeyData) > 0 || len(tls.ServerCACertData) > 0 {
			return fmt.Errorf("config: temporal profile: TLS certificate data is not supported, give paths (client_cert_path, client_key_path, server_ca_cert_path)")
		}
		fill(&t.TLSCert, tls.ClientCertPath)
		fill(&t.TLSKey, tls.ClientKeyPath)
		fill(&t.TLSCA, tls.ServerCACertPath)
		fill(&t.TLSServerName, tls.ServerName)
		t.TLS = true
	}
	return nil
}

func (c *Config) applyOperationsEnv() {
	c.applyTemporalEnv()
	if v := os.Getenv("THEMIS_TOKENS_FILE"); v != "" {
		c.Auth.TokensFile = v
	}
	if v := os.Getenv("THEMIS_LOG_FORMAT"); v != "" {
		c.Log.Format = v
	}
	if v := os.Getenv("THEMIS_LOG_LEVEL"); v != "" {
		c.Log.Level = v
	}
}

func (c *Config) validateOperations() error {
	if v := os.Getenv("TEMPORAL_TLS"); v != "" {
		if _, err := strconv.ParseBool(v); err != nil {
			return fmt.Errorf("config: TEMPORAL_TLS must be true or false, got %q", v)
		}
	}
	switch strings.ToLower(c.Log.Format) {
	case "", "auto", "json", "text":
	default:
		return fmt.Errorf("config: log.format must be json, text or auto, got %q", c.Log.Format)
	}
	switch strings.ToLower(c.Log.Level) {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log.level must be debug, info, warn or error, got %q", c.Log.Level)
	}
	w := c.Worker.WorkerTuning
	for name, v := range map[string]int{
		"max_concurrent_activities": w.MaxConcurrentActivities, "max_concurrent_workflow_tasks": w.MaxConcurrentWorkflowTasks,
		"activity_pollers": w.ActivityPollers, "workflow_pollers": w.WorkflowPollers,
	} {
		if v < 0 {
			return fmt.Errorf("config: worker.%s must not be negative, got %d", name, v)
		}
	}
	if w.StopTimeout < 0 || time.Duration(w.StopTimeout) > 24*time.Hour {
		return fmt.Errorf("config: worker.stop_timeout must be between 0 and 24h, got %s", time.Duration(w.StopTimeout))
	}
	return nil
}
