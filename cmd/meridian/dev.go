package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"meridian.dev/meridian/internal/testenv/testbed"
)

// newDevCommand groups the commands that run local regions for people trying
// Meridian or working on it; the logic is in internal/testenv/testbed.
func newDevCommand() *cobra.Command {
	dev := &cobra.Command{
		Use:   "dev",
		Short: "Run local Kubernetes regions made of real components",
		Long: `Run local Kubernetes "regions" on this machine: each its own etcd and
kube-apiserver (plus controller-manager, scheduler and kwok fake nodes with
--workloads), on 127.0.0.1 only. The components are built from Go modules the
first time (about 12 minutes on two cores) and cached; run this inside a
Meridian checkout.`,
	}
	dev.AddCommand(newDevUpCommand(), newDevDownCommand(), newDevBuildCommand(), newDevScaleCommand(), newDevResolveCommand())
	return dev
}

type devUpFlags struct {
	regions   int
	names     []string
	workloads bool
	nodes     int
	dir       string
}

func newDevUpCommand() *cobra.Command {
	var f devUpFlags
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start local regions that keep running after this command exits",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDevUp(ctx, cmd, f)
		},
	}
	cmd.Flags().IntVar(&f.regions, "regions", 3, "number of regions")
	cmd.Flags().StringSliceVar(&f.names, "names", nil, "region names (default us-east-1,eu-west-2,ap-northeast-2,region-4,...)")
	cmd.Flags().BoolVar(&f.workloads, "workloads", false, "also run controller-manager, scheduler and kwok fake nodes, so workloads become Available")
	cmd.Flags().IntVar(&f.nodes, "nodes", 3, "fake nodes per region with --workloads")
	cmd.Flags().StringVar(&f.dir, "dir", "", "state directory (default: the user cache dir's meridian/dev)")
	return cmd
}

func runDevUp(ctx context.Context, cmd *cobra.Command, f devUpFlags) error {
	dir, err := devDir(f.dir)
	if err != nil {
		return err
	}
	tb, err := testbed.Start(ctx, testbed.Options{
		Regions:   f.regions,
		Names:     f.names,
		Workloads: f.workloads,
		Nodes:     f.nodes,
		Dir:       dir,
		Progress:  cmd.ErrOrStderr(),
		Detached:  true,
	})
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	for _, r := range tb.Regions {
		fmt.Fprintf(out, "%-16s %s\n  kubeconfig: %s\n  try:        kubectl --kubeconfig %s get nodes\n", r.Name, r.Server, r.Kubeconfig, r.Kubeconfig)
	}
	fmt.Fprintf(out, "all regions (one context each): %s\n", tb.Kubeconfig)
	down := "meridian dev down"
	if f.dir != "" {
		down += " --dir " + f.dir
	}
	fmt.Fprintf(out, "logs and state: %s\nstop with: %s\n", tb.Dir, down)
	return nil
}

func newDevDownCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the regions that dev up started and remove their state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := devDir(dir)
			if err != nil {
				return err
			}
			err = testbed.Down(d)
			if errors.Is(err, testbed.ErrNotRunning) {
				fmt.Fprintf(cmd.OutOrStdout(), "no testbed in %s\n", d)
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stopped the testbed in %s\n", d)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "state directory given to dev up")
	return cmd
}

func newDevBuildCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "build",
		Short: "Build and cache every testbed component now (tests and dev up then start in seconds)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			bins, err := testbed.Build(ctx, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), bins.Dir)
			return nil
		},
	}
}

func devDir(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	return testbed.DefaultDevDir()
}
