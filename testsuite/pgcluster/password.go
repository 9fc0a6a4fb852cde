package pgcluster

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
)

// CreatePasswordRole creates role as a superuser with replication and
// password on c (a primary: standbys receive the role by replication) and
// makes c ask it for its password over TCP (see RequirePassword).
func (c *Cluster) CreatePasswordRole(t testing.TB, role, password string) {
	t.Helper()
	c.Exec(t, "postgres", "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN SUPERUSER REPLICATION PASSWORD "+quoteLiteral(password))
	c.RequirePassword(t, role)
}

// RequirePassword puts scram-sha-256 lines for role (databases and
// replication, over loopback TCP) ahead of the trust lines of c's
// pg_hba.conf and reloads the configuration.
func (c *Cluster) RequirePassword(t testing.TB, role string) {
	t.Helper()
	path := filepath.Join(c.DataDir, "pg_hba.conf")
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("pgcluster: %v", err)
	}
	lines := fmt.Sprintf("host all %[1]s 127.0.0.1/32 scram-sha-256\nhost replication %[1]s 127.0.0.1/32 scram-sha-256\n", role)
	if err := os.WriteFile(path, append([]byte(lines), old...), 0o600); err != nil {
		t.Fatalf("pgcluster: %v", err)
	}
	if c.user != nil {
		if err := os.Chown(path, int(c.user.UID), int(c.user.GID)); err != nil {
			t.Fatalf("pgcluster: %v", err)
		}
	}
	if err := c.ExecContext(context.Background(), "postgres", "SELECT pg_reload_conf()"); err != nil {
		t.Fatalf("pgcluster: reload: %v", err)
	}
}

// DSNAs returns a connection URL for database db as role with password
// over TCP.
func (c *Cluster) DSNAs(db, role, password string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(role, password),
		Host: fmt.Sprintf("%s:%d", c.Host, c.Port), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

func quoteLiteral(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}
