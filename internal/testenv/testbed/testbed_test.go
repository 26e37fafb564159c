package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// TestOneRegionAPIServerOnly starts the smallest testbed and checks what a
// test relies on: the version, the kubeconfig (CA verified, context named
// after the region), RBAC in force, and Stop killing everything.
func TestOneRegionAPIServerOnly(t *testing.T) {
	t.Parallel()
	tb := New(t, Options{Regions: 1})
	if len(tb.Regions) != 1 || tb.Regions[0].Name != "us-east-1" {
		t.Fatalf("regions = %v, want [us-east-1]", regionNames(tb))
	}
	r := tb.Regions[0]
	ctx := t.Context()

	cs := kubernetes.NewForConfigOrDie(r.Config)
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != "v1.37.2" {
		t.Errorf("server version = %s, want v1.37.2", v.GitVersion)
	}

	// The kubeconfig file works on its own, verifying the serving certificate.
	raw, err := clientcmd.LoadFromFile(r.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if raw.CurrentContext != r.Name || raw.Contexts[r.Name] == nil {
		t.Errorf("kubeconfig current context = %q, contexts %v; want %q", raw.CurrentContext, keys(raw.Contexts), r.Name)
	}
	fromFile, err := clientcmd.BuildConfigFromFlags("", r.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if fromFile.Insecure || len(fromFile.CAData) == 0 {
		t.Errorf("kubeconfig: insecure=%v, %d bytes of CA data; want a verified CA", fromFile.Insecure, len(fromFile.CAData))
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "smoke"}}
	if _, err := kubernetes.NewForConfigOrDie(fromFile).CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace through the kubeconfig file: %v", err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Data: map[string]string{"k": "v"}}
	if _, err := cs.CoreV1().ConfigMaps("smoke").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := cs.CoreV1().ConfigMaps("smoke").Get(ctx, "c", metav1.GetOptions{})
	if err != nil || got.Data["k"] != "v" {
		t.Fatalf("get configmap = %v, %v; want data k=v", got.Data, err)
	}

	// The service range holds fleets of thousands of Services per region, not
	// the 254 of a /24: an address past the first 256 is allocated.
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "wide"}, Spec: corev1.ServiceSpec{
		ClusterIP: "10.0.12.34", Ports: []corev1.ServicePort{{Port: 80}},
	}}
	if _, err := cs.CoreV1().Services("smoke").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Errorf("create a Service at 10.0.12.34 (service range %s): %v", serviceIPCIDR, err)
	}

	// RBAC decides: a user without bindings is refused.
	nobody := rest.CopyConfig(r.Config)
	nobody.Impersonate = rest.ImpersonationConfig{UserName: "nobody"}
	_, err = kubernetes.NewForConfigOrDie(nobody).CoreV1().Secrets("smoke").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("list secrets as an unbound user: err = %v, want Forbidden", err)
	}

	// Stop kills every component and removes the temporary state.
	var pids []int
	for _, p := range r.procs {
		pids = append(pids, p.pid())
	}
	if len(pids) != 2 {
		t.Errorf("processes = %d, want 2 (etcd, kube-apiserver)", len(pids))
	}
	if err := tb.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d still alive after Stop", pid)
		}
	}
	if _, err := os.Stat(tb.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir after Stop: %v, want it removed", err)
	}
	if err := tb.Stop(); err != nil {
		t.Errorf("second Stop = %v, want nil", err)
	}
}

// TestThreeRegionsDeploymentsBecomeAvailable runs three full regions and a
// Deployment in each, which must become Available through the real
// controller-manager, scheduler and kwok's fake kubelets. The test only
// creates the Deployments; it never writes any status.
func TestThreeRegionsDeploymentsBecomeAvailable(t *testing.T) {
	t.Parallel()
	tb := New(t, Options{Regions: 3, Workloads: true})
	if got := regionNames(tb); !slices.Equal(got, DefaultRegionNames) {
		t.Fatalf("regions = %v, want %v", got, DefaultRegionNames)
	}
	all, err := clientcmd.LoadFromFile(tb.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(all.Contexts); !slices.Equal(got, []string{"ap-northeast-2", "eu-west-2", "us-east-1"}) {
		t.Errorf("contexts in %s = %v, want one per region", tb.Kubeconfig, got)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for _, r := range tb.Regions {
		wg.Go(func() {
			if err := deployAndWait(ctx, r); err != nil {
				t.Errorf("region %s: %v", r.Name, err)
			}
		})
	}
	wg.Wait()
}

// deployAndWait creates a three-replica Deployment and waits until the
// controllers report it Available with Pods Running on this region's nodes.
func deployAndWait(ctx context.Context, r *Region) error {
	cs, err := kubernetes.NewForConfig(r.Config)
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return err
	}
	replicas := int32(3)
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "demo"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "web",
					Image: "example.invalid/web:1", // kwok runs no image
				}}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments("demo").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		return err
	}
	var last string
	err = wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments("demo").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = fmt.Sprintf("available %d/%d, conditions %v", d.Status.AvailableReplicas, replicas, d.Status.Conditions)
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue && d.Status.AvailableReplicas == replicas {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("deployment demo/web not Available: %w (last: %s)", err, last)
	}
	pods, err := cs.CoreV1().Pods("demo").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		return err
	}
	running := 0
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" || !strings.HasPrefix(p.Spec.NodeName, r.Name+"-node-") {
			return fmt.Errorf("pod %s: phase %s, ip %q, node %q; want Running with an IP on a %s node", p.Name, p.Status.Phase, p.Status.PodIP, p.Spec.NodeName, r.Name)
		}
		running++
	}
	if running != int(replicas) {
		return fmt.Errorf("%d pods running, want %d", running, replicas)
	}
	return nil
}

// TestDetachedUpAndDown starts a detached region as `meridian-dev up` does and
// stops it from its state file alone, as `meridian-dev down` does.
func TestDetachedUpAndDown(t *testing.T) {
	if os.Getenv(EnvSkip) == "1" {
		t.Skipf("%s=1", EnvSkip)
	}
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "dev")
	tb, err := Start(t.Context(), Options{Names: []string{"dev-1"}, Dir: dir, Detached: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Down(dir) })

	st, err := ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Regions) != 1 || st.Regions[0].Name != "dev-1" || len(st.Regions[0].Processes) != 2 {
		t.Fatalf("state = %+v, want region dev-1 with 2 processes", st)
	}
	if st.Regions[0].Ports["kube-apiserver"] == 0 || st.Regions[0].Kubeconfig != tb.Regions[0].Kubeconfig {
		t.Errorf("state region = %+v, want the apiserver port and kubeconfig recorded", st.Regions[0])
	}
	if _, err := Start(t.Context(), Options{Names: []string{"dev-1"}, Dir: dir, Detached: true}); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second start in the same dir: err = %v, want already running", err)
	}
	if err := Down(dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Regions[0].Processes {
		if alive(p.PID) {
			t.Errorf("%s pid %d alive after Down", p.Component, p.PID)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dir after Down: %v, want removed", err)
	}
	if err := Down(dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("second Down = %v, want ErrNotRunning", err)
	}
}

func regionNames(tb *Testbed) []string {
	var names []string
	for _, r := range tb.Regions {
		names = append(names, r.Name)
	}
	return names
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestStartFailureCarriesLogTail checks that a component that dies while a
// region starts is reported with its region, its name and the end of its log.
func TestStartFailureCarriesLogTail(t *testing.T) {
	if os.Getenv(EnvSkip) == "1" {
		t.Skipf("%s=1", EnvSkip)
	}
	t.Parallel()
	bins, err := Build(t.Context(), nil, Etcd)
	if err != nil {
		t.Fatal(err)
	}
	tb := &Testbed{bins: bins, spawner: newSpawner(), Dir: t.TempDir()}
	defer tb.Stop()
	r := &Region{Name: "broken", Dir: tb.Dir}
	p, err := tb.startProcess(r, Etcd, "--no-such-flag")
	if err != nil {
		t.Fatal(err)
	}
	err = waitFor(t.Context(), p, time.Minute, "/health", func() error { return errors.New("not yet") })
	if err == nil {
		t.Fatal("waitFor succeeded for a component that exits at once")
	}
	for _, want := range []string{"region broken: etcd exited", "--- last lines of " + r.LogFile(Etcd), "no-such-flag"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
