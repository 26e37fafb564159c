package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"meridian.dev/meridian/reconciler/status"
	"meridian.dev/meridian/sources"
)

// serverEnv names the environment variable that sets `meridian status --server`.
const serverEnv = "MERIDIAN_SERVER"

// defaultServer is the daemon's API when neither --server nor MERIDIAN_SERVER
// says otherwise: the daemon's default listen address (":8080") on this machine,
// which is also where `meridian-dev demo` serves it.
const defaultServer = "http://127.0.0.1:8080"

// The exit codes of `meridian status`, as its help and docs/status.md document
// them. 1 and 2 mean what they mean for diff and plan: an error, and something
// to look at.
const (
	statusAllReady = 0
	statusError    = 1
	statusNotReady = 2
)

// Unit kinds, as --kind names them.
const (
	kindPlacement = "placement" // a tenant's app in a region
	kindNamespace = "namespace" // a tenant's namespace in a region
	kindAddon     = "addon"     // a platform addon in a region
)

// reasonWidth bounds the reason the default table shows; -o wide shows it whole.
const reasonWidth = 60

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

Filters select units client-side; each takes a comma-separated list and may be
repeated, and a unit must match every filter given. A tenant, region, app or
addon the daemon does not know is an error, so a typo never looks like an empty
fleet. --app matches an addon unit by its addon's name.

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
				if env := os.Getenv(serverEnv); env != "" {
					o.server = env
				}
			}
			return runStatus(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.server, "server", defaultServer, "the daemon's address (its listen address); $"+serverEnv+" sets it too")
	f.StringVarP(&o.output, "output", "o", "table", "table, wide, json or yaml")
	f.StringVar(&o.caFile, "ca-file", "", "PEM certificates to trust for an https:// server (the daemon's tls.certFile, or its CA)")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "how long to wait for the daemon's answer")
	f.StringSliceVar(&o.tenants, "tenant", nil, "only these tenants (comma-separated, repeatable)")
	f.StringSliceVar(&o.regions, "region", nil, "only these regions (comma-separated, repeatable)")
	f.StringSliceVar(&o.apps, "app", nil, "only these apps or addons (comma-separated, repeatable)")
	f.StringSliceVar(&o.states, "state", nil, "only these states: "+statesList()+" (comma-separated, repeatable)")
	f.StringSliceVar(&o.kinds, "kind", nil, "only these kinds of unit: placement, namespace, addon (default all)")
	f.StringVar(&o.revision, "revision", "", "exit 0 only when every selected unit is Ready at this commit (its hash or a prefix of at least 7 characters)")
	return cmd
}

// runStatus fetches the daemon's status, selects units and prints them. It
// returns exitError{statusNotReady} when a selected unit is not Ready.
func runStatus(ctx context.Context, stdout io.Writer, o statusOptions) error {
	sel, err := newUnitSelection(o)
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
	st, err := fetchStatus(ctx, client, o.server)
	if err != nil {
		return err
	}
	if err := sel.known(st); err != nil {
		return err
	}
	units := sel.filter(st.Placements)
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
		err = writeStatusTable(stdout, st, units, o.output == "wide")
	}
	if err != nil {
		return err
	}
	if st.LastPass == nil || !allReady(units) || !allAt(units, o.revision) {
		return exitError{code: statusNotReady}
	}
	return nil
}

// allAt reports whether every unit runs revision (a prefix of its hash); true
// when revision is empty.
func allAt(units []status.Placement, revision string) bool {
	for _, p := range units {
		if revision != "" && !strings.HasPrefix(p.Revision, revision) {
			return false
		}
	}
	return true
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

// statusURL turns --server (a URL, or host:port) into the status API's URL.
func statusURL(server string) (string, error) {
	if server == "" {
		return "", fmt.Errorf("--server is empty: give the daemon's address, such as %s", defaultServer)
	}
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--server %q: give the daemon's address as http://host:port or https://host:port", server)
	}
	if u.User != nil {
		return "", fmt.Errorf("--server: the address must not carry credentials; the status API needs none")
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/v1/status"
	u.RawQuery, u.Fragment = "", ""
	return u.String(), nil
}

// fetchStatus reads and decodes the daemon's /api/v1/status.
func fetchStatus(ctx context.Context, client *http.Client, server string) (*status.Status, error) {
	u, err := statusURL(server)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the daemon at %s: %w; is `meridian run` (or the demo) running there? Set --server or $%s to its listen address", server, unwrapURLError(err), serverEnv)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%s: %s: %s; is --server the daemon's listen address?", u, resp.Status, strings.TrimSpace(string(body)))
	}
	var st status.Status
	dec := json.NewDecoder(resp.Body)
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("%s: the answer is not a status document (%v); is --server the daemon's listen address?", u, err)
	}
	if st.States == nil || st.Placements == nil {
		return nil, fmt.Errorf("%s: the answer is not a status document (no states or placements); is --server the daemon's listen address?", u)
	}
	return &st, nil
}

// unwrapURLError drops net/http's "Get URL:" prefix, which the message says already.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// unitSelection is the filters of `meridian status`; an empty list selects all.
type unitSelection struct {
	tenants, regions, apps, kinds []string
	states                        []status.State
}

// newUnitSelection checks the filters that need no daemon to check: states and kinds.
func newUnitSelection(o statusOptions) (unitSelection, error) {
	sel := unitSelection{
		tenants: clean(o.tenants), regions: clean(o.regions), apps: clean(o.apps), kinds: clean(o.kinds),
	}
	for _, s := range clean(o.states) {
		i := slices.IndexFunc(status.States, func(st status.State) bool { return strings.EqualFold(string(st), s) })
		if i < 0 {
			return sel, fmt.Errorf("--state %s: no such state; use %s", s, statesList())
		}
		sel.states = append(sel.states, status.States[i])
	}
	for _, k := range sel.kinds {
		if k != kindPlacement && k != kindNamespace && k != kindAddon {
			return sel, fmt.Errorf("--kind %s: no such kind of unit; use placement, namespace or addon", k)
		}
	}
	return sel, nil
}

// clean splits nothing further (pflag split the commas) but trims blanks and
// drops empty items, so "--tenant a, b" and "--tenant a," work.
func clean(list []string) []string {
	var out []string
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// statesList is every state, for help and errors.
func statesList() string {
	names := make([]string, len(status.States))
	for i, s := range status.States {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// known fails naming the first tenant, region or app filter the daemon's status
// does not know, with the names it does.
func (sel unitSelection) known(st *status.Status) error {
	tenants, regions, apps := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, p := range st.Placements {
		if p.Tenant != "" {
			tenants[p.Tenant] = true
		}
		regions[p.Region] = true
		if a := unitApp(p); a != "" {
			apps[a] = true
		}
	}
	for _, r := range st.Regions {
		regions[r.Name] = true
	}
	for _, f := range []struct {
		flag  string
		names []string
		known map[string]bool
	}{{"tenant", sel.tenants, tenants}, {"region", sel.regions, regions}, {"app", sel.apps, apps}} {
		for _, n := range f.names {
			if !f.known[n] {
				return fmt.Errorf("--%s %s: the daemon knows no such %s (it knows %s)", f.flag, n, f.flag, knownList(f.known))
			}
		}
	}
	return nil
}

// knownList lists names for an error, sorted, or says there are none yet.
func knownList(names map[string]bool) string {
	if len(names) == 0 {
		return "none yet: has it finished a pass?"
	}
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	slices.Sort(list)
	if len(list) > 20 {
		return strings.Join(list[:20], ", ") + fmt.Sprintf(" and %d more", len(list)-20)
	}
	return strings.Join(list, ", ")
}

// unitKind says whether a unit is a placement, a tenant's namespace or an addon.
func unitKind(p status.Placement) string {
	switch {
	case p.Addon != "":
		return kindAddon
	case p.App == "":
		return kindNamespace
	}
	return kindPlacement
}

// unitApp is what --app matches and the APP column shows: the app, or the addon.
func unitApp(p status.Placement) string {
	if p.Addon != "" {
		return p.Addon
	}
	return p.App
}

// filter returns the units every filter selects, in the daemon's order.
func (sel unitSelection) filter(all []status.Placement) []status.Placement {
	out := []status.Placement{}
	for _, p := range all {
		if matches(sel.tenants, p.Tenant) && matches(sel.regions, p.Region) && matches(sel.apps, unitApp(p)) &&
			matches(sel.kinds, unitKind(p)) && (len(sel.states) == 0 || slices.Contains(sel.states, p.State)) {
			out = append(out, p)
		}
	}
	return out
}

// matches reports whether name is in list, or list is empty.
func matches(list []string, name string) bool {
	return len(list) == 0 || slices.Contains(list, name)
}

// allReady reports whether every unit is Ready; false for none.
func allReady(units []status.Placement) bool {
	if len(units) == 0 {
		return false
	}
	for _, p := range units {
		if p.State != status.Ready {
			return false
		}
	}
	return true
}

// writeStatusTable prints units as a table, then the refused revision if any,
// then the summary line.
func writeStatusTable(w io.Writer, st *status.Status, units []status.Placement, wide bool) error {
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	header := "TENANT\tREGION\tAPP\tSTATE\tREVISION\tREASON"
	if wide {
		header = "TENANT\tREGION\tAPP\tSTATE\tREVISION\tWAVE\tDRIFT\tDNS\tLAST SYNC\tREASON"
	}
	if len(units) > 0 {
		fmt.Fprintln(tw, header)
	}
	for _, p := range units {
		tenant, app := p.Tenant, p.App
		switch unitKind(p) {
		case kindAddon:
			tenant, app = "(addon)", p.Addon
		case kindNamespace:
			app = "(namespace)"
		}
		reason := oneLine(p.Reason)
		if !wide {
			reason = truncate(reason, reasonWidth)
		}
		rev := dash(sources.ShortRevision(p.Revision))
		if wide {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", tenant, p.Region, app, p.State, rev,
				dash(p.Wave), driftCell(p.Drift), dnsCell(p.DNS), sinceCell(st.GeneratedAt, p.LastSyncAt), reason)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", tenant, p.Region, app, p.State, rev, reason)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// A row without a reason ends in the padding of its last column.
	for line := range strings.Lines(table.String()) {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	if st.Refused != nil {
		fmt.Fprintf(w, "refused: revision %s (%s): %d error(s) in its fleet files; it keeps running %s\n",
			sources.ShortRevision(st.Refused.Commit.Revision), oneLine(st.Refused.Commit.Subject), len(st.Refused.Errors), revisionInUse(st))
	}
	_, err := fmt.Fprintln(w, summaryLine(st, units))
	return err
}

// revisionInUse is the short revision the daemon runs, or "nothing".
func revisionInUse(st *status.Status) string {
	if st.Revision == nil {
		return "nothing yet"
	}
	return sources.ShortRevision(st.Revision.Revision)
}

// summaryLine counts the units per state, in the dashboard's order, and says
// how many are placements: "29 units (14 placements): 27 Ready, 2 Failed".
func summaryLine(st *status.Status, units []status.Placement) string {
	if st.LastPass == nil && len(st.Placements) == 0 {
		return "no units yet: the daemon has not finished a pass"
	}
	if len(units) == 0 {
		return fmt.Sprintf("no unit selected (of %d)", len(st.Placements))
	}
	count := map[status.State]int{}
	placements := 0
	for _, p := range units {
		count[p.State]++
		if unitKind(p) == kindPlacement {
			placements++
		}
	}
	var parts []string
	for _, s := range st.States {
		if count[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", count[s], s))
			delete(count, s)
		}
	}
	// A state this CLI's daemon did not list (a newer daemon) is still counted.
	for _, s := range slices.Sorted(maps.Keys(count)) {
		parts = append(parts, fmt.Sprintf("%d %s", count[s], s))
	}
	return fmt.Sprintf("%d %s (%d %s): %s", len(units), plural(len(units), "unit", "units"),
		placements, plural(placements, "placement", "placements"), strings.Join(parts, ", "))
}

// oneLine keeps a reason on its row.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// truncate shortens s to at most n runes, ending in "…" when it cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// driftCell is the drifted objects and what was done about them, or "-".
func driftCell(d status.Drift) string {
	if d.Objects == 0 {
		return "-"
	}
	return fmt.Sprintf("%d %s", d.Objects, dash(d.Action))
}

// dnsCell is the unit's DNS endpoints healthy out of all, or "-" without any.
func dnsCell(eps []status.DNSEndpoint) string {
	if len(eps) == 0 {
		return "-"
	}
	healthy := 0
	for _, e := range eps {
		if e.Healthy {
			healthy++
		}
	}
	return fmt.Sprintf("%d/%d", healthy, len(eps))
}

// sinceCell is how long before the status document the unit last synced.
func sinceCell(now time.Time, at *time.Time) string {
	if at == nil {
		return "never"
	}
	d := now.Sub(*at).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}
