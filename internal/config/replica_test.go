package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Replica DSNs come from the config, the environment and files, like the
// primary's; a missing source is an error that names it but no DSN.
func TestReplicaDSNSources(t *testing.T) {
	t.Setenv("THEMIS_TEST_REPLICA_DSN", " postgres://u:envsecret@r2/db \n")
	f := filepath.Join(t.TempDir(), "replica.dsn")
	require.NoError(t, os.WriteFile(f, []byte("postgres://u:filesecret@r3/db\n"), 0o600))
	cfg, err := Load(writeConfig(t, `
targets:
  - name: orders
    driver: postgres
    dsn: postgres://p/db
    replica_dsns: [postgres://r1/db]
    replica_dsn_envs: [THEMIS_TEST_REPLICA_DSN]
    replica_dsn_files: [`+f+`]
    allow_create_extension: true
    wal_archive_dir: archive
`))
	require.NoError(t, err)
	ts, err := cfg.ResolveTargets()
	require.NoError(t, err)
	require.Equal(t, []string{"postgres://r1/db", "postgres://u:envsecret@r2/db", "postgres://u:filesecret@r3/db"}, ts[0].ReplicaDSNs)
	require.True(t, ts[0].AllowCreateExtension)
	require.Equal(t, DefaultExtensionSchema, ts[0].ExtensionSchema)
	require.True(t, filepath.IsAbs(ts[0].WALArchiveDir))

	cfg, err = Load(writeConfig(t, `
targets:
  - {name: a, driver: postgres, dsn: postgres://p/db, replica_dsn_envs: [THEMIS_TEST_UNSET_REPLICA]}
`))
	require.NoError(t, err)
	_, err = cfg.ResolveTargets()
	require.ErrorContains(t, err, "THEMIS_TEST_UNSET_REPLICA")

	missing := filepath.Join(t.TempDir(), "none")
	cfg, err = Load(writeConfig(t, `
targets:
  - {name: a, driver: postgres, dsn: postgres://p/db, replica_dsn_files: [`+missing+`]}
`))
	require.NoError(t, err)
	_, err = cfg.ResolveTargets()
	require.ErrorContains(t, err, "replica_dsn_files")

	_, err = Load(writeConfig(t, `
targets:
  - {name: a, driver: postgres, dsn: postgres://p/db, replica_dsn_envs: [""]}
`))
	require.ErrorContains(t, err, "replica_dsn_envs")
}
