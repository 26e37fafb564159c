// Package demo runs Meridian end to end on one machine, for people trying it:
// three local regions with workloads (internal/testenv/testbed), a git server holding a
// copy of fleet-example (internal/testenv/gitserver), the Route53 test server with its DNS
// (internal/testenv/route53test), a stand-in load balancer per region that answers health
// checks from the region's Deployments, and the daemon itself. Everything it
// starts stops when its context is done.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"meridian.dev/meridian/internal/testenv/gitserver"
	"meridian.dev/meridian/internal/testenv/route53test"
	"meridian.dev/meridian/internal/testenv/testbed"
)

// Zone is the demo's DNS zone, fleet-example's.
const Zone = "fleet.example.com"

// Options configure a demo.
type Options struct {
	// FleetDir is the fleet to serve: fleet-example.
	FleetDir string
	// Dir holds the demo's state: the regions, the fleet clone people edit, the
	// daemon's configuration, cache and log. It is emptied first.
	Dir string
	// Listen is the daemon's HTTP address (dashboard, metrics, API).
	Listen string
	// Progress receives what the demo is doing.
	Progress io.Writer
	// Out receives the banner: where things are and what to try.
	Out io.Writer
	// Self is how the banner tells people to run meridian-dev, for its scale and
	// resolve commands: e.g. bin/meridian-dev or go run ./cmd/meridian-dev.
	Self string
	// Daemon runs `meridian run --config configFile` until ctx is done, logging to
	// log.
	Daemon func(ctx context.Context, configFile string, log io.Writer) error
}

// Run starts the demo and blocks until ctx is done (Ctrl-C), then stops
// everything it started.
func Run(ctx context.Context, opts Options) error {
	fleetDir, err := filepath.Abs(opts.FleetDir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(fleetDir, "fleet.yaml")); err != nil {
		return fmt.Errorf("%s has no fleet.yaml; run the demo from a Meridian checkout or pass --fleet", fleetDir)
	}
	// Before minutes of starting regions: the daemon's address must be free.
	l, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("the daemon's address %s is taken (another demo, or a daemon, running?): %w; stop it, or pass --listen 127.0.0.1:PORT", opts.Listen, err)
	}
	l.Close()
	if err := prepareDir(opts.Dir); err != nil {
		return err
	}
	progress := func(format string, args ...any) { fmt.Fprintf(opts.Progress, "demo: "+format+"\n", args...) }

	progress("starting three local regions with workloads (the first run builds Kubernetes from source: about 12 minutes on two cores)")
	tb, err := testbed.Start(ctx, testbed.Options{Regions: 3, Workloads: true, Dir: filepath.Join(opts.Dir, "regions"), Progress: opts.Progress})
	if err != nil {
		return err
	}
	defer func() {
		progress("stopping the regions")
		_ = tb.Stop()
	}()

	// Route53: health checks probed ten times faster than AWS, clients in us-east-1.
	r53 := route53test.NewServer(route53test.Options{ProbeScale: 0.1, ClientRegion: "us-east-1", SyncDelay: time.Second})
	defer r53.Close()
	zoneID := r53.CreateZone(Zone)
	progress("Route53 test server at %s, its DNS at %s", r53.URL, r53.DNSAddr)

	lbs, ips, ports, err := startLoadBalancers(tb)
	defer func() {
		for _, in := range lbs {
			in.Close()
		}
	}()
	if err != nil {
		return err
	}

	git, err := gitserver.Start(ctx, gitserver.Options{})
	if err != nil {
		return err
	}
	defer git.Close()
	if _, err := git.CreateRepo("fleet.git"); err != nil {
		return err
	}
	clone := filepath.Join(opts.Dir, "fleet")
	if err := publishFleet(ctx, fleetDir, clone, git.URL("fleet.git"), zoneID, ips, ports); err != nil {
		return err
	}
	progress("git server at %s holding fleet-example; your clone is %s", git.URL("fleet.git"), clone)

	configFile := filepath.Join(opts.Dir, "meridian.yaml")
	if err := writeConfig(configFile, opts, git.URL("fleet.git"), tb.Kubeconfig, filepath.Join(fleetDir, "demo-age-key.txt"), r53.URL); err != nil {
		return err
	}
	// The Route53 test server accepts any credentials; the SDK wants some.
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "DEMO", "AWS_SECRET_ACCESS_KEY": "demo-only-not-a-secret"} {
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	logFile := filepath.Join(opts.Dir, "meridian.log")
	log, err := os.Create(logFile)
	if err != nil {
		return err
	}
	defer log.Close()

	progress("starting the daemon (log: %s)", logFile)
	daemonCtx, stopDaemon := context.WithCancel(ctx)
	defer stopDaemon()
	done := make(chan error, 1)
	go func() { done <- opts.Daemon(daemonCtx, configFile, log) }()
	if err := waitReady(ctx, "http://"+dialable(opts.Listen)+"/readyz", done); err != nil {
		return fmt.Errorf("%w (see %s)", err, logFile)
	}

	data := banner{
		Dashboard:  "http://" + dialable(opts.Listen) + "/",
		Clone:      clone,
		DNSHost:    strings.Split(r53.DNSAddr, ":")[0],
		DNSPort:    strings.Split(r53.DNSAddr, ":")[1],
		Kubeconfig: tb.Kubeconfig,
		IPs:        ips,
		Log:        logFile,
		Self:       opts.Self,
	}
	if err := bannerTemplate.Execute(opts.Out, data); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		progress("stopping")
		stopDaemon()
		return <-done
	case err := <-done:
		return fmt.Errorf("the daemon stopped: %v (see %s)", err, logFile)
	}
}

// marker names a directory the demo made, which it may empty.
const marker = ".meridian-demo"

// prepareDir empties a directory an earlier demo left, and refuses any other
// directory that is not empty: the demo deletes nothing it did not create.
func prepareDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case len(entries) == 0:
	default:
		if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
			return fmt.Errorf("%s is not empty and not a demo directory; choose another with --dir", dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, marker), nil, 0o644)
}

// startLoadBalancers starts, for each region, an Ingress on its own loopback
// address for portal (HTTPS) and api (HTTP), on ports shared by all regions as
// one load balancer name per region would be. Hostnames route by their labels:
// <app>.<tenant>.<region>.<zone> is the Deployment <app> in namespace <tenant>.
func startLoadBalancers(tb *testbed.Testbed) (lbs []*testbed.Ingress, ips map[string]string, ports map[string]int, err error) {
	ips = map[string]string{}
	ports = map[string]int{"portal": 0, "api": 0}
	for i, r := range tb.Regions {
		ip, err := testbed.LoopbackAddr(i)
		if err != nil {
			return lbs, nil, nil, err
		}
		ips[r.Name] = ip
		route := func(host string) (testbed.Backend, bool) {
			labels := strings.Split(strings.TrimSuffix(host, "."+Zone), ".")
			if len(labels) != 3 || labels[2] != r.Name {
				return testbed.Backend{}, false
			}
			return testbed.Backend{Namespace: labels[1], Deployment: labels[0]}, true
		}
		for _, app := range []string{"portal", "api"} {
			in, err := r.ServeIngress(net.JoinHostPort(ip, strconv.Itoa(ports[app])), app == "portal", route)
			if err != nil {
				return lbs, nil, nil, err
			}
			lbs = append(lbs, in)
			_, port, _ := net.SplitHostPort(in.Addr)
			ports[app], _ = strconv.Atoi(port)
		}
	}
	return lbs, ips, ports, nil
}

// publishFleet clones the empty repository to clone, copies the fleet in with its
// zone and endpoints made local, and pushes it.
func publishFleet(ctx context.Context, fleetDir, clone, url, zoneID string, ips map[string]string, ports map[string]int) error {
	git := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = clone
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := os.MkdirAll(clone, 0o755); err != nil {
		return err
	}
	if err := git("clone", "--quiet", url, "."); err != nil {
		return err
	}
	for _, kv := range [][2]string{{"user.name", "Demo User"}, {"user.email", "demo@example.com"}} {
		if err := git("config", kv[0], kv[1]); err != nil {
			return err
		}
	}
	if err := os.CopyFS(clone, os.DirFS(fleetDir)); err != nil {
		return err
	}
	edits := map[string][][2]string{
		"fleet.yaml":           {{"Z0EXAMPLE0000000", zoneID}},
		"apps/portal/app.yaml": {{"port: 443", "port: " + strconv.Itoa(ports["portal"])}, {"intervalSeconds: 30", "intervalSeconds: 10"}},
		"apps/api/app.yaml":    {{"port: 80", "port: " + strconv.Itoa(ports["api"])}, {"intervalSeconds: 30", "intervalSeconds: 10"}},
	}
	for name, list := range edits {
		p := filepath.Join(clone, name)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := string(b)
		for _, e := range list {
			if !strings.Contains(s, e[0]) {
				return fmt.Errorf("%s: %q not found; is %s fleet-example?", name, e[0], fleetDir)
			}
			s = strings.Replace(s, e[0], e[1], 1)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			return err
		}
	}
	for region, ip := range ips {
		if err := localEndpoint(filepath.Join(clone, "regions", region+".yaml"), ip); err != nil {
			return err
		}
	}
	if err := git("add", "--all"); err != nil {
		return err
	}
	if err := git("commit", "--quiet", "-m", "fleet-example, with local load balancers and DNS zone"); err != nil {
		return err
	}
	return git("push", "--quiet", "origin", "HEAD:main")
}

// localEndpoint points a Region file's spec.endpoint at a load balancer address.
func localEndpoint(path, ip string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	start, end := strings.Index(s, "\n  endpoint:"), strings.Index(s, "\n  values:")
	if start < 0 || end < start {
		return fmt.Errorf("%s: no spec.endpoint followed by spec.values; is this fleet-example?", path)
	}
	s = s[:start] + "\n  endpoint:\n    type: A\n    target: " + ip + s[end:]
	return os.WriteFile(path, []byte(s), 0o644)
}

func writeConfig(path string, opts Options, url, kubeconfig, key, route53URL string) error {
	cfg := fmt.Sprintf(`apiVersion: meridian.dev/v1alpha1
kind: Config
repository:
  url: %s
  branch: main
  interval: 5s
kubeconfig: %s
decryption:
  keyFiles: [%s]
cacheDir: %s
listen: %s
healthTimeout: 2m
driftInterval: 10m
route53:
  endpoint: %s
`, url, kubeconfig, key, filepath.Join(opts.Dir, "cache"), opts.Listen, route53URL)
	return os.WriteFile(path, []byte(cfg), 0o600)
}

// waitReady polls url until it answers 200, the daemon stops or ctx is done.
func waitReady(ctx context.Context, url string, done <-chan error) error {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-done:
			return errors.Join(errors.New("the daemon stopped before its first pass"), err)
		case <-t.C:
		}
	}
}

// dialable turns a listen address such as :8080 into one to connect to.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || host == "0.0.0.0" || host == "::" {
		return "127.0.0.1:" + port
	}
	return addr
}

type banner struct {
	Dashboard, Clone, DNSHost, DNSPort, Kubeconfig, Log, Self string
	IPs                                                       map[string]string
}

var bannerTemplate = template.Must(template.New("banner").Parse(`
Meridian is running: every unit of fleet-example (its placements, its tenants' namespaces,
its addon) is applied in three regions.

  dashboard   {{.Dashboard}}
  status      go run ./cmd/meridian status --server {{.Dashboard}}   (the same in a terminal)
  fleet repo  {{.Clone}}   (a clone; commit and push there)
  DNS         {{.DNSHost}} port {{.DNSPort}}   (Route53 test server; clients are in us-east-1)
  kubeconfig  {{.Kubeconfig}}   (contexts us-east-1, eu-west-2, ap-northeast-2)
  daemon log  {{.Log}}

Load balancers: us-east-1 {{index .IPs "us-east-1"}}, eu-west-2 {{index .IPs "eu-west-2"}}, ap-northeast-2 {{index .IPs "ap-northeast-2"}}

1. Commit a new tenant and watch it appear in every region:

     cd {{.Clone}}
     sed -e 's/charging-stations-ca/freight/' -e 's/regions: \[us-east-1\]/regions: [us-east-1, eu-west-2, ap-northeast-2]/' \
       tenants/charging-stations-ca.yaml > tenants/freight.yaml
     git add tenants/freight.yaml && git commit -m "freight: a new tenant" && git push

2. Break an app in one region and watch DNS fail over:

     dig +short @{{.DNSHost}} -p {{.DNSPort}} portal.trucking.fleet.example.com     # {{index .IPs "us-east-1"}}, us-east-1
     {{.Self}} scale --kubeconfig {{.Kubeconfig}} --context us-east-1 --namespace trucking portal --replicas 0
     dig +short @{{.DNSHost}} -p {{.DNSPort}} portal.trucking.fleet.example.com     # {{index .IPs "eu-west-2"}}, eu-west-2, within seconds

   (without dig: {{.Self}} resolve --server {{.DNSHost}}:{{.DNSPort}} portal.trucking.fleet.example.com)

3. Revert:

     {{.Self}} scale --kubeconfig {{.Kubeconfig}} --context us-east-1 --namespace trucking portal --replicas 3

   (or wait: the drift check puts it back within 10 minutes.)

Ctrl-C stops everything the demo started.
`))
