package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/driver/sqlite"
	"github.com/themis-maintenance/themis/internal/auth"
	"github.com/themis-maintenance/themis/internal/config"
)

// DemoTarget is the name of the SQLite target `themisctl dev` creates when
// the configuration names none.
const DemoTarget = "demo"

// EnsureDemoTarget gives a configuration without targets the demo SQLite
// database under the data dir, creating it with sample data when missing.
// It reports whether it did.
func EnsureDemoTarget(ctx context.Context, cfg *config.Config) (bool, error) {
	if len(cfg.Targets) > 0 {
		return false, nil
	}
	path := filepath.Join(cfg.DataDir, "demo.db")
	if err := sqlite.SeedDemo(ctx, path); err != nil {
		return false, fmt.Errorf("create demo database %s: %w", path, err)
	}
	cfg.Targets = append(cfg.Targets, config.TargetConfig{
		Name: DemoTarget, Driver: "sqlite", DSN: path,
		QuotaBytes:   1 << 30,
		RTOObjective: config.Duration(5 * time.Minute),
		RPOObjective: config.Duration(time.Minute),
	})
	cfg.DefaultTarget = DemoTarget
	cfg.ApplyDefaults()
	return true, cfg.Validate()
}

// DevTokenFile is where `themisctl dev` keeps its local admin token.
func DevTokenFile(cfg *config.Config) string { return filepath.Join(cfg.DataDir, "dev-token") }

// EnsureDevToken gives a configuration without API tokens a local admin
// token "dev-admin", kept in <data dir>/dev-token (0600) and reused on later
// starts. It returns the file path, or "" when the config has tokens.
func EnsureDevToken(cfg *config.Config) (string, error) {
	if len(cfg.Auth.Tokens) > 0 {
		return "", nil
	}
	path := DevTokenFile(cfg)
	// An existing file keeps its token but not wider permissions than 0600
	// (it may have been created by hand, copied, or by an older version).
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return "", fmt.Errorf("narrow dev token permissions: %w", err)
		}
	}
	raw, err := os.ReadFile(path)
	token := strings.TrimSpace(string(raw))
	if err != nil || token == "" {
		if token, err = auth.NewToken(); err != nil {
			return "", err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", fmt.Errorf("dev token dir: %w", err)
		}
		if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("write dev token: %w", err)
		}
	}
	cfg.Auth.Tokens = append(cfg.Auth.Tokens, config.TokenConfig{
		Name: "dev-admin", SHA256: auth.Digest(token), Scopes: []string{api.ScopeAdmin},
	})
	return path, nil
}
