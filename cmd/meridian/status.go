package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"meridian.dev/meridian/reconciler/status"
	"meridian.dev/meridian/review/unitstatus"
)

// The exit codes of `meridian status`, as its help and docs/status.md document
// them. 1 and 2 mean what they mean for diff and plan: an error, and something
// to look at.
const (
	statusAllReady = 0
	statusError    = 1
	statusNotReady = 2
)

type statusOptions struct {
	server  string
	output  string
	caFile  string
	timeout time.Duration
	tenants []string
	regions []string
	apps    []string
	states  []string
	kinds   []string
	// revision, when set, is a commit (or a prefix of its hash) every selected
	// unit must run for the exit status to be 0.
	revision string
}

func newStatusCommand() *cobra.Command {
	o := statusOptions{}
	cmd := &cobra.Command{
		Use:   "status [--server URL] [-o table|wide|json|yaml] [--tenant T] [--region R] [--app A] [--state S]",
		Short: "Show the sync state of every unit from a running daemon's API",
		Long: `Status reads /api/v1/status from a running daemon (meridian run, or the demo)
and prints its units: every placement (a tenant's app in a region), and with
them each tenant's namespace in a region and each platform addon in a region.
The table shows tenant, region, app, state, the short revision the unit runs
and why it is not Ready; -o wide adds the wave, drift, DNS endpoints healthy
out of all, the last successful sync and the whole reason; -o json and -o yaml
print the selected units as the API serves them. A summary line counts the
selected units per state.

The daemon applies the filters; each takes a comma-separated list and may be
repeated, and a unit must match every filter given. A tenant, region, app or
addon the daemon does not know is an error, so a typo never looks like an empty
fleet. --app matches an addon unit by its addon's name, --tenant "(addons)"
the addons.

The server is --server, else $MERIDIAN_SERVER, else http://127.0.0.1:8080 (the
daemon's default listen address, and the demo's).

Exit status: 0 every selected unit is Ready (and, with --revision, runs that
commit); 2 some selected unit is not, or the daemon has not finished a pass yet; 1 an error (the daemon cannot be
reached or answered with something other than its status, or a flag is wrong).`,
		Example: `  meridian status
  meridian status --server http://meridian.example.internal:8080 --tenant trucking -o wide
  meridian status --state Failed,Held --region us-east-1
  meridian status --kind placement -o json
  until meridian status --tenant logistics-eu --revision "$(git rev-parse HEAD)" >/dev/null; do sleep 5; done`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("server") {
				if env := os.Getenv(unitstatus.ServerEnv); env != "" {
					o.server = env
				}
			}
			return runStatus(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.server, "server", unitstatus.DefaultServer, "the daemon's address (its listen address); $"+unitstatus.ServerEnv+" sets it too")
	f.StringVarP(&o.output, "output", "o", "table", "table, wide, json or yaml")
	f.StringVar(&o.caFile, "ca-file", "", "PEM certificates to trust for an https:// server (the daemon's tls.certFile, or its CA)")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "how long to wait for the daemon's answer")
	f.StringSliceVar(&o.tenants, "tenant", nil, "only these tenants (comma-separated, repeatable)")
	f.StringSliceVar(&o.regions, "region", nil, "only these regions (comma-separated, repeatable)")
	f.StringSliceVar(&o.apps, "app", nil, "only these apps or addons (comma-separated, repeatable)")
	f.StringSliceVar(&o.states, "state", nil, "only these states: "+unitstatus.StatesList()+" (comma-separated, repeatable)")
	f.StringSliceVar(&o.kinds, "kind", nil, "only these kinds of unit: "+status.KindPlacement+", "+status.KindNamespace+", "+status.KindAddon+" (default all)")
	f.StringVar(&o.revision, "revision", "", "exit 0 only when every selected unit is Ready at this commit (its hash or a prefix of at least 7 characters)")
	return cmd
}

// runStatus fetches the daemon's status, selects units and prints them. It
// returns exitError{statusNotReady} when a selected unit is not Ready.
func runStatus(ctx context.Context, stdout io.Writer, o statusOptions) error {
	sel, err := unitstatus.NewSelection(o.tenants, o.regions, o.apps, o.states, o.kinds)
	if err != nil {
		return err
	}
	if o.revision != "" && (len(o.revision) < 7 || strings.Trim(strings.ToLower(o.revision), "0123456789abcdef") != "") {
		return fmt.Errorf("--revision %q: give a commit hash or a prefix of at least 7 hex digits (git rev-parse HEAD)", o.revision)
	}
	o.revision = strings.ToLower(o.revision)
	switch o.output {
	case "table", "wide", "json", "yaml":
	default:
		return fmt.Errorf("-o %q: use table, wide, json or yaml", o.output)
	}
	client, err := statusClient(o.caFile, o.timeout)
	if err != nil {
		return err
	}
	if len(sel.Tenants)+len(sel.Regions)+len(sel.Apps) > 0 {
		sum, err := unitstatus.FetchSummary(ctx, client, o.server)
		if err != nil {
			return err
		}
		if err := unitstatus.Known(sum, sel); err != nil {
			return err
		}
	}
	st, err := unitstatus.Fetch(ctx, client, o.server, sel)
	if err != nil {
		return err
	}
	units := st.Placements
	switch o.output {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(units)
	case "yaml":
		var b []byte
		if b, err = yaml.Marshal(units); err == nil {
			_, err = stdout.Write(b)
		}
	default:
		err = unitstatus.WriteTable(stdout, st, units, o.output == "wide")
	}
	if err != nil {
		return err
	}
	if st.LastPass == nil || !unitstatus.AllReady(units) || !unitstatus.AllAt(units, o.revision) {
		return exitError{code: statusNotReady}
	}
	return nil
}

// statusClient is the HTTP client of `meridian status`, trusting caFile's
// certificates besides the system's when it is given.
func statusClient(caFile string, timeout time.Duration) (*http.Client, error) {
	if timeout <= 0 {
		return nil, fmt.Errorf("--timeout %s: give a positive duration such as 10s", timeout)
	}
	client := &http.Client{Timeout: timeout}
	if caFile == "" {
		return client, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it; give the daemon's certificate or its CA's", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	client.Transport = tr
	return client, nil
}
