package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"meridian.dev/meridian/cmd/internal/daemon"
	"meridian.dev/meridian/internal/testenv/demo"
)

func newDemoCommand(self string) *cobra.Command {
	var o demo.Options
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run Meridian end to end on this machine: three regions, git, Route53 and DNS, the daemon",
		Long: `Demo starts three local Kubernetes regions with workloads, a git server holding a
copy of fleet-example, a Route53 test server with its DNS server, a load balancer
stand-in per region, and the daemon; then prints the dashboard's address and a
short script to try (commit a tenant, break an app and watch DNS fail over,
revert). The first run builds Kubernetes from source, with progress shown.
Ctrl-C stops everything it started. Run it inside a Meridian checkout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if o.Dir == "" {
				dir, err := regionsDir("")
				if err != nil {
					return err
				}
				o.Dir = filepath.Join(filepath.Dir(dir), "demo")
			}
			o.Progress, o.Out = cmd.ErrOrStderr(), cmd.OutOrStdout()
			o.Self = self
			o.Daemon = func(ctx context.Context, configFile string, log io.Writer) error {
				return daemon.Run(ctx, log, daemon.Options{ConfigFile: configFile})
			}
			return demo.Run(ctx, o)
		},
	}
	cmd.Flags().StringVar(&o.FleetDir, "fleet", "fleet-example", "the fleet to serve")
	cmd.Flags().StringVar(&o.Dir, "dir", "", "state directory, emptied first (default: the user cache dir's meridian/demo)")
	cmd.Flags().StringVar(&o.Listen, "listen", "127.0.0.1:8080", "the daemon's HTTP address: dashboard, API, metrics")
	return cmd
}

func newScaleCommand() *cobra.Command {
	var kubeconfig, kubeContext, namespace string
	var replicas int32
	cmd := &cobra.Command{
		Use:     "scale DEPLOYMENT --context REGION --namespace TENANT --replicas N",
		Short:   "Set a Deployment's replicas in a local region (what kubectl scale does)",
		Example: "  meridian-dev scale portal --kubeconfig ~/.cache/meridian/demo/regions/kubeconfig --context us-east-1 --namespace trucking --replicas 0",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := demo.Scale(cmd.Context(), kubeconfig, kubeContext, namespace, args[0], replicas); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: deployment %s/%s scaled to %d\n", kubeContext, namespace, args[0], replicas)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "the kubeconfig file (required)")
	f.StringVar(&kubeContext, "context", "", "the region's context (required)")
	f.StringVarP(&namespace, "namespace", "n", "", "the namespace: the tenant (required)")
	f.Int32Var(&replicas, "replicas", 0, "the replicas to set")
	for _, name := range []string{"kubeconfig", "context", "namespace", "replicas"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func newResolveCommand() *cobra.Command {
	var server string
	cmd := &cobra.Command{
		Use:   "resolve NAME --server HOST:PORT",
		Short: "Ask a DNS server for a name's A records, following CNAMEs (what dig +short does)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			answers, err := demo.Resolve(server, args[0])
			if err != nil {
				return err
			}
			if len(answers) > 0 {
				fmt.Fprintln(cmd.OutOrStdout(), strings.Join(answers, "\n"))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "the DNS server, host:port (required)")
	_ = cmd.MarkFlagRequired("server")
	return cmd
}
