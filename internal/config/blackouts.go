package config

import (
	"fmt"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// BlackoutConfig is one entry of targets[].blackouts (docs/TARGETS.md,
// "Blackouts"): a one-off period (from, to: RFC 3339) or a recurring one
// (cron starts it in timezone, it lasts duration). No scheduled run starts
// on the target inside it; forcing a run through it needs the admin scope.
type BlackoutConfig struct {
	Name     string    `yaml:"name"`
	From     time.Time `yaml:"from"`
	To       time.Time `yaml:"to"`
	Cron     string    `yaml:"cron"`
	Timezone string    `yaml:"timezone"`
	Duration Duration  `yaml:"duration"`
}

// Blackout is the entry as the domain has it.
func (b BlackoutConfig) Blackout() domain.Blackout {
	return domain.Blackout{Name: b.Name, From: b.From, To: b.To, Cron: b.Cron, Timezone: b.Timezone, Duration: time.Duration(b.Duration)}
}

// blackouts returns the target's blackouts.
func (t TargetConfig) blackouts() []domain.Blackout {
	out := make([]domain.Blackout, len(t.Blackouts))
	for i, b := range t.Blackouts {
		out[i] = b.Blackout()
	}
	return out
}

// validateTargetExtras checks a target's blackouts and drill.strategy.
func (t TargetConfig) validateTargetExtras() error {
	names := map[string]bool{}
	for i, b := range t.Blackouts {
		if err := b.Blackout().Validate(); err != nil {
			return fmt.Errorf("config: target %q: blackouts[%d]: %w", t.Name, i, err)
		}
		if names[b.Name] {
			return fmt.Errorf("config: target %q: blackouts[%d]: name %q is used twice", t.Name, i, b.Name)
		}
		names[b.Name] = true
	}
	if err := domain.ValidateDrillStrategy(t.Drill.Strategy); err != nil {
		return fmt.Errorf("config: target %q: drill.%w", t.Name, err)
	}
	if t.Drill.Strategy == driver.StrategyReplicaClone && t.Driver == "sqlite" {
		return fmt.Errorf("config: target %q: drill.strategy replica_clone is not supported by driver sqlite (it has no replica); use backup_restore", t.Name)
	}
	return nil
}

// TargetDrillConfig is targets[].drill.
type TargetDrillConfig struct {
	Strategy string `yaml:"strategy"`
}
