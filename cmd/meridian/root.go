package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"meridian.dev/meridian/internal/version"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "meridian",
		Short: "GitOps reconciler for multi-tenant, multi-region Kubernetes fleets",
		Long: `Meridian pulls a fleet repository (tenants × regions × apps), renders every
placement, applies it to the cluster of each region and keeps Route53 latency
records pointing clients at the nearest healthy region.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newRenderCommand(),
		newDiffCommand(),
		newPlanCommand(),
		newValidateCommand(),
		newVersionCommand(),
		newRunCommand(),
		newStatusCommand(),
		newMovedCommand("dev", "the local regions are"),
		newMovedCommand("demo", "the demo is"),
	)
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of meridian",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), version.String())
			return err
		},
	}
}
