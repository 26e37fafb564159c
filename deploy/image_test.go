package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"meridian.dev/meridian/internal/image"
	"meridian.dev/meridian/internal/testenv/gitserver"
	"meridian.dev/meridian/internal/testenv/registrytest"
	"meridian.dev/meridian/internal/testenv/route53test"
	"meridian.dev/meridian/internal/testenv/syncbuf"
	"meridian.dev/meridian/internal/testenv/testbed"
	meridianrender "meridian.dev/meridian/render"
)

const (
	exampleDir = "../fleet-example"
	roleARN    = "arn:aws:iam::123456789012:role/meridian-route53"
	// gitPassword is the fleet repository's password, in the git Secret only.
	gitPassword = "glpat-Vq8mZ3xT1rK6wN2pL9sD"
)

// TestImageInstallAndSync builds Meridian's image, pushes it to a real
// registry and installs the chart with it, with Helm's install action, into a
// management cluster (a testbed region whose pods kwok runs): Route53 on, an
// IAM role on the ServiceAccount, the repository's credentials, the SOPS key
// and the regions' kubeconfig in Secrets. The apiserver accepts every object
// and the Deployment becomes available. Then the binary pulled from the image
// the Deployment names runs as its pod would — the container's arguments and
// environment, the ConfigMap's configuration, every Secret and emptyDir at its
// mount path (under a temporary root) — and syncs fleet-example from a git
// server into three more regions and its DNS records into a Route53 test
// server.
func TestImageInstallAndSync(t *testing.T) {
	ctx := t.Context()
	start := time.Now()

	// The image, as make image builds it, pushed to a registry.
	const version = "v0.1.0-test"
	res, err := image.Build(ctx, image.Options{
		Dir: "..", Version: version, Revision: "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
		Created: time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC), WorkDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := registrytest.New(t)
	repository := reg.Host + "/platform/meridian"
	ref, err := name.ParseReference(repository + ":" + version)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := res.Push(ref, remote.WithTransport(reg.Transport()))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image %s@%s built and pushed after %s", ref, digest, time.Since(start).Round(100*time.Millisecond))

	// The management cluster and the fleet's three regions.
	tb := testbed.New(t, testbed.Options{Names: append(append([]string{}, testbed.DefaultRegionNames...), "management"), Workloads: true})
	mgmt := tb.Region("management")
	regionsKubeconfig := fleetKubeconfig(t, tb.Kubeconfig, "management")

	// The fleet repository, behind credentials and TLS, and the DNS zone.
	git := gitserver.New(t, gitserver.Options{Username: "fleet-reader", Password: gitPassword, TLS: true})
	if _, err := git.CreateRepo("fleet.git"); err != nil {
		t.Fatal(err)
	}
	r53 := route53test.NewServer(route53test.Options{ClientRegion: "us-east-1"})
	t.Cleanup(r53.Close)
	zoneID := r53.CreateZone("fleet.example.com")
	head := publishFleet(t, git, zoneID)
	t.Logf("regions, git server and Route53 ready after %s", time.Since(start).Round(100*time.Millisecond))

	// The Secrets the platform team creates before installing.
	cs := kubernetes.NewForConfigOrDie(mgmt.Config)
	const ns = "meridian-system"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ageKey, err := os.ReadFile(filepath.Join(exampleDir, "demo-age-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]map[string][]byte{
		"meridian-git":     {"username": []byte("fleet-reader"), "password": []byte(gitPassword), "ca.crt": git.CAPEM()},
		"meridian-sops":    {"age.txt": ageKey},
		"meridian-regions": {"kubeconfig": regionsKubeconfig},
	} {
		if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// helm install meridian deploy/meridian -n meridian-system -f values.yaml --wait
	values := map[string]any{
		"image":        map[string]any{"repository": repository, "tag": version, "digest": digest.String()},
		"replicaCount": 1,
		"ha":           map[string]any{"enabled": false},
		"config": map[string]any{
			"repository": map[string]any{
				"url":          git.URL("fleet.git"),
				"branch":       "main",
				"interval":     "2s",
				"usernameFile": "/etc/meridian/git/username",
				"passwordFile": "/etc/meridian/git/password",
				"caFile":       "/etc/meridian/git/ca.crt",
			},
			"decryption":    map[string]any{"keyFiles": []any{"/etc/meridian/sops/age.txt"}},
			"healthTimeout": "3m",
			"route53":       map[string]any{"endpoint": r53.URL, "region": "us-east-1"},
		},
		"secrets":        map[string]any{"git": "meridian-git", "sops": "meridian-sops", "kubeconfig": "meridian-regions"},
		"serviceAccount": map[string]any{"annotations": map[string]any{"eks.amazonaws.com/role-arn": roleARN}},
	}
	installed := time.Now()
	rel := helmInstall(t, mgmt, ns, values)
	if strings.Contains(rel.Manifest, gitPassword) {
		t.Error("the release's manifest holds the git password")
	}
	d := waitAvailable(t, cs, ns, "meridian", "1/1")
	t.Logf("helm install: deployed and available after %s", time.Since(installed).Round(100*time.Millisecond))

	sa, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, d.Spec.Template.Spec.ServiceAccountName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := sa.Annotations["eks.amazonaws.com/role-arn"]; got != roleARN {
		t.Errorf("ServiceAccount %s: role-arn %q, want %q", sa.Name, got, roleARN)
	}
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(d.Spec.Selector)})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 {
		t.Fatalf("%d pods, want 1", len(pods.Items))
	}
	pod := pods.Items[0]
	c := pod.Spec.Containers[0]
	if want := ref.String() + "@" + digest.String(); c.Image != want {
		t.Errorf("pod image %q, want %q", c.Image, want)
	}
	if pod.Status.Phase != corev1.PodRunning {
		t.Errorf("pod %s: phase %s", pod.Name, pod.Status.Phase)
	}

	// The image the pod names, pulled for this machine's platform.
	img := pull(t, reg, c.Image)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if u := pod.Spec.SecurityContext.RunAsUser; u == nil || cf.Config.User != fmt.Sprintf("%d:%d", *u, *u) {
		t.Errorf("image user %q, pod runs as %v", cf.Config.User, u)
	}
	files, err := image.Files(img)
	if err != nil {
		t.Fatal(err)
	}

	// The pod's filesystem under root: the binary, the CA certificates, and
	// every volume at its mount path.
	root := t.TempDir()
	write := func(p string, data []byte, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), data, mode); err != nil {
			t.Fatal(err)
		}
	}
	// The image's own files; paths under these directories are mapped too.
	var mounts []string
	for _, p := range []string{image.BinaryPath, image.CACertsPath} {
		write(p, files[p].Data, os.FileMode(files[p].Header.Mode))
		mounts = append(mounts, path.Dir(p))
	}
	t.Cleanup(func() {
		// The daemon's snapshots are read-only; make them writable so root can go.
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	for _, m := range c.VolumeMounts {
		mounts = append(mounts, m.MountPath)
		if err := os.MkdirAll(filepath.Join(root, m.MountPath), 0o755); err != nil {
			t.Fatal(err)
		}
		vol := volume(pod.Spec.Volumes, m.Name)
		switch {
		case vol.ConfigMap != nil:
			cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, vol.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range cm.Data {
				write(path.Join(m.MountPath, k), []byte(v), 0o644)
			}
		case vol.Secret != nil:
			s, err := cs.CoreV1().Secrets(ns).Get(ctx, vol.Secret.SecretName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range s.Data {
				write(path.Join(m.MountPath, k), v, 0o440)
			}
		case vol.EmptyDir != nil:
		default:
			t.Fatalf("volume %s: neither a ConfigMap, a Secret nor an emptyDir", m.Name)
		}
	}
	// under maps a path in the pod to root.
	under := func(p string) string {
		for _, m := range mounts {
			if p == m || strings.HasPrefix(p, m+"/") {
				return filepath.Join(root, p)
			}
		}
		return p
	}
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = under(a)
	}
	// The configuration's paths are the pod's; its port is a free one here, as
	// a port-forward would map it.
	configFile := filepath.Join(root, "etc/meridian/config/config.yaml")
	listen := freePort(t)
	rewriteConfig(t, configFile, under, listen)

	// The environment: the image's, what EKS's pod identity webhook adds for
	// the role (standing in as static credentials the Route53 test server
	// accepts), then the container's.
	var env []string
	for _, e := range cf.Config.Env {
		k, v, _ := strings.Cut(e, "=")
		env = append(env, k+"="+under(v))
	}
	env = append(env, "AWS_ACCESS_KEY_ID=AKIAMERIDIANTEST", "AWS_SECRET_ACCESS_KEY=not-a-secret-test-only", "AWS_EC2_METADATA_DISABLED=true")
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			switch e.ValueFrom.FieldRef.FieldPath {
			case "metadata.name":
				v = pod.Name
			case "metadata.namespace":
				v = pod.Namespace
			default:
				t.Fatalf("env %s: field %s", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		}
		env = append(env, e.Name+"="+under(v))
	}

	var log syncbuf.Buffer
	daemon := exec.Command(filepath.Join(root, cf.Config.Entrypoint[0]), append(cf.Config.Entrypoint[1:], args...)...)
	daemon.Dir, daemon.Env, daemon.Stdout, daemon.Stderr = root, env, &log, &log
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = daemon.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(90 * time.Second):
				_ = daemon.Process.Kill()
				<-exited
			}
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("daemon log:\n%s", log.String())
		}
	})

	synced := time.Now()
	pass := waitConverged(t, "http://"+listen, head, exited)
	t.Logf("the image's binary synced %s in %s (pass: %.1fs)", head[:12], time.Since(synced).Round(100*time.Millisecond), pass.DurationSeconds)
	for _, r := range tb.Regions {
		if r.Name == "management" {
			continue
		}
		d := waitAvailable(t, kubernetes.NewForConfigOrDie(r.Config), "trucking", "portal", "")
		if d.Labels[meridianrender.LabelManagedBy] != "meridian" {
			t.Errorf("%s: trucking/portal labels %v, want Meridian's", r.Name, d.Labels)
		}
	}
	if n := r53.Count("ChangeResourceRecordSets"); n == 0 {
		t.Error("no DNS change reached Route53")
	}
	stop()
	if strings.Contains(log.String(), gitPassword) {
		t.Error("the daemon's log holds the git password")
	}
	t.Logf("total %s", time.Since(start).Round(100*time.Millisecond))
}

// fleetKubeconfig is the kubeconfig file without the context (and its
// cluster and user) named drop.
func fleetKubeconfig(t *testing.T, file, drop string) []byte {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Contexts[drop]; c != nil {
		delete(cfg.Clusters, c.Cluster)
		delete(cfg.AuthInfos, c.AuthInfo)
		delete(cfg.Contexts, drop)
	}
	for name := range cfg.Contexts {
		cfg.CurrentContext = name
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// publishFleet pushes fleet-example, its DNS zone set to zoneID, and returns
// the commit.
func publishFleet(t *testing.T, git *gitserver.Server, zoneID string) string {
	t.Helper()
	ctx := t.Context()
	work, err := git.Clone(ctx, "fleet.git")
	if err != nil {
		t.Fatal(err)
	}
	if err := work.CopyTree(exampleDir); err != nil {
		t.Fatal(err)
	}
	fleetFile, err := os.ReadFile(filepath.Join(exampleDir, "fleet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(fleetFile, []byte("Z0EXAMPLE0000000")) {
		t.Fatal("fleet-example/fleet.yaml: no hostedZoneID placeholder Z0EXAMPLE0000000")
	}
	if err := work.WriteFiles(map[string]string{"fleet.yaml": strings.Replace(string(fleetFile), "Z0EXAMPLE0000000", zoneID, 1)}); err != nil {
		t.Fatal(err)
	}
	head, err := work.Commit(ctx, "fleet-example with its hosted zone")
	if err != nil {
		t.Fatal(err)
	}
	if err := work.Push(ctx); err != nil {
		t.Fatal(err)
	}
	return head
}

// waitAvailable waits for the Deployment to be Available with want
// ("ready/replicas", or any count when empty) and returns it.
func waitAvailable(t *testing.T, cs kubernetes.Interface, ns, name, want string) *appsv1.Deployment {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		d, err := cs.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err == nil {
			cond := corev1.ConditionUnknown
			for _, c := range d.Status.Conditions {
				if c.Type == appsv1.DeploymentAvailable {
					cond = c.Status
				}
			}
			got := available(d)
			if cond == corev1.ConditionTrue && (got == want || want == "" && d.Status.AvailableReplicas == *d.Spec.Replicas) {
				return d
			}
			if time.Now().After(deadline) {
				t.Fatalf("Deployment %s/%s: available %s (condition %s) after 3 minutes", ns, name, got, cond)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("Deployment %s/%s: %v", ns, name, err)
		}
	}
}

// pull fetches the image reference names for linux and this machine's
// architecture.
func pull(t *testing.T, reg *registrytest.Registry, reference string) v1.Image {
	t.Helper()
	ref, err := name.ParseReference(reference)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, remote.WithTransport(reg.Transport()), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}))
	if err != nil {
		t.Fatalf("pull %s: %v", reference, err)
	}
	return img
}

func volume(vols []corev1.Volume, name string) corev1.Volume {
	for _, v := range vols {
		if v.Name == name {
			return v
		}
	}
	return corev1.Volume{}
}

// freePort is a loopback address nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// rewriteConfig maps every path in the configuration file with under and sets
// its listen address.
func rewriteConfig(t *testing.T, file string, under func(string) string, listen string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case string:
			return under(v)
		case []any:
			for i := range v {
				v[i] = walk(v[i])
			}
		case map[string]any:
			for k := range v {
				v[k] = walk(v[k])
			}
		}
		return v
	}
	walk(cfg)
	if cfg["listen"] != ":8080" {
		t.Errorf("the chart's listen %v, want :8080 (the container port)", cfg["listen"])
	}
	cfg["listen"] = listen
	if data, err = yaml.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// lastPass is what waitConverged reads of /api/v1/status.
type lastPass struct {
	Revision        string  `json:"revision"`
	Converged       bool    `json:"converged"`
	Problems        string  `json:"problems"`
	DurationSeconds float64 `json:"durationSeconds"`
}

// waitConverged polls the daemon's status until a pass converged at head.
func waitConverged(t *testing.T, base, head string, exited <-chan error) lastPass {
	t.Helper()
	var last lastPass
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		select {
		case err := <-exited:
			t.Fatalf("the daemon exited: %v", err)
		default:
		}
		resp, err := http.Get(base + "/api/v1/status")
		if err != nil {
			continue
		}
		var st struct {
			LastPass *lastPass `json:"lastPass"`
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil || st.LastPass == nil {
			continue
		}
		last = *st.LastPass
		if last.Revision == head && last.Converged {
			return last
		}
	}
	t.Fatalf("no converged pass at %s within 5 minutes; last pass %+v", head, last)
	return last
}
