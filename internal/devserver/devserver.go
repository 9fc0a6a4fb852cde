// Package devserver starts the Temporal CLI dev server (`temporal server
// start-dev`) as a child process, with a file-backed store and the custom
// search attributes Themis Maintenance needs. `themisctl dev` and the
// integration tests use it; production points at a real cluster instead.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sdktestsuite "go.temporal.io/sdk/testsuite"

	"github.com/themis-maintenance/themis/workflows"
)

// Options configure the dev server.
type Options struct {
	// Binary is the temporal CLI; optional, found with FindBinary.
	Binary string
	// HostPort is the frontend address; optional, a free loopback port.
	HostPort string
	// UIPort enables the UI on that port; empty disables the UI.
	UIPort string
	// DBFile persists the server's state; empty keeps it in memory.
	DBFile    string
	Namespace string
	// Log receives the server's output; optional, discarded.
	Log io.Writer
}

// FindBinary returns the temporal CLI to run: $THEMIS_TEMPORAL_BIN, then
// `temporal` on PATH, then ./bin/temporal relative to the working
// directory or any parent (so tests in sub-packages find the repo's copy).
func FindBinary() (string, error) {
	if p := os.Getenv("THEMIS_TEMPORAL_BIN"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "bin", "temporal")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("temporal CLI not found: run `make bin/temporal` (or put `temporal` on PATH, or set THEMIS_TEMPORAL_BIN)")
		}
		dir = parent
	}
}

// Start runs the dev server and waits until it answers.
func Start(ctx context.Context, opts Options) (*sdktestsuite.DevServer, error) {
	bin := opts.Binary
	if bin == "" {
		var err error
		if bin, err = FindBinary(); err != nil {
			return nil, err
		}
	}
	out := opts.Log
	if out == nil {
		out = io.Discard
	}
	ns := opts.Namespace
	if ns == "" {
		ns = "default"
	}
	if opts.DBFile != "" {
		if err := os.MkdirAll(filepath.Dir(opts.DBFile), 0o755); err != nil {
			return nil, fmt.Errorf("dev server data dir: %w", err)
		}
	}
	srv, err := sdktestsuite.StartDevServer(ctx, sdktestsuite.DevServerOptions{
		ExistingPath:  bin,
		ClientOptions: &client.Options{HostPort: opts.HostPort, Namespace: ns},
		DBFilename:    opts.DBFile,
		EnableUI:      opts.UIPort != "",
		UIPort:        opts.UIPort,
		LogLevel:      "error",
		SearchAttributes: temporal.NewSearchAttributes(
			workflows.ScheduleIDKey.ValueSet(""), workflows.TargetKey.ValueSet(""), workflows.JobStateKey.ValueSet(""),
			workflows.ScheduleNameKey.ValueSet("")),
		// Schedules fire within a second of their time, and workflows
		// started by tests show in visibility at once.
		ExtraArgs: []string{"--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true"},
		Stdout:    out,
		Stderr:    out,
	})
	if err != nil {
		return nil, fmt.Errorf("start temporal dev server (%s): %w", bin, err)
	}
	return srv, nil
}
