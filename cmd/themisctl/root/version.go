package root

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/starter"
)

// Version is themisctl's version as stamped at build time:
//
//	go build -ldflags "-X github.com/themis-maintenance/themis/cmd/themisctl/root.Version=v1.2.3" ./cmd/themisctl
//
// When it is empty, ResolvedVersion derives one from the build info.
var Version string

// versionVar is the -X path of Version.
const versionVar = "github.com/themis-maintenance/themis/cmd/themisctl/root.Version"

// ResolvedVersion is the version themisctl reports (--version, `version`,
// the User-Agent, and GET /status of the server it runs): Version when
// stamped; else the module version when built with `go install
// module@version`; else starter.Version with the VCS revision the binary was
// built from ("0.1.0-devel+3f2a9c1d5e7b", ".dirty" when the work tree had
// changes); else starter.Version.
func ResolvedVersion() string {
	info, _ := debug.ReadBuildInfo()
	return resolveVersion(Version, info)
}

func resolveVersion(stamped string, info *debug.BuildInfo) string {
	if stamped != "" {
		return stamped
	}
	if info == nil {
		return starter.Version
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return starter.Version
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	v := starter.Version + "-devel+" + rev
	if dirty {
		v += ".dirty"
	}
	return v
}

// newCmdVersion returns `themisctl version`, which prints what --version
// prints.
func newCmdVersion(version string) *cobra.Command {
	return cmdutil.Silence(&cobra.Command{
		Use:   "version",
		Short: "Print the version of themisctl",
		Args:  cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "themisctl version %s\n", version)
			return err
		},
	})
}
