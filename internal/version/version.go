// Package version holds the build identity of the meridian binary. The values are
// set at link time (see the Makefile) and default to a development build, so every
// report and render-cache key can name exactly which Meridian produced it.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release of Meridian, set with -ldflags "-X meridian.dev/meridian/internal/version.Version=...".
var Version = "v0.0.0-dev"

// Commit is the git commit the binary was built from, set at link time or read
// from the Go build information when the binary was built inside a checkout.
var Commit = ""

// String describes the build in one line, as `meridian version` prints it.
func String() string {
	return fmt.Sprintf("meridian %s (commit %s, %s, %s/%s)", Version, commit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func commit() string {
	if Commit != "" {
		return Commit
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
