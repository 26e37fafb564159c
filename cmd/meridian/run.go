package main

import (
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"meridian.dev/meridian/cmd/internal/daemon"
)

func newRunCommand() *cobra.Command {
	o := daemon.Options{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon: follow the fleet repository and reconcile every region",
		Long: `Run follows the fleet repository named in the configuration file, and for every
new revision renders each unit (every placement, tenant namespace and addon in
each region), applies it to its region's cluster wave by wave, prunes what left the fleet and waits for health. A revision that is not
valid is refused and the last good one keeps being served; a pass that did not
converge is retried with backoff.

It serves /healthz, /readyz (once the first pass finished), the dashboard,
/api/v1/status (what meridian status reads), /metrics and, when a webhook
secret is configured, /hooks/git on the configured listen address. SIGINT or
SIGTERM lets the pass in flight finish, then exits. See docs/run.md.`,
		Example: `  meridian run --config /etc/meridian/config.yaml
  meridian run --config config.yaml --once     # one fetch, one pass; fails when the pass had errors`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return daemon.Run(ctx, cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ConfigFile, "config", "", "the configuration file (required)")
	f.BoolVar(&o.Once, "once", false, "fetch once, run one pass and exit; the exit status says whether it converged")
	f.StringVar(&o.Route53Endpoint, "route53-endpoint", "", "the URL of a Route53-compatible API; turns DNS on (overrides route53.endpoint of the configuration file)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
