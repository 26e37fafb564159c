// Command meridian-dev runs Meridian's developer environments on one machine:
// local Kubernetes regions made of real components (up, down, build) and the
// end-to-end demo (demo, with scale and resolve for its script), and Meridian's
// container image (image, built without a container daemon). It is a
// binary of its own so that the production binary, cmd/meridian, links none of
// the test environments under internal/testenv; see
// cmd/meridian/deps_test.go. This package only wires flags to those packages.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

func main() {
	// The Kubernetes client libraries log through controller-runtime's logger;
	// the demo's daemon reports what they do itself.
	ctrllog.SetLogger(logr.Discard())
	if err := newRootCommand(invocation()).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

// invocation is how messages tell people to run this binary again: `go run
// ./cmd/meridian-dev` when it was started that way, its path otherwise.
func invocation() string {
	self, err := os.Executable()
	switch {
	case err != nil:
		return "meridian-dev"
	case strings.Contains(self, "go-build"): // go run
		return "go run ./cmd/meridian-dev"
	}
	return self
}
