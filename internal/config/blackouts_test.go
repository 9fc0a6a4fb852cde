package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBlackoutsAndDrillStrategy(t *testing.T) {
	cfg, err := Load(writeConfig(t, "data_dir: "+t.TempDir()+`
targets:
  - name: orders
    driver: postgres
    dsn: postgres://x@localhost/db
    drill: {strategy: replica_clone}
    blackouts:
      - {name: release freeze, from: 2026-12-20T00:00:00Z, to: 2027-01-04T00:00:00Z}
      - {name: month-end close, cron: "0 18 28 * *", timezone: Europe/Berlin, duration: 96h}
`))
	require.NoError(t, err)
	dt, err := cfg.Targets[0].Resolve()
	require.NoError(t, err)
	require.Equal(t, "replica_clone", dt.DrillStrategy)
	require.Len(t, dt.Blackouts, 2)
	require.Equal(t, 96*time.Hour, dt.Blackouts[1].Duration)
	require.Len(t, cfg.TargetInfos()[0].Blackouts, 2)

	for body, want := range map[string]string{
		"drill: {strategy: snapshot}":                                                                          `drill.strategy: unknown drill strategy "snapshot"`,
		"blackouts: [{from: 2026-12-20T00:00:00Z, to: 2027-01-04T00:00:00Z}]":                                  "blackouts[0]: blackout needs a name",
		"blackouts: [{name: x, from: 2027-01-04T00:00:00Z, to: 2026-12-20T00:00:00Z}]":                         "from must be before to",
		"blackouts: [{name: x, cron: '0 0 28 * *'}]":                                                           "duration must be",
		"blackouts: [{name: x, cron: '0 0 28 * *', duration: 1h}, {name: x, cron: '0 0 1 * *', duration: 1h}]": `name "x" is used twice`,
	} {
		_, err := Load(writeConfig(t, "data_dir: "+t.TempDir()+"\ntargets:\n  - name: orders\n    driver: postgres\n    dsn: postgres://x@localhost/db\n    "+body+"\n"))
		require.ErrorContains(t, err, want, body)
	}
	_, err = Load(writeConfig(t, "data_dir: "+t.TempDir()+"\ntargets:\n  - {name: demo, driver: sqlite, dsn: d.db, drill: {strategy: replica_clone}}\n"))
	require.ErrorContains(t, err, "replica_clone is not supported by driver sqlite")
}
