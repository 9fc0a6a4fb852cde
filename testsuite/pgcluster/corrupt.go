package pgcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CorruptIndexPage damages btree index (schema-qualified name) in db on
// purpose: it stops the cluster cleanly (so the shutdown checkpoint has
// written every page and crash recovery cannot repair the damage), overwrites
// one page in the middle of the index file (pg_relation_filepath) with zero
// bytes, and starts the cluster again. amcheck's bt_index_check then reports
// "index contains unexpected zero page" (SQLSTATE XX002 index_corrupted).
// It returns the damaged block number.
func (c *Cluster) CorruptIndexPage(t testing.TB, db, index string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	block, err := c.CorruptIndexPageContext(ctx, db, index)
	if err != nil {
		t.Fatalf("pgcluster: corrupt %s: %v", index, err)
	}
	return block
}

// CorruptIndexPageContext is CorruptIndexPage without a testing.TB.
func (c *Cluster) CorruptIndexPageContext(ctx context.Context, db, index string) (int64, error) {
	conn, err := c.Connect(ctx, db)
	if err != nil {
		return 0, err
	}
	var (
		path      string
		am        string
		size, bsz int64
	)
	err = conn.QueryRow(ctx, `
		SELECT pg_relation_filepath(c.oid), am.amname, pg_relation_size(c.oid),
		       current_setting('block_size')::bigint
		FROM pg_class c JOIN pg_am am ON am.oid = c.relam
		WHERE c.oid = $1::regclass`, index).Scan(&path, &am, &size, &bsz)
	conn.Close(context.Background())
	if err != nil {
		return 0, err
	}
	if am != "btree" {
		return 0, fmt.Errorf("%s is a %s index, not btree", index, am)
	}
	blocks := size / bsz
	if blocks < 2 {
		return 0, fmt.Errorf("%s has %d block(s); need at least a metapage and one more", index, blocks)
	}
	// Stay inside the first 1 GiB segment file.
	block := min(blocks/2, (1<<30)/bsz-1)
	if err := c.inst.Stop(ctx, "fast"); err != nil {
		return 0, err
	}
	f, err := os.OpenFile(filepath.Join(c.DataDir, path), os.O_WRONLY, 0)
	if err != nil {
		return 0, err
	}
	_, werr := f.WriteAt(make([]byte, bsz), block*bsz)
	if err := f.Close(); werr == nil {
		werr = err
	}
	if werr != nil {
		return 0, werr
	}
	if err := c.inst.Start(ctx); err != nil {
		return 0, err
	}
	return block, nil
}
