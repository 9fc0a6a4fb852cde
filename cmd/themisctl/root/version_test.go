package root

import (
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/themis-maintenance/themis/starter"
)

func TestResolveVersion(t *testing.T) {
	vcs := func(rev, modified string) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Path: "github.com/themis-maintenance/themis", Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}}
	}
	base := starter.Version
	for _, tc := range []struct {
		name    string
		stamped string
		info    *debug.BuildInfo
		want    string
	}{
		{"stamped wins", "v1.2.3", vcs("3f2a9c1d5e7b8a9c0d1e2f3a4b5c6d7e8f9a0b1c", "true"), "v1.2.3"},
		{"revision", "", vcs("3f2a9c1d5e7b8a9c0d1e2f3a4b5c6d7e8f9a0b1c", "false"), base + "-devel+3f2a9c1d5e7b"},
		{"dirty", "", vcs("3f2a9c1d5e7b8a9c0d1e2f3a4b5c6d7e8f9a0b1c", "true"), base + "-devel+3f2a9c1d5e7b.dirty"},
		{"short revision", "", vcs("abc", "false"), base + "-devel+abc"},
		{"go install module@version", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.4.0"}}, "v0.4.0"},
		{"no vcs", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, base},
		{"no build info", "", nil, base},
	} {
		if got := resolveVersion(tc.stamped, tc.info); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	// Unstamped, the test binary resolves to something.
	if Version != "" || ResolvedVersion() == "" {
		t.Fatalf("Version %q, resolved %q", Version, ResolvedVersion())
	}
}

func TestVersionCommand(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, stdout, stderr := run(t, args...)
		if code != 0 || stdout != "themisctl version test\n" || stderr != "" {
			t.Errorf("%v: exit %d %q %q", args, code, stdout, stderr)
		}
	}
	if code, _, _ := run(t, "version", "extra"); code != 2 {
		t.Errorf("version extra: exit %d", code)
	}
}

// The -X path documented on Version stamps the built binary.
func TestVersionStampedByLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds themisctl")
	}
	bin := filepath.Join(t.TempDir(), "themisctl")
	build := exec.Command("go", "build", "-o", bin, "-ldflags", "-X "+versionVar+"=v9.8.7-test", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || string(out) != "themisctl version v9.8.7-test\n" {
		t.Fatalf("%v %q", err, out)
	}
}
