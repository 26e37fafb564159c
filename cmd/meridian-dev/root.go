package main

import (
	"github.com/spf13/cobra"
)

// newRootCommand builds the commands; self is how their messages tell people
// to run this binary again (see invocation).
func newRootCommand(self string) *cobra.Command {
	root := &cobra.Command{
		Use:   "meridian-dev",
		Short: "Local Kubernetes regions and the end-to-end demo, for trying Meridian or working on it",
		Long: `meridian-dev runs Meridian's developer environments on this machine: local
Kubernetes "regions" made of real components (each its own etcd and
kube-apiserver, plus controller-manager, scheduler and kwok fake nodes with
--workloads, on 127.0.0.1 only), and the demo, which adds a git server, a
Route53 test server with its DNS server, and the daemon. The components are
built from Go modules the first time (about 12 minutes on two cores) and
cached; run it inside a Meridian checkout.

It is a binary of its own so that the production binary, meridian, links none
of these test environments.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newDemoCommand(self),
		newUpCommand(self),
		newDownCommand(),
		newBuildCommand(),
		newImageCommand(),
		newScaleCommand(),
		newResolveCommand(),
	)
	return root
}
