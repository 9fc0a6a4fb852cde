package sqlite

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// TestDSNForms: the probe and a task work on a database named by an
// absolute path, a relative path (the demo target's .data/demo.db), and
// each form of file: URI, also with characters a URI must escape.
func TestDSNForms(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	dir := filepath.Join(root, ".data", "odd dir #1?")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(dir, "demo.db")
	if err := SeedDemo(ctx, abs); err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	escaped := (&url.URL{Path: abs}).EscapedPath()
	relEscaped := (&url.URL{Path: ".data/odd dir #1?/demo.db"}).EscapedPath()
	d := NewWithOptions(Options{})
	for name, dsn := range map[string]string{
		"absolute path":      abs,
		"relative path":      filepath.Join(".data", "odd dir #1?", "demo.db"),
		"file:/abs":          "file:" + escaped,
		"file:///abs":        "file://" + escaped,
		"file://localhost":   "file://localhost" + escaped,
		"file:relative":      "file:" + relEscaped,
		"file: with params":  "file://" + escaped + "?cache=private&mode=ro",
		"upper-case scheme":  "FILE:" + escaped,
		"surrounding spaces": "  " + abs + " ",
	} {
		t.Run(name, func(t *testing.T) {
			tg := driver.Target{Name: "demo", Driver: Name, DSN: dsn, QuotaBytes: 100 << 20}
			th, err := d.Probe(ctx, tg, nil)
			if err != nil || !th.Reachable || th.SizeBytes <= 0 {
				t.Fatalf("probe %q = %+v, %v", dsn, th, err)
			}
			res, err := d.Run(ctx, driver.Request{Target: tg, Task: domain.TaskQuotaCheck})
			if err != nil {
				t.Fatalf("quota_check on %q: %v", dsn, err)
			}
			if res.Details == nil {
				t.Fatalf("quota_check on %q: no details", dsn)
			}
			// A read-write task: the DSN's mode=ro must not leak into it.
			if _, err := d.Run(ctx, driver.Request{Target: tg, Task: domain.TaskStatisticsUpdate}); err != nil {
				t.Fatalf("statistics_update on %q: %v", dsn, err)
			}
		})
	}
}

func TestDSNRefusals(t *testing.T) {
	ctx := context.Background()
	d := NewWithOptions(Options{})
	for dsn, want := range map[string]string{
		"file://db.example.com/x.db": `names host "db.example.com"`,
		"file::memory:":              "names no database file",
		"":                           "no database file configured",
	} {
		tg := driver.Target{Name: "bad", Driver: Name, DSN: dsn}
		_, err := d.Run(ctx, driver.Request{Target: tg, Task: domain.TaskQuotaCheck})
		var perm *driver.PermanentError
		if !errors.As(err, &perm) || perm.Kind != driver.KindMisconfigured || !strings.Contains(err.Error(), want) {
			t.Errorf("DSN %q: %v, want a Misconfigured error containing %q", dsn, err, want)
		}
		if _, err := d.Probe(ctx, tg, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("probe of DSN %q: %v, want %q", dsn, err, want)
		}
	}
}
