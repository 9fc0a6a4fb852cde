package schedule

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
)

// tenv is a factory wired to an httptest server running the real gateway
// over the fake service (every exchange validated against the OpenAPI
// document), with buffered IO streams.
type tenv struct {
	f           *cmdutil.Factory
	srv         *apitest.Server
	in          *bytes.Buffer
	out, errOut *bytes.Buffer
}

func newTEnv(t *testing.T, tty bool) *tenv {
	t.Helper()
	srv := apitest.NewServer(t, nil, api.Options{})
	ios, in, out, errOut := cmdutil.TestStreams(tty)
	f := cmdutil.NewFactory(ios, "test")
	f.APIURL = srv.URL
	f.HTTPClient = srv.Client()
	f.PollInterval = time.Millisecond
	f.Getenv = func(string) string { return "" }
	return &tenv{f: f, srv: srv, in: in, out: out, errOut: errOut}
}

// argvFactory is a factory for argv → options tests; nothing is dialled.
func argvFactory(tty bool) *cmdutil.Factory {
	ios, _, _, _ := cmdutil.TestStreams(tty)
	return cmdutil.NewFactory(ios, "test")
}

// execute runs cmd with args and returns its error.
func execute(cmd *cobra.Command, args ...string) error {
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	return cmd.ExecuteContext(context.Background())
}

func isFlagError(err error) bool {
	var fe *cmdutil.FlagError
	return errors.As(err, &fe)
}

func withArgs(c *cobra.Command, args ...string) *cobra.Command {
	c.SetArgs(args)
	return c
}
