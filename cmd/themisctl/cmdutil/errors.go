package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api/client"
)

// Exit codes of themisctl.
const (
	ExitOK = 0
	// ExitFailure: the command failed (server error, not found, conflict,
	// a job that ended failed or cancelled under --wait/--watch).
	ExitFailure = 1
	// ExitUsage: bad flags or arguments.
	ExitUsage = 2
	// ExitUnhealthy: `health` found the overall status critical (or
	// degraded, under --fail-on degraded).
	ExitUnhealthy = 3
	// ExitAuth: the server refused the credentials (401) or the scope (403).
	ExitAuth = 4
	// ExitUnavailable: the API or Temporal cannot be reached; retry later.
	ExitUnavailable = 5
	// ExitInterrupted: the command was interrupted (Ctrl-C).
	ExitInterrupted = 130
)

// FlagError is a usage error: Execute prints it with a hint to --help and
// exits with ExitUsage.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// FlagErrorf returns a *FlagError.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{Err: fmt.Errorf(format, args...)}
}

// ExitError makes a command exit with Code after printing Err (when Err
// is not nil).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}
func (e *ExitError) Unwrap() error { return e.Err }

// ErrSilent makes a command exit with ExitFailure without printing anything
// more (it has already said why).
var ErrSilent = errors.New("silent error")

// ExitCode maps an error returned by a command onto the process exit code.
func ExitCode(err error) int {
	var (
		fe *FlagError
		ee *ExitError
		ae *client.APIError
		ne net.Error
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &fe), isCobraUsageError(err):
		return ExitUsage
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.As(err, &ae):
		switch ae.Status {
		case http.StatusUnauthorized, http.StatusForbidden:
			return ExitAuth
		case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
			return ExitUnavailable
		}
		return ExitFailure
	case errors.As(err, &ne), isConnRefused(err):
		return ExitUnavailable
	}
	return ExitFailure
}

func isConnRefused(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}

// cobra reports bad commands, flags and argument counts as plain errors.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command ", "unknown flag: ", "unknown shorthand flag: ", "flag needs an argument: ",
		"invalid argument ", "accepts ", "requires at least ", "requires at most ", "required flag(s) ", "if any flags in the group "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// Message renders err as the one line Execute prints (without "error: ").
func Message(err error) string {
	var ae *client.APIError
	msg := err.Error()
	if errors.As(err, &ae) {
		msg = ae.Detail
		if msg == "" {
			msg = ae.Title
		}
		if ae.Status == http.StatusUnauthorized {
			msg += " (set --token or " + EnvToken + ")"
		}
		if ae.RequestID != "" {
			msg += fmt.Sprintf(" [HTTP %d %s, request %s]", ae.Status, ae.Code, ae.RequestID)
		} else {
			msg += fmt.Sprintf(" [HTTP %d %s]", ae.Status, ae.Code)
		}
	} else if isConnRefused(err) {
		msg += " (is the Themis API running? set --api-url or " + EnvAPIURL + ")"
	}
	return strings.Join(strings.Fields(msg), " ")
}

// Execute runs root with ctx and returns the process exit code. Errors are
// printed as one line on ios.ErrOut ("error: ..."); usage errors add a hint
// to --help instead of dumping the usage text.
func Execute(ctx context.Context, root *cobra.Command, ios *IOStreams) int {
	root.SilenceErrors = true
	root.SilenceUsage = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &FlagError{Err: err} })
	root.SetIn(ios.In)
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	code := ExitCode(err)
	if errors.Is(err, ErrSilent) {
		return ExitFailure
	}
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Err != nil {
		fmt.Fprintf(ios.ErrOut, "error: %s\n", Message(err))
	}
	if code == ExitUsage && cmd != nil {
		fmt.Fprintf(ios.ErrOut, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// ExactArgs is cobra.ExactArgs reporting a usage error that names the
// expected arguments.
func ExactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			if len(args) < n {
				return FlagErrorf("missing argument: %s", names)
			}
			return FlagErrorf("too many arguments (want %s, got %d)", names, len(args))
		}
		return nil
	}
}

// NoArgs refuses positional arguments with a usage error.
func NoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return FlagErrorf("unexpected argument %q", args[0])
	}
	return nil
}

// Silence makes cmd leave error and usage printing to Execute, also when
// it is run on its own (as in tests).
func Silence(cmd *cobra.Command) *cobra.Command {
	cmd.SilenceErrors = true
	cmd.SilenceUsage = true
	return cmd
}
