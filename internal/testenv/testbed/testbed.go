package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// DefaultRegionNames name the first regions when Options.Names does not; the
// regions after them are region-4, region-5 and so on.
var DefaultRegionNames = []string{"us-east-1", "eu-west-2", "ap-northeast-2"}

// StateFile is the file in the testbed's directory that records what runs
// (pids, ports, kubeconfigs), so Down can stop a detached testbed later.
const StateFile = "testbed.json"

// Options says what Start runs.
type Options struct {
	// Regions is how many regions to start; zero means len(Names), or one.
	Regions int
	// Names names the regions in order; missing names come from
	// DefaultRegionNames and then region-N. A name is a DNS label: it is the
	// kubeconfig context, the directory and part of the fake Nodes' names.
	Names []string
	// Workloads adds kube-controller-manager, kube-scheduler, kwok and fake
	// Nodes to each region, so Pods are scheduled and Deployments become
	// Available through the real controllers. Without it a region is etcd and
	// kube-apiserver only: objects are stored and validated, nothing runs.
	Workloads bool
	// Nodes is the number of fake Nodes per region with Workloads; zero means 3.
	Nodes int
	// Dir is the state directory (logs, etcd data, kubeconfigs, StateFile).
	// Empty means a new temporary directory that Stop removes; a given one is
	// kept after Stop, for its logs, and must not hold a running testbed.
	Dir string
	// APIServerFlags are added to every region's kube-apiserver command line,
	// after the testbed's own flags, e.g. to configure an authenticator
	// ("--authentication-token-webhook-config-file=..."). The static admin
	// token and RBAC stay on, so Region.Config keeps working.
	APIServerFlags []string
	// Progress receives one line per step that takes time (builds, regions
	// becoming ready); nil discards them.
	Progress io.Writer
	// Detached lets the components outlive this process, for
	// `meridian-dev up`: they start in their own sessions without a
	// parent-death signal, and Down stops them. Tests leave it false, so the
	// components die with the test process however it ends.
	Detached bool
}

// Testbed is a set of running regions. Stop it when done.
type Testbed struct {
	// Regions are the running regions in the order of their names.
	Regions []*Region
	// Dir is the state directory.
	Dir string
	// Kubeconfig is a kubeconfig file with one context per region.
	Kubeconfig string

	opts     Options
	bins     *Binaries
	ownDir   bool
	spawner  *spawner
	mu       sync.Mutex
	procs    []*process
	stopOnce sync.Once
	stopErr  error
}

// Region is one running region: one cluster's worth of components.
type Region struct {
	// Name is the region's name and its kubeconfig context.
	Name string
	// Server is the kube-apiserver URL, https://127.0.0.1:PORT.
	Server string
	// Kubeconfig is a kubeconfig file for this region alone, whose context
	// is named after it and whose user is a cluster admin (system:masters).
	Kubeconfig string
	// Config is the same access as a client-go config, with the apiserver's
	// self-signed serving certificate as the trusted CA.
	Config *rest.Config
	// Dir is the region's state directory: one <component>.log per
	// component, etcd data, certificates and keys.
	Dir string

	ports regionPorts
	procs []*process
}

// regionPorts are the loopback ports a region listens on.
type regionPorts struct {
	EtcdClient int `json:"etcdClient"`
	EtcdPeer   int `json:"etcdPeer"`
	APIServer  int `json:"apiServer"`
}

// LogFile is the path of component c's log in the region's directory.
func (r *Region) LogFile(c Component) string { return filepath.Join(r.Dir, string(c)+".log") }

// Region returns the region with the given name, or nil.
func (tb *Testbed) Region(name string) *Region {
	for _, r := range tb.Regions {
		if r.Name == name {
			return r
		}
	}
	return nil
}

var labelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// RegionNames are the names Start gives the regions of opts.
func RegionNames(opts Options) ([]string, error) {
	n := opts.Regions
	if n == 0 {
		n = max(len(opts.Names), 1)
	}
	if n < 0 || n < len(opts.Names) {
		return nil, fmt.Errorf("testbed: %d regions but %d names", n, len(opts.Names))
	}
	names := make([]string, 0, n)
	seen := map[string]bool{}
	for i := range n {
		var name string
		switch {
		case i < len(opts.Names):
			name = opts.Names[i]
		case i < len(DefaultRegionNames):
			name = DefaultRegionNames[i]
		default:
			name = fmt.Sprintf("region-%d", i+1)
		}
		if len(name) > 50 || !labelRE.MatchString(name) {
			return nil, fmt.Errorf("testbed: region name %q: want a DNS label of at most 50 characters", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("testbed: region name %q given twice", name)
		}
		seen[name] = true
		names = append(names, name)
	}
	return names, nil
}

// Start builds what is missing (see Build), then starts the regions in
// parallel and returns when every one is ready: its apiserver answers
// /readyz and, with Workloads, its fake Nodes are Ready and schedulable.
// ctx bounds the start only; the regions run until Stop (or Down). On error
// everything started so far is stopped again.
func Start(ctx context.Context, opts Options) (*Testbed, error) {
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	names, err := RegionNames(opts)
	if err != nil {
		return nil, err
	}
	comps := []Component{Etcd, KubeAPIServer}
	if opts.Workloads {
		comps = AllComponents
	}
	bins, err := Build(ctx, opts.Progress, comps...)
	if err != nil {
		return nil, err
	}

	tb := &Testbed{opts: opts, bins: bins}
	if err := tb.prepareDir(names); err != nil {
		return nil, err
	}
	ports, err := freePorts(3 * len(names))
	if err != nil {
		tb.Stop()
		return nil, err
	}
	if !opts.Detached {
		tb.spawner = newSpawner()
	}
	what := "apiserver only"
	if opts.Workloads {
		what = fmt.Sprintf("with workloads, %d nodes each", opts.Nodes)
	}
	fmt.Fprintf(opts.Progress, "testbed: starting %d region(s) %s (%s) in %s\n", len(names), strings.Join(names, ", "), what, tb.Dir)

	for i, name := range names {
		tb.Regions = append(tb.Regions, &Region{
			Name:  name,
			Dir:   filepath.Join(tb.Dir, name),
			ports: regionPorts{EtcdClient: ports[3*i], EtcdPeer: ports[3*i+1], APIServer: ports[3*i+2]},
		})
	}
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, r := range tb.Regions {
		wg.Go(func() {
			begin := time.Now()
			if errs[i] = tb.startRegion(ctx, r); errs[i] == nil {
				fmt.Fprintf(opts.Progress, "testbed: region %s ready at %s in %s\n", r.Name, r.Server, time.Since(begin).Round(100*time.Millisecond))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		tb.Stop()
		return nil, fmt.Errorf("testbed: %w", err)
	}
	if err := tb.writeKubeconfig(); err != nil {
		tb.Stop()
		return nil, err
	}
	if err := tb.writeState(); err != nil {
		tb.Stop()
		return nil, err
	}
	return tb, nil
}

// prepareDir creates the state directory, refusing one that holds a testbed
// that still runs and clearing what a stopped one left for these regions.
func (tb *Testbed) prepareDir(names []string) error {
	if tb.opts.Dir == "" {
		dir, err := os.MkdirTemp("", "meridian-testbed-")
		if err != nil {
			return fmt.Errorf("testbed: state dir: %w", err)
		}
		tb.Dir, tb.ownDir = dir, true
		return nil
	}
	dir, err := filepath.Abs(tb.opts.Dir)
	if err != nil {
		return fmt.Errorf("testbed: state dir: %w", err)
	}
	tb.Dir = dir
	if st, err := ReadState(dir); err == nil {
		for _, r := range st.Regions {
			for _, p := range r.Processes {
				if p.running() {
					return fmt.Errorf("testbed: %s: a testbed is already running there (region %s, %s pid %d); stop it first (go run ./cmd/meridian-dev down --dir %s)", dir, r.Name, p.Component, p.PID, dir)
				}
			}
		}
		if err := st.remove(); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("testbed: state dir: %w", err)
	}
	for _, name := range names {
		rdir := filepath.Join(dir, name)
		entries, err := os.ReadDir(rdir)
		if err == nil && len(entries) > 0 {
			return fmt.Errorf("testbed: %s is not empty and no testbed state names it; remove it or choose another dir", rdir)
		}
	}
	return nil
}

// freePorts returns n distinct loopback ports that were free a moment ago.
// All listeners are held until the last one is open, so the ports differ.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("testbed: free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// writeKubeconfig writes Dir/kubeconfig with one context per region, the
// first region's context current.
func (tb *Testbed) writeKubeconfig() error {
	cfg := clientcmdapi.NewConfig()
	for _, r := range tb.Regions {
		one, err := clientcmd.LoadFromFile(r.Kubeconfig)
		if err != nil {
			return fmt.Errorf("testbed: region %s: kubeconfig: %w", r.Name, err)
		}
		cfg.Clusters[r.Name] = one.Clusters[r.Name]
		cfg.AuthInfos[r.Name] = one.AuthInfos[r.Name]
		cfg.Contexts[r.Name] = one.Contexts[r.Name]
	}
	cfg.CurrentContext = tb.Regions[0].Name
	tb.Kubeconfig = filepath.Join(tb.Dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, tb.Kubeconfig); err != nil {
		return fmt.Errorf("testbed: kubeconfig: %w", err)
	}
	return nil
}

// exitWait bounds how long Stop and Down wait for the killed components to
// exit. A process killed with SIGKILL exits as soon as the kernel has torn it
// down, which for an apiserver or etcd with a large heap can take seconds on a
// loaded machine; only a process stuck in the kernel takes minutes.
const exitWait = 2 * time.Minute

// Stop kills every component (each with its process group), waits for them
// to exit and removes the state directory if Start created it. It reports
// components that had exited on their own before Stop, with their log tails,
// since a test that saw such a crash should not pass quietly. Calling it again
// returns the first result.
func (tb *Testbed) Stop() error {
	tb.stopOnce.Do(func() { tb.stopErr = tb.stop() })
	return tb.stopErr
}

func (tb *Testbed) stop() error {
	tb.mu.Lock()
	procs := tb.procs
	tb.mu.Unlock()
	var errs []error
	for _, p := range procs {
		if p.exited() && !p.killed.Load() {
			errs = append(errs, p.exitError())
			continue
		}
		p.killed.Store(true)
		if err := killGroup(p.pid()); err != nil {
			errs = append(errs, fmt.Errorf("region %s: %s: kill: %w", p.region, p.comp, err))
		}
	}
	deadline := time.Now().Add(exitWait)
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(time.Until(deadline)):
			errs = append(errs, fmt.Errorf("region %s: %s (pid %d) still running %s after SIGKILL; left as it is", p.region, p.comp, p.pid(), exitWait))
		}
	}
	if tb.spawner != nil {
		tb.spawner.close()
	}
	if tb.Dir != "" {
		if tb.ownDir {
			if err := os.RemoveAll(tb.Dir); err != nil {
				errs = append(errs, err)
			}
		} else if err := os.Remove(filepath.Join(tb.Dir, StateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	return nil
}

// State describes a running testbed; Start writes it to Dir/StateFile.
type State struct {
	// Dir is the state directory.
	Dir string `json:"dir"`
	// Kubeconfig is the file with one context per region.
	Kubeconfig string `json:"kubeconfig"`
	// Regions are the regions in order.
	Regions []RegionState `json:"regions"`
}

// RegionState describes one running region.
type RegionState struct {
	// Name is the region's name and kubeconfig context.
	Name string `json:"name"`
	// Server is the kube-apiserver URL.
	Server string `json:"server"`
	// Kubeconfig is the region's own kubeconfig file.
	Kubeconfig string `json:"kubeconfig"`
	// Dir is the region's state directory.
	Dir string `json:"dir"`
	// Ports are the loopback ports the region listens on.
	Ports map[string]int `json:"ports"`
	// Processes are the region's components.
	Processes []ProcessState `json:"processes"`
}

// ProcessState describes one component process. Its pid is also its process
// group id.
type ProcessState struct {
	// Component is what runs.
	Component Component `json:"component"`
	// PID is the process id.
	PID int `json:"pid"`
	// Binary is the executable, used to make sure a pid still belongs to the
	// component before it is killed.
	Binary string `json:"binary"`
	// Log is the component's log file.
	Log string `json:"log"`
}

// State describes the running testbed.
func (tb *Testbed) State() State {
	st := State{Dir: tb.Dir, Kubeconfig: tb.Kubeconfig}
	for _, r := range tb.Regions {
		rs := RegionState{
			Name: r.Name, Server: r.Server, Kubeconfig: r.Kubeconfig, Dir: r.Dir,
			Ports: map[string]int{"etcd-client": r.ports.EtcdClient, "etcd-peer": r.ports.EtcdPeer, "kube-apiserver": r.ports.APIServer},
		}
		for _, p := range r.procs {
			rs.Processes = append(rs.Processes, ProcessState{Component: p.comp, PID: p.pid(), Binary: p.cmd.Path, Log: p.log})
		}
		st.Regions = append(st.Regions, rs)
	}
	return st
}

func (tb *Testbed) writeState() error {
	data, err := json.MarshalIndent(tb.State(), "", "  ")
	if err != nil {
		return fmt.Errorf("testbed: state: %w", err)
	}
	tmp := filepath.Join(tb.Dir, StateFile+".tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("testbed: state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(tb.Dir, StateFile)); err != nil {
		return fmt.Errorf("testbed: state: %w", err)
	}
	return nil
}

// ErrNotRunning is returned by ReadState and Down for a directory without a
// testbed state file.
var ErrNotRunning = errors.New("no testbed state")

// ReadState reads the state file of the testbed in dir.
func ReadState(dir string) (*State, error) {
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("testbed: %s: %w", dir, ErrNotRunning)
	}
	if err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("testbed: %s: %w", filepath.Join(dir, StateFile), err)
	}
	st.Dir = dir
	return &st, nil
}

// Down stops the testbed whose state is in dir, as `meridian-dev down` does:
// it kills each component's process group (after checking that the pid still
// runs that component's binary), waits for them to go, and removes what the
// testbed wrote, then dir itself if nothing else is left in it.
func Down(dir string) error {
	st, err := ReadState(dir)
	if err != nil {
		return err
	}
	var errs []error
	var killed []ProcessState
	for _, r := range st.Regions {
		for _, p := range r.Processes {
			if !p.running() {
				continue
			}
			if err := killGroup(p.PID); err != nil {
				errs = append(errs, fmt.Errorf("region %s: %s (pid %d): kill: %w", r.Name, p.Component, p.PID, err))
				continue
			}
			killed = append(killed, p)
		}
	}
	deadline := time.Now().Add(exitWait)
	for _, p := range killed {
		for alive(p.PID) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(p.PID) {
			errs = append(errs, fmt.Errorf("%s (pid %d) still running %s after SIGKILL; left as it is", p.Component, p.PID, exitWait))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("testbed: %s: %w", dir, err)
	}
	return st.remove()
}

// remove deletes what the testbed wrote in its directory, then the directory
// if it is empty.
func (st *State) remove() error {
	var errs []error
	for _, r := range st.Regions {
		if r.Dir != "" && filepath.Dir(r.Dir) == filepath.Clean(st.Dir) {
			errs = append(errs, os.RemoveAll(r.Dir))
		}
	}
	for _, f := range []string{"kubeconfig", StateFile} {
		if err := os.Remove(filepath.Join(st.Dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if entries, err := os.ReadDir(st.Dir); err == nil && len(entries) == 0 {
		errs = append(errs, os.Remove(st.Dir))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("testbed: %s: %w", st.Dir, err)
	}
	return nil
}

// running reports whether the process still runs this component's binary.
func (p ProcessState) running() bool {
	if !alive(p.PID) {
		return false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.PID))
	if err != nil {
		return true // no procfs (or not ours to read): trust the pid
	}
	return strings.TrimSuffix(exe, " (deleted)") == p.Binary
}

// DefaultDevDir is where `meridian-dev up` keeps its state unless told
// otherwise: meridian/dev in the user's cache directory.
func DefaultDevDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("testbed: no cache directory (pass --dir): %w", err)
	}
	return filepath.Join(dir, "meridian", "dev"), nil
}
