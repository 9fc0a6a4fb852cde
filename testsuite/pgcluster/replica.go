package pgcluster

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// StartReplica makes a streaming hot standby of c with pg_basebackup -R -X
// stream on another free port. It is stopped and removed when t ends (and by
// c.Stop).
func (c *Cluster) StartReplica(t testing.TB) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := c.StartReplicaContext(ctx)
	if err != nil {
		t.Fatalf("pgcluster: replica: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Logf("pgcluster: stop replica: %v", err)
		}
	})
	return r
}

// StartReplicaContext is StartReplica without a testing.TB; c.Stop stops
// the replica too.
func (c *Cluster) StartReplicaContext(ctx context.Context) (*Cluster, error) {
	r, err := newCluster(c.BinDir, c.Major)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = r.Stop()
		}
	}()
	r.primary = c
	if _, err := r.runner.Run(ctx, "pg_basebackup",
		"-h", c.Host, "-p", strconv.Itoa(c.Port), "-U", Superuser, "--no-password",
		"-D", r.DataDir, "-R", "-X", "stream", "-c", "fast"); err != nil {
		return nil, fmt.Errorf("pg_basebackup for replica: %w", err)
	}
	archive := fmt.Sprintf(`test ! -f "%s/%%f" && cp "%%p" "%s/%%f"`, r.ArchiveDir, r.ArchiveDir)
	settings := map[string]string{
		"unix_socket_directories": r.SocketDir,
		"archive_command":         archive,
	}
	if err := r.startOnFreePort(ctx, settings); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.replicas = append(c.replicas, r)
	c.mu.Unlock()
	ok = true
	return r, nil
}

// Primary returns the cluster a replica streams from (nil for a primary).
func (c *Cluster) Primary() *Cluster { return c.primary }

// WaitCaughtUp waits until the replica has replayed everything the primary
// had inserted into its WAL when it was called (the insert position:
// with synchronous_commit off a commit may not be written yet).
func (c *Cluster) WaitCaughtUp(t testing.TB, replica *Cluster) {
	t.Helper()
	lsn := Scalar[string](t, c, "postgres", "SELECT pg_current_wal_insert_lsn()::text")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if Scalar[bool](t, replica, "postgres", "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", lsn) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("pgcluster: replica did not replay up to %s within 30s", lsn)
}
