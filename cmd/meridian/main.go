// Command meridian is the GitOps reconciler for multi-tenant, multi-region fleets.
// This package only wires flags to the library packages; see README.md.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

func main() {
	// The Kubernetes client libraries log through controller-runtime's logger;
	// Meridian reports what they do itself.
	ctrllog.SetLogger(logr.Discard())
	err := newRootCommand().Execute()
	var exit exitError
	switch {
	case errors.As(err, &exit):
		os.Exit(exit.code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

// exitError ends the process with a code after the command already reported
// what went wrong (for example validate, which prints every error itself).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
