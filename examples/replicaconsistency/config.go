package replicaconsistency

import (
	"context"

	"github.com/themis-maintenance/themis/driver"
	"github.com/themis-maintenance/themis/internal/config"
)

// ConfigTargets reads the targets from the Themis config file that path
// returns when the probe runs (the --config flag, or $THEMIS_CONFIG), with
// the environment overrides and DSN sources (dsn_env, dsn_file) of a
// themisctl process. An empty path means the defaults: no targets.
func ConfigTargets(path func() string) TargetSource {
	return func(context.Context) ([]driver.Target, error) {
		cfg, err := config.Load(path())
		if err != nil {
			return nil, err
		}
		return cfg.ResolveTargets()
	}
}
