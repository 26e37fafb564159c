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

type upFlags struct {
	regions   int
	names     []string
	workloads bool
	nodes     int
	dir       string
}

func newUpCommand(self string) *cobra.Command {
	var f upFlags
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start local regions that keep running after this command exits",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runUp(ctx, cmd, self, f)
		},
	}
	cmd.Flags().IntVar(&f.regions, "regions", 3, "number of regions")
	cmd.Flags().StringSliceVar(&f.names, "names", nil, "region names (default us-east-1,eu-west-2,ap-northeast-2,region-4,...)")
	cmd.Flags().BoolVar(&f.workloads, "workloads", false, "also run controller-manager, scheduler and kwok fake nodes, so workloads become Available")
	cmd.Flags().IntVar(&f.nodes, "nodes", 3, "fake nodes per region with --workloads")
	cmd.Flags().StringVar(&f.dir, "dir", "", "state directory (default: the user cache dir's meridian/dev)")
	return cmd
}

func runUp(ctx context.Context, cmd *cobra.Command, self string, f upFlags) error {
	dir, err := regionsDir(f.dir)
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
	down := self + " down"
	if f.dir != "" {
		down += " --dir " + f.dir
	}
	fmt.Fprintf(out, "logs and state: %s\nstop with: %s\n", tb.Dir, down)
	return nil
}

func newDownCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the regions that up started and remove their state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := regionsDir(dir)
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
	cmd.Flags().StringVar(&dir, "dir", "", "state directory given to up")
	return cmd
}

func newBuildCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "build",
		Short: "Build and cache every testbed component now (tests, up and demo then start in seconds)",
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

// regionsDir is the state directory of up and down: flag, or the default.
func regionsDir(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	return testbed.DefaultDevDir()
}
