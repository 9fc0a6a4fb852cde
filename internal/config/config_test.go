package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "themis.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

// Every path is absolute once the config is loaded, whatever the working
// directory later becomes: a relative data_dir used to reach pg_ctl and the
// SQLite URI parser as ".data/…".
func TestLoadMakesEveryPathAbsolute(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	cfg, err := Load(writeConfig(t, `
data_dir: rel/data
api: {audit_log: logs/audit.log}
temporal: {tls_ca: certs/ca.pem}
targets:
  - {name: demo, driver: sqlite, dsn: rel/demo.db}
  - {name: uri, driver: sqlite, dsn: "file:x.db?mode=ro"}
  - {name: pg, driver: postgres, dsn_file: secrets/pg.dsn, bin_dir: pgbin, backup_dir: b, scratch_dir: s}
`))
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "rel/data"), cfg.DataDir)
	require.Equal(t, filepath.Join(dir, "rel/data/history.db"), cfg.History.Path)
	require.Equal(t, filepath.Join(dir, "logs/audit.log"), cfg.API.AuditLog)
	require.Equal(t, filepath.Join(dir, "certs/ca.pem"), cfg.Temporal.TLSCA)
	require.Equal(t, filepath.Join(dir, "rel/demo.db"), cfg.Targets[0].DSN)
	require.Equal(t, filepath.Join(dir, "rel/data/backups/demo"), cfg.Targets[0].BackupDir)
	require.Equal(t, filepath.Join(dir, "rel/data/scratch/demo"), cfg.Targets[0].ScratchDir)
	require.Equal(t, "file:x.db?mode=ro", cfg.Targets[1].DSN, "a URI DSN is passed through")
	pg := cfg.Targets[2]
	for _, p := range []string{pg.DSNFile, pg.BinDir, pg.BackupDir, pg.ScratchDir} {
		require.True(t, filepath.IsAbs(p), "%q is not absolute", p)
	}
	require.Equal(t, 1, pg.MaxHeavyTasks, "max_heavy_tasks defaults to 1")
	require.Equal(t, HistorySQLite, cfg.History.Driver)
	require.Equal(t, "file", cfg.API.AuditSink)
	require.NotEmpty(t, cfg.Worker.HostID)
}

func TestLoadRejectsBadHistoryAndLimits(t *testing.T) {
	for body, want := range map[string]string{
		"history: {driver: mysql}":                                             "history.driver must be sqlite or postgres",
		"history: {driver: postgres}":                                          "exactly one of dsn, dsn_env, dsn_file",
		"history: {driver: postgres, dsn: a, dsn_env: B}":                      "exactly one of dsn, dsn_env, dsn_file",
		"api: {audit_sink: syslog}":                                            "audit_sink must be file or history",
		"targets: [{name: a, driver: sqlite, dsn: a.db, max_heavy_tasks: 65}]": "max_heavy_tasks must be between 1 and 64",
	} {
		_, err := Load(writeConfig(t, body))
		require.Error(t, err, body)
		require.True(t, strings.Contains(err.Error(), want), "%s: %v", body, err)
	}
}

func TestHistoryDSNSources(t *testing.T) {
	t.Setenv("THEMIS_TEST_HISTORY_DSN", "postgres://h/db")
	cfg, err := Load(writeConfig(t, "history: {driver: postgres, dsn_env: THEMIS_TEST_HISTORY_DSN}"))
	require.NoError(t, err)
	dsn, err := cfg.HistoryDSN()
	require.NoError(t, err)
	require.Equal(t, "postgres://h/db", dsn)

	f := filepath.Join(t.TempDir(), "dsn")
	require.NoError(t, os.WriteFile(f, []byte("postgres://file/db\n"), 0o600))
	cfg, err = Load(writeConfig(t, "history: {driver: postgres, dsn_file: "+f+"}"))
	require.NoError(t, err)
	dsn, err = cfg.HistoryDSN()
	require.NoError(t, err)
	require.Equal(t, "postgres://file/db", dsn)

	cfg, err = Load(writeConfig(t, "history: {driver: postgres, dsn_env: THEMIS_TEST_UNSET_DSN}"))
	require.NoError(t, err)
	_, err = cfg.HistoryDSN()
	require.ErrorContains(t, err, "THEMIS_TEST_UNSET_DSN is not set")
}

// The shipped example stays loadable as the fields change.
func TestExampleConfigLoads(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "..", "deploy", "config.example.yaml"))
	require.NoError(t, err)
	require.Equal(t, HistoryPostgres, cfg.History.Driver)
	require.Equal(t, "history", cfg.API.AuditSink)
	require.Equal(t, 1, cfg.Targets[0].MaxHeavyTasks)
}
