package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/themis-maintenance/themis/config"
	"github.com/themis-maintenance/themis/driver/sqlite"
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
