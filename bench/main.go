// Command bench measures Meridian against the scripted pipeline it replaces
// (sops -d, helm template or kubectl kustomize, kubectl apply --server-side per
// placement) on synthetic fleets of T tenants × R regions × A apps, in local
// regions made of real API servers (and kwok, for readiness), with the Route53
// test server. See BENCHMARKS.md for what it measures and the figures of a run.
//
//	go run ./bench -tenants 1,100 -out bench-results.json
//	go run ./bench -tenants 1 -scenarios cold,noop,incremental -peer flux
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the harness's flags.
type options struct {
	tenants     []int
	regions     int
	apps        int
	scenarios   map[string]bool
	workloads   bool
	parallelism int
	sample      int
	repeat      int
	dir         string
	out         string
	keep        bool
	kubeQPS     int
	peer        string
	// route53Scale scales Route53's documented rates of the test server and of
	// Meridian's Route53 client alike: the daemon's route53.rateScale and the dns
	// scenario's applier.
	route53Scale float64
	// goMemLimit is the daemon's GOMEMLIMIT, Go's soft memory limit; empty
	// leaves it unset.
	goMemLimit string
	// goGC is the daemon's GOGC, the collector's heap growth in percent;
	// empty leaves it unset.
	goGC string
}

// allScenarios are the scenarios -scenarios may name.
var allScenarios = []string{"render", "baseline", "cold", "noop", "incremental", "profile", "dns"}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var tenants, scenarios string
	o := &options{}
	fs.StringVar(&tenants, "tenants", "1,100", "comma-separated fleet sizes in tenants, run in order (1 × 3 × 4 = 12 placements, 100 × 3 × 4 = 1,200)")
	fs.IntVar(&o.regions, "regions", 3, "regions per tenant (each a local region)")
	fs.IntVar(&o.apps, "apps", 4, "apps per tenant (cycling Helm portal, Kustomize api, Helm worker)")
	fs.StringVar(&scenarios, "scenarios", "render,baseline,cold,noop,incremental", "which scenarios to run, of "+strings.Join(allScenarios, ",")+" (profile: one cold pass in process under pprof, into the working directory; dns: the Route53 applier in process, first and no-op pass)")
	fs.BoolVar(&o.workloads, "workloads", true, "run kube-controller-manager, kube-scheduler and kwok in each region and measure readiness; false: API servers only")
	fs.IntVar(&o.parallelism, "parallel", 4, "placements the scripted baseline runs at once (xargs -P)")
	fs.IntVar(&o.sample, "baseline-sample", 0, "run the baseline on every Nth placement only and extrapolate (0: every placement)")
	fs.IntVar(&o.repeat, "repeat", 3, "incremental changes to measure per size")
	fs.StringVar(&o.dir, "dir", "", "working directory (default: a new temporary directory)")
	fs.StringVar(&o.out, "out", "", "write the results as JSON to this file")
	fs.IntVar(&o.kubeQPS, "kube-qps", 0, "the daemon's kubeAPI.qps per region, burst twice that (0: the daemon's default)")
	fs.StringVar(&o.peer, "peer", "", "also run this GitOps peer on the same fleet, in fresh regions, after Meridian: flux (source-, kustomize- and helm-controller; needs cold)")
	fs.Float64Var(&o.route53Scale, "route53-rate-scale", 1, "multiply every Route53 rate and burst of the test server and of Meridian (the daemon's route53.rateScale, the dns scenario's applier) alike (1: Route53's documented rates)")
	fs.StringVar(&o.goGC, "daemon-gogc", "", "GOGC of the daemon only (e.g. 50): how peak RSS and CPU move with the collector's heap growth; empty leaves it unset")
	fs.StringVar(&o.goMemLimit, "daemon-gomemlimit", "", "GOMEMLIMIT of the daemon only, Go's soft memory limit (e.g. 300MiB): how peak RSS and CPU move under it; empty leaves it unset")
	fs.BoolVar(&o.keep, "keep", false, "keep the working directory (logs, fleets, scripts)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	for _, t := range strings.Split(tenants, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(t))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-tenants: %q is not a positive number", t)
		}
		o.tenants = append(o.tenants, n)
	}
	o.scenarios = map[string]bool{}
	for _, s := range strings.Split(scenarios, ",") {
		s = strings.TrimSpace(s)
		known := false
		for _, a := range allScenarios {
			known = known || a == s
		}
		if !known {
			return nil, fmt.Errorf("-scenarios: unknown scenario %q; choose from %s", s, strings.Join(allScenarios, ","))
		}
		o.scenarios[s] = true
	}
	if (o.scenarios["noop"] || o.scenarios["incremental"]) && !o.scenarios["cold"] {
		return nil, errors.New("-scenarios: noop and incremental run on the daemon the cold scenario starts; add cold")
	}
	if o.peer != "" && o.peer != "flux" {
		return nil, fmt.Errorf("-peer: unknown peer %q; the one there is is flux", o.peer)
	}
	if o.peer != "" && !o.scenarios["cold"] {
		return nil, errors.New("-peer: the peer is compared with Meridian's cold run; add cold")
	}
	if !(o.route53Scale > 0) {
		return nil, fmt.Errorf("-route53-rate-scale: %g is not above 0; 1 runs Route53's documented rates", o.route53Scale)
	}
	if o.regions < 1 || o.apps < 1 || o.parallelism < 1 || o.sample < 0 || o.repeat < 0 {
		return nil, errors.New("-regions, -apps and -parallel must be positive; -baseline-sample and -repeat not negative")
	}
	return o, nil
}

func run(ctx context.Context, o *options, stdout, progress io.Writer) error {
	repo, err := findRepo()
	if err != nil {
		return err
	}
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "meridian-bench-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(dir)
		}
	}
	tools, err := buildTools(ctx, repo, dir, o.scenarios["baseline"], progress)
	if err != nil {
		return err
	}
	res := &Results{Machine: machine(), Workloads: o.workloads, BaselineParallelism: o.parallelism, Route53RateScale: o.route53Scale, DaemonGoMemLimit: o.goMemLimit, DaemonGoGC: o.goGC}
	env := &env{o: o, repo: repo, dir: dir, tools: tools, progress: progress}
	if err := env.start(ctx); err != nil {
		return err
	}
	defer env.close()
	for _, t := range o.tenants {
		size, err := env.size(ctx, t)
		if size != nil {
			res.Sizes = append(res.Sizes, size)
			res.Scale = ScaleOf(res.Sizes)
		}
		// What was measured is kept even when a later step fails.
		if o.out != "" {
			if werr := res.WriteJSON(o.out); werr != nil {
				return errors.Join(err, werr)
			}
		}
		if err != nil {
			res.WriteTable(stdout)
			return err
		}
	}
	res.WriteTable(stdout)
	return nil
}

// findRepo finds the Meridian checkout: the working directory or one above it.
func findRepo() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module meridian.dev/meridian\n") {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", errors.New("run the harness inside a Meridian checkout")
		}
	}
}

// machine describes this machine.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
				m.MemoryGB = int((float64(kb) / (1 << 20)) + 0.5)
			}
		}
	}
	return m
}

// since is the seconds from start to t.
func since(start, t time.Time) float64 { return t.Sub(start).Seconds() }
