package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"meridian.dev/meridian/internal/testenv/sopstest"
	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/render"
)

var (
	crdResource       = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	gitRepositories   = schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"}
	kustomizationsRes = schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}
	helmReleasesRes   = schema.GroupVersionResource{Group: "helm.toolkit.fluxcd.io", Version: "v2", Resource: "helmreleases"}
)

// fluxTuning are the controllers' flags for this two-core machine, besides the
// addresses and paths each needs (BENCHMARKS.md, "Flux"). Every controller
// gets the request budget Meridian has per region (kubeAPI 200/s, burst 400);
// kustomize-controller and helm-controller more workers than their default 4,
// because a worker waits out a health check (Kustomization wait, Helm's wait)
// without using a CPU; dependencies are retried every 5 s instead of 30 s.
var fluxTuning = map[string][]string{
	"source-controller":    {"--concurrent=2"},
	"kustomize-controller": {"--concurrent=8", "--requeue-dependency=5s", "--no-remote-bases=true"},
	"helm-controller":      {"--concurrent=16", "--requeue-dependency=5s"},
}

// fluxCommon are the flags every controller gets.
var fluxCommon = []string{
	"--enable-leader-election=false", "--watch-all-namespaces=true", "--log-encoding=json",
	"--metrics-addr=0", "--events-addr=", "--kube-api-qps=200", "--kube-api-burst=400",
}

// fluxPeer is Flux's three controllers running as processes against a
// management API server of the testbed, reaching the regions of a cluster
// through kubeconfig Secrets.
type fluxPeer struct {
	mgmt  *testbed.Testbed
	proxy *Proxy // the controllers' way to the management API server, counted
	dyn   dynamic.Interface
	kube  kubernetes.Interface
	procs []*fluxProc
}

type fluxProc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func (p *fluxProc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v; log %s:\n%s", p.name, p.cmd.ProcessState, p.log, tail(readFile(p.log), 2000))
	default:
		return nil
	}
}

func readFile(name string) string {
	data, _ := os.ReadFile(name)
	return string(data)
}

// startFlux starts the management API server, installs Flux's CRDs and the
// Secrets (age key, one kubeconfig per region, through the region's counting
// proxy) and starts the controllers.
func (e *env) startFlux(ctx context.Context, bins *FluxBinaries, c *cluster, dir, keyFile string) (_ *fluxPeer, err error) {
	tb, err := testbed.Start(ctx, testbed.Options{Names: []string{"management"}, Dir: filepath.Join(dir, "management"), Progress: e.progress})
	if err != nil {
		return nil, err
	}
	p := &fluxPeer{mgmt: tb}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	m := tb.Regions[0]
	if p.proxy, err = StartProxy(m.Config); err != nil {
		return nil, err
	}
	if p.dyn, err = dynamic.NewForConfig(m.Config); err != nil {
		return nil, err
	}
	if p.kube, err = kubernetes.NewForConfig(m.Config); err != nil {
		return nil, err
	}
	for _, file := range bins.CRDs {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var crd unstructured.Unstructured
		if err := yaml.Unmarshal(data, &crd.Object); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if _, err := p.dyn.Resource(crdResource).Create(ctx, &crd, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	}
	for _, gvr := range []schema.GroupVersionResource{gitRepositories, kustomizationsRes, helmReleasesRes} {
		if err := poll(ctx, time.Minute, func() (bool, error) {
			_, err := p.dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
			return err == nil, nil
		}); err != nil {
			return nil, fmt.Errorf("flux: %s not served: %w", gvr.Resource, err)
		}
	}
	if _, err := p.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fluxNamespace}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	secretsToCreate := map[string]map[string][]byte{fluxAgeSecret: {"identity.agekey": key}}
	for _, r := range c.regions {
		kc, err := regionKubeconfig(r)
		if err != nil {
			return nil, err
		}
		secretsToCreate[fluxKubeconfigSecret(r.Name)] = map[string][]byte{fluxKubeconfig: kc}
	}
	for name, data := range secretsToCreate {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: fluxNamespace}, Data: data}
		if _, err := p.kube.CoreV1().Secrets(fluxNamespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
	}

	kubeconfig := filepath.Join(dir, "management-kubeconfig")
	if err := writeProxyKubeconfig(kubeconfig, []*benchRegion{{Name: m.Name, Config: m.Config, Proxy: p.proxy}}); err != nil {
		return nil, err
	}
	storage, err := freeAddr()
	if err != nil {
		return nil, err
	}
	for _, ctl := range fluxControllers {
		health, err := freeAddr()
		if err != nil {
			return nil, err
		}
		args := append(append([]string{"--health-addr=" + health}, fluxCommon...), fluxTuning[ctl.Name]...)
		if ctl.Name == "source-controller" {
			storageDir := filepath.Join(dir, "source-storage")
			if err := os.MkdirAll(storageDir, 0o755); err != nil {
				return nil, err
			}
			args = append(args, "--storage-path="+storageDir, "--storage-addr="+storage, "--storage-adv-addr="+storage)
		}
		proc, err := startFluxProc(ctl.Name, bins.Bin[ctl.Name], args, kubeconfig, dir)
		if err != nil {
			return nil, err
		}
		p.procs = append(p.procs, proc)
		if err := poll(ctx, time.Minute, func() (bool, error) {
			if err := proc.exited(); err != nil {
				return false, err
			}
			return httpGetOK("http://" + health + "/readyz"), nil
		}); err != nil {
			return nil, fmt.Errorf("%s not ready: %w", ctl.Name, err)
		}
	}
	return p, nil
}

func startFluxProc(name, bin string, args []string, kubeconfig, dir string) (*fluxProc, error) {
	logFile := filepath.Join(dir, name+".log")
	logf, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(daemonEnv(), "KUBECONFIG="+kubeconfig, "RUNTIME_NAMESPACE="+fluxNamespace, "HOME="+dir)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &fluxProc{name: name, cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *fluxPeer) close() {
	for _, proc := range p.procs {
		terminate(proc.cmd.Process, proc.done, 15*time.Second)
	}
	if p.proxy != nil {
		p.proxy.Close()
	}
	_ = p.mgmt.Stop()
}

// exited reports a controller that is no longer running.
func (p *fluxPeer) exited() error {
	for _, proc := range p.procs {
		if err := proc.exited(); err != nil {
			return err
		}
	}
	return nil
}

// cpu is the CPU time of the three controllers so far.
func (p *fluxPeer) cpu() (float64, error) {
	var sum float64
	for _, proc := range p.procs {
		s, err := CPUSeconds(proc.cmd.Process.Pid)
		if err != nil {
			return 0, err
		}
		sum += s
	}
	return sum, nil
}

// peakRSS is each controller's VmHWM.
func (p *fluxPeer) peakRSS() (map[string]float64, error) {
	out := map[string]float64{}
	for _, proc := range p.procs {
		v, err := PeakRSSMiB(proc.cmd.Process.Pid)
		if err != nil {
			return nil, err
		}
		out[proc.name] = v
	}
	return out, nil
}

// regionKubeconfig is a kubeconfig for r alone through its counting proxy, as
// the admin: what a kubeconfig Secret of a Flux user holds.
func regionKubeconfig(r *benchRegion) ([]byte, error) {
	return clientcmd.Write(*proxyKubeconfig([]*benchRegion{r}))
}

// writeFluxTree generates the Flux objects of f's current model into its work
// tree. With secrets it also writes each tenant's values Secret, encrypted for
// keyFile's age key (the files change with every encryption, so a later call
// that changes no secret leaves them).
func writeFluxTree(ctx context.Context, f *Fleet, keyFile, chartsDir string, withSecrets bool) (*FluxFleet, error) {
	r, snap, dec, err := fleetRenderer(ctx, f, keyFile, chartsDir)
	if err != nil {
		return nil, err
	}
	res, err := r.Render(ctx, snap, render.Filter{})
	if err != nil {
		return nil, err
	}
	if err := res.Err(); err != nil {
		return nil, err
	}
	tenantSecrets := map[string]map[string]any{}
	for _, t := range f.Model.Tenants {
		name := path.Join("tenants", t.Metadata.Name+".secrets.sops.yaml")
		data, err := os.ReadFile(filepath.Join(f.Dir, filepath.FromSlash(name)))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		v, err := dec.DecryptContext(ctx, name, data)
		if err != nil {
			return nil, err
		}
		tenantSecrets[t.Metadata.Name] = v
	}
	ff, err := fluxFleet(f.Model, zone, res.Units, tenantSecrets)
	if err != nil {
		return nil, err
	}
	files := ff.Files
	if withSecrets {
		files = map[string][]byte{}
		for k, v := range ff.Files {
			files[k] = v
		}
		for tenant, plain := range ff.ValuesSecrets {
			enc, err := sopstest.EncryptYAML(keyFile, string(plain), "^(data|stringData)$")
			if err != nil {
				return nil, err
			}
			files[path.Join(fluxDir, "secrets", tenant, "values.sops.yaml")] = enc
		}
	}
	for name, data := range files {
		p := filepath.Join(f.Dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, err
		}
	}
	return ff, nil
}

// start creates what `flux bootstrap` would: the GitRepository of the fleet and
// the root Kustomization of flux/fleet.
func (p *fluxPeer) start(ctx context.Context, remote string) error {
	repo := object("source.toolkit.fluxcd.io/v1", "GitRepository", fluxSource, fluxNamespace, map[string]any{
		"interval": fluxInterval,
		"url":      remote,
		"ref":      map[string]any{"branch": "main"},
	})
	if _, err := p.dyn.Resource(gitRepositories).Namespace(fluxNamespace).Create(ctx, &unstructured.Unstructured{Object: repo}, metav1.CreateOptions{}); err != nil {
		return err
	}
	root := object("kustomize.toolkit.fluxcd.io/v1", "Kustomization", fluxRoot, fluxNamespace, map[string]any{
		"interval":      fluxInterval,
		"retryInterval": fluxRetry,
		"path":          "./" + path.Join(fluxDir, "fleet"),
		"prune":         true,
		"sourceRef":     map[string]any{"kind": "GitRepository", "name": fluxSource},
	})
	_, err := p.dyn.Resource(kustomizationsRes).Namespace(fluxNamespace).Create(ctx, &unstructured.Unstructured{Object: root}, metav1.CreateOptions{})
	return err
}

// trigger asks source-controller to fetch now, as `flux reconcile source git`
// and notification-controller's webhook Receiver do.
func (p *fluxPeer) trigger(ctx context.Context) error {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":%q}}}`, time.Now().Format(time.RFC3339Nano))
	_, err := p.dyn.Resource(gitRepositories).Namespace(fluxNamespace).Patch(ctx, fluxSource, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	return err
}

// readyCount counts the Kustomizations and HelmReleases that are Ready for their
// generation and, when revision is set, have applied a revision of that commit
// (Kustomizations only: a HelmRelease follows its chart, not the commit).
func (p *fluxPeer) readyCount(ctx context.Context, revision string) (ready, total int, err error) {
	for _, gvr := range []schema.GroupVersionResource{kustomizationsRes, helmReleasesRes} {
		list, err := p.dyn.Resource(gvr).Namespace(fluxNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return 0, 0, err
		}
		for _, o := range list.Items {
			total++
			if !readyFor(o) {
				continue
			}
			if revision != "" && gvr == kustomizationsRes {
				applied, _, _ := unstructured.NestedString(o.Object, "status", "lastAppliedRevision")
				if !strings.HasSuffix(applied, revision) {
					continue
				}
			}
			ready++
		}
	}
	return ready, total, nil
}

// readyFor reports a Flux object Ready=True for its current generation.
func readyFor(o unstructured.Unstructured) bool {
	observed, _, _ := unstructured.NestedInt64(o.Object, "status", "observedGeneration")
	if observed != o.GetGeneration() {
		return false
	}
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Ready" {
			return m["status"] == "True"
		}
	}
	return false
}

// waitFluxReady waits until want Flux objects are ready (see readyCount).
func (p *fluxPeer) waitFluxReady(ctx context.Context, want int, revision string, timeout time.Duration) (time.Time, error) {
	var ready, total int
	err := poll(ctx, timeout, func() (bool, error) {
		if err := p.exited(); err != nil {
			return false, err
		}
		var err error
		ready, total, err = p.readyCount(ctx, revision)
		return err == nil && ready >= want, err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("flux: %d of %d objects ready (want %d): %w", ready, total, want, err)
	}
	return time.Now(), nil
}

// poll calls cond every 250 ms until it holds, fails, or timeout passes.
func poll(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}
