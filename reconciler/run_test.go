package reconciler_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/gitserver"
	"meridian.dev/meridian/internal/testenv/syncbuf"
	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/inventory"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/helm"
	"meridian.dev/meridian/render/secrets"
	"meridian.dev/meridian/review/preview"
	"meridian.dev/meridian/sources"
)

const exampleDir = "../fleet-example"

// healthTimeout bounds each pass's wait for health in these tests.
const healthTimeout = 3 * time.Minute

// workerError is how Helm refuses the worker chart with a template error.
const workerError = "apps/worker/chart/templates/deployment.yaml:46: unexpected EOF"

// exampleUnits are the units fleet-example places in each region.
var exampleUnits = map[string][]string{
	"eu-west-2": {
		"addon:eu-west-2/platform", "logistics-eu/eu-west-2", "logistics-eu/eu-west-2/api", "logistics-eu/eu-west-2/portal",
		"trucking/eu-west-2", "trucking/eu-west-2/api", "trucking/eu-west-2/portal", "trucking/eu-west-2/worker",
	},
	"us-east-1": {
		"addon:us-east-1/platform", "charging-stations-ca/us-east-1", "charging-stations-ca/us-east-1/portal", "charging-stations-ca/us-east-1/worker",
		"logistics-eu/us-east-1", "logistics-eu/us-east-1/portal",
		"trucking/us-east-1", "trucking/us-east-1/api", "trucking/us-east-1/portal", "trucking/us-east-1/worker",
	},
	"ap-northeast-2": {
		"addon:ap-northeast-2/platform", "trucking/ap-northeast-2", "trucking/ap-northeast-2/api", "trucking/ap-northeast-2/portal", "trucking/ap-northeast-2/worker",
	},
}

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard()) // the applier's client logs nothing worth reading here
	os.Exit(m.Run())
}

// fixture is three testbed regions with workloads and a git server holding
// fleet-example, shared by the subtests of TestRun in order.
type fixture struct {
	tb       *testbed.Testbed
	work     *gitserver.Workdir
	git      *sources.Git
	renderer *render.Renderer
	logs     *logBuffer
}

// head fetches the repository's head and loads its fleet, as the daemon does
// before a pass.
func (f *fixture) head(t *testing.T) render.Snapshot {
	t.Helper()
	snap, err := f.git.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	model, err := fleet.LoadDir(snap.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return render.Snapshot{Dir: snap.Dir, Revision: snap.Revision, Model: model}
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	tb := testbed.New(t, testbed.Options{Regions: 3, Workloads: true})
	srv := gitserver.New(t, gitserver.Options{})
	if _, err := srv.CreateRepo("fleet.git"); err != nil {
		t.Fatal(err)
	}
	work, err := srv.Clone(ctx, "fleet.git")
	if err != nil {
		t.Fatal(err)
	}
	if err := work.CopyTree(exampleDir); err != nil {
		t.Fatal(err)
	}
	if _, err := work.Commit(ctx, "fleet-example"); err != nil {
		t.Fatal(err)
	}
	if err := work.Push(ctx); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	t.Cleanup(func() {
		// Snapshots are read-only; make them writable so the directory can go.
		_ = filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	logs := &logBuffer{}
	git, err := sources.NewGit(sources.GitOptions{URL: srv.URL("fleet.git"), Ref: sources.Ref{Branch: "main"}, CacheDir: cache, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	charts, err := helm.New(helm.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secrets.KeysFromFiles(filepath.Join(exampleDir, "demo-age-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})
	return &fixture{
		tb:       tb,
		work:     work,
		git:      git,
		renderer: render.New(render.Options{Helm: charts, Decryptor: secrets.NewDecryptor(keys)}),
		logs:     logs,
	}
}

// push commits files (an empty content removes the file) and pushes them; it
// returns the commit.
func (f *fixture) push(t *testing.T, message string, files map[string]string) string {
	t.Helper()
	ctx := t.Context()
	write := map[string]string{}
	for name, content := range files {
		if content == "" {
			if err := f.work.RemoveFiles(name); err != nil {
				t.Fatal(err)
			}
			continue
		}
		write[name] = content
	}
	rev, err := f.work.CommitFiles(ctx, message, write)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.work.Push(ctx); err != nil {
		t.Fatal(err)
	}
	return rev
}

// plan runs `meridian plan` on the repository's head: the preview and its text.
func (f *fixture) plan(t *testing.T) (*preview.Preview, string) {
	t.Helper()
	snap := f.head(t)
	r := reconciler.New(reconciler.Options{Renderer: f.renderer, Clusters: reconciler.Clusters(t.Context(), snap.Model, f.tb.Kubeconfig, reconciler.Access{}, nil)})
	p, err := preview.Run(t.Context(), r, snap, false)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	if err := p.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	return p, text.String()
}

// options are the daemon's options on the fixture.
func (f *fixture) options() reconciler.RunOptions {
	return reconciler.RunOptions{
		Poller:        &sources.Poller{Source: f.git, Interval: 200 * time.Millisecond, MinBackoff: 100 * time.Millisecond},
		Snapshots:     f.git,
		Renderer:      f.renderer,
		Kubeconfig:    f.tb.Kubeconfig,
		HealthTimeout: healthTimeout,
		Log:           f.logs.logger(),
	}
}

// once runs `meridian run --once` on the repository's head and returns the
// pass's report (nil when there was no pass) and Run's error.
func (f *fixture) once(t *testing.T) (*reconciler.Report, error) {
	t.Helper()
	opts := f.options()
	opts.Once = true
	var report *reconciler.Report
	opts.Passed = func(r *reconciler.Report) { report = r }
	err := reconciler.Run(t.Context(), opts)
	return report, err
}

// file reads a file of fleet-example.
func file(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(exampleDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// replace replaces old, which must occur once, in s.
func replace(t *testing.T, s, old, new string) string {
	t.Helper()
	if strings.Count(s, old) != 1 {
		t.Fatalf("%q does not occur exactly once", old)
	}
	return strings.Replace(s, old, new, 1)
}

// changes summarises a report's change sets: region → unit → action, with the
// objects deleted.
func changes(r *reconciler.Report) map[string]map[string]string {
	out := map[string]map[string]string{}
	for region, rr := range r.Regions {
		out[region] = map[string]string{}
		for _, ch := range rr.Changes.Changes {
			s := ch.Action.String()
			if len(ch.Delete) > 0 {
				refs := make([]string, len(ch.Delete))
				for i, d := range ch.Delete {
					refs[i] = d.String()
				}
				slices.Sort(refs)
				s += " deleting " + strings.Join(refs, ", ")
			}
			out[region][ch.Unit.String()] = s
		}
	}
	return out
}

// every returns the change summary in which every unit of units has action, except
// those named in except.
func every(units map[string][]string, action string, except map[string]string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for region, list := range units {
		out[region] = map[string]string{}
		for _, u := range list {
			out[region][u] = action
			if a, ok := except[u]; ok {
				out[region][u] = a
			}
		}
	}
	for u, a := range except {
		region := mustUnit(u).Region
		if _, ok := out[region][u]; !ok {
			out[region][u] = a
		}
	}
	return out
}

// inventories reads every region's inventories: region → unit → inventory.
func (f *fixture) inventories(t *testing.T) map[string]map[string]plan.Inventory {
	t.Helper()
	out := map[string]map[string]plan.Inventory{}
	for _, r := range f.tb.Regions {
		store, err := inventory.NewStore(r.Config)
		if err != nil {
			t.Fatal(err)
		}
		list, err := store.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		out[r.Name] = map[string]plan.Inventory{}
		for _, inv := range list {
			out[r.Name][inv.Unit.String()] = inv
		}
	}
	return out
}

// units returns the unit IDs of inventories, by region.
func units(invs map[string]map[string]plan.Inventory) map[string][]string {
	out := map[string][]string{}
	for region, m := range invs {
		out[region] = slices.Sorted(maps.Keys(m))
	}
	return out
}

// live reads an object of a region, or returns nil when it does not exist.
func live(t *testing.T, cfg *rest.Config, ref plan.ObjectRef) *unstructured.Unstructured {
	t.Helper()
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(ref.GroupVersionKind())
	err = c.Get(t.Context(), client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, u)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	return u
}

// checkLive checks that every object of every inventory exists and that none was
// written by revision notApplied.
func (f *fixture) checkLive(t *testing.T, invs map[string]map[string]plan.Inventory, notApplied string) {
	t.Helper()
	for region, m := range invs {
		cfg := f.tb.Region(region).Config
		for unit, inv := range m {
			for _, ref := range inv.Objects {
				u := live(t, cfg, ref)
				if u == nil {
					t.Errorf("%s: %s of unit %s is missing", region, ref, unit)
					continue
				}
				if rev := u.GetAnnotations()[render.AnnotationRevision]; rev == notApplied {
					t.Errorf("%s: %s of unit %s was written by revision %s", region, ref, unit, rev)
				}
			}
		}
	}
}

// deployment reads a Deployment.
func (f *fixture) deployment(t *testing.T, region, namespace, name string) *appsv1.Deployment {
	t.Helper()
	d, err := kubernetes.NewForConfigOrDie(f.tb.Region(region).Config).AppsV1().Deployments(namespace).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("%s: %v", region, err)
	}
	return d
}

// available says whether a Deployment is Available with every replica ready, as
// "namespace/name: replicas=N ready=N available=True".
func available(d *appsv1.Deployment) string {
	cond := "Unknown"
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			cond = string(c.Status)
		}
	}
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	return d.Namespace + "/" + d.Name + ": replicas=" + itoa(replicas) + " ready=" + itoa(d.Status.ReadyReplicas) + " available=" + cond
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// TestRun takes fleet-example through a sequence of commits on three regions,
// with the daemon's own code path (`run --once`, then Run with its poller).
func TestRun(t *testing.T) {
	f := newFixture(t)

	t.Run("initial sync reaches Ready everywhere", func(t *testing.T) {
		report, err := f.once(t)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(every(exampleUnits, "create", nil), changes(report)); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(exampleUnits, units(f.inventories(t))); diff != "" {
			t.Errorf("inventories (-want +got):\n%s", diff)
		}
		for region, list := range exampleUnits {
			var want, got []string
			for _, u := range list {
				id := mustUnit(u)
				if id.IsNamespace() || id.IsAddon() {
					continue
				}
				d := f.deployment(t, region, id.Tenant, id.App)
				got = append(got, available(d))
				want = append(want, d.Namespace+"/"+d.Name+": replicas="+itoa(*d.Spec.Replicas)+" ready="+itoa(*d.Spec.Replicas)+" available=True")
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: deployments (-want +got):\n%s", region, diff)
			}
		}
	})
	if t.Failed() {
		return
	}

	t.Run("plan shows a manual edit as drift and writes nothing", func(t *testing.T) {
		before := f.inventories(t)
		f.scale(t, "eu-west-2", "trucking", "portal", 1)
		defer f.scale(t, "eu-west-2", "trucking", "portal", 3)
		p, text := f.plan(t)
		if err := p.Err(); err != nil {
			t.Fatal(err)
		}
		if !p.Changed() {
			t.Error("Changed() is false with a drifted Deployment")
		}
		want := "eu-west-2: 8 unchanged\n  drift     trucking/eu-west-2/portal\n      Deployment/trucking/portal: replace /spec/replicas\n"
		if !strings.Contains(text, want) {
			t.Errorf("plan does not show the drift %q:\n%s", want, text)
		}
		if strings.Count(text, "drift ") != 1 {
			t.Errorf("plan shows more than the one drifted unit:\n%s", text)
		}
		if diff := cmp.Diff(before, f.inventories(t)); diff != "" {
			t.Errorf("inventories (-want +got):\n%s", diff)
		}
		if got := *f.deployment(t, "eu-west-2", "trucking", "portal").Spec.Replicas; got != 1 {
			t.Errorf("plan changed the edited Deployment: %d replicas", got)
		}
	})

	tenant := file(t, "tenants/logistics-eu.yaml")
	t.Run("a value change to one tenant updates only its placements", func(t *testing.T) {
		tenant = replace(t, tenant, "    - name: portal\n", "    - name: portal\n      values:\n        replicas: 4\n")
		f.push(t, "logistics-eu: four portal replicas", map[string]string{"tenants/logistics-eu.yaml": tenant})
		report, err := f.once(t)
		if err != nil {
			t.Fatal(err)
		}
		want := every(exampleUnits, "unchanged", map[string]string{"logistics-eu/eu-west-2/portal": "update", "logistics-eu/us-east-1/portal": "update"})
		if diff := cmp.Diff(want, changes(report)); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}
		for _, region := range []string{"eu-west-2", "us-east-1"} {
			if diff := cmp.Diff("logistics-eu/portal: replicas=4 ready=4 available=True", available(f.deployment(t, region, "logistics-eu", "portal"))); diff != "" {
				t.Errorf("%s (-want +got):\n%s", region, diff)
			}
		}
	})

	t.Run("a change to a file of a Kustomize base updates every placement of its app", func(t *testing.T) {
		base := replace(t, file(t, "apps/api/base/deployment.yaml"), "  name: api\n", "  name: api\n  annotations:\n    example.com/edited: base\n")
		f.push(t, "api: an annotation in the base", map[string]string{"apps/api/base/deployment.yaml": base})
		report, err := f.once(t)
		if err != nil {
			t.Fatal(err)
		}
		want := every(exampleUnits, "unchanged", map[string]string{"logistics-eu/eu-west-2/api": "update",
			"trucking/ap-northeast-2/api": "update", "trucking/eu-west-2/api": "update", "trucking/us-east-1/api": "update"})
		if diff := cmp.Diff(want, changes(report)); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}
		if got := f.deployment(t, "eu-west-2", "logistics-eu", "api").Annotations["example.com/edited"]; got != "base" {
			t.Errorf("Deployment/logistics-eu/api in eu-west-2 has annotation example.com/edited %q, want \"base\"", got)
		}
	})

	units := maps.Clone(exampleUnits)
	units["eu-west-2"] = slices.DeleteFunc(slices.Clone(units["eu-west-2"]), func(u string) bool { return u == "logistics-eu/eu-west-2/api" })
	t.Run("removing an app from a tenant prunes exactly its objects", func(t *testing.T) {
		before := f.inventories(t)
		pruned := before["eu-west-2"]["logistics-eu/eu-west-2/api"]
		tenant = replace(t, tenant, "    - name: api\n      regions: [eu-west-2]           # the API serves EU customers and stays in the EU\n", "")
		f.push(t, "logistics-eu: no API", map[string]string{"tenants/logistics-eu.yaml": tenant})
		report, err := f.once(t)
		if err != nil {
			t.Fatal(err)
		}
		want := every(units, "unchanged", map[string]string{"logistics-eu/eu-west-2/api": "prune deleting Deployment/logistics-eu/api, Service/logistics-eu/api"})
		if diff := cmp.Diff(want, changes(report)); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}
		after := f.inventories(t)
		delete(before["eu-west-2"], "logistics-eu/eu-west-2/api")
		if diff := cmp.Diff(before, after); diff != "" {
			t.Errorf("inventories (-want +got):\n%s", diff)
		}
		for _, ref := range pruned.Objects {
			if live(t, f.tb.Region("eu-west-2").Config, ref) != nil {
				t.Errorf("%s is still in eu-west-2", ref)
			}
		}
		f.checkLive(t, after, "")
	})

	t.Run("a manual edit to an owned field is corrected, or only reported under driftPolicy report", func(t *testing.T) {
		trucking := replace(t, file(t, "tenants/trucking.yaml"), "    - name: portal\n", "    - name: portal\n      driftPolicy: report\n")
		f.push(t, "trucking: report drift of the portal", map[string]string{"tenants/trucking.yaml": trucking})
		report, err := f.once(t)
		if err != nil {
			t.Fatal(err)
		}
		// The policy is not an input of the objects: no unit changes.
		if diff := cmp.Diff(every(units, "unchanged", nil), changes(report)); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}
		f.scale(t, "eu-west-2", "logistics-eu", "portal", 1)
		f.scale(t, "us-east-1", "trucking", "portal", 1)

		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		opts := f.options()
		opts.DriftInterval = 300 * time.Millisecond
		passed := make(chan *reconciler.Report, 10)
		drifts := make(chan *reconciler.DriftReport, 100)
		opts.Passed = func(r *reconciler.Report) { passed <- r }
		opts.DriftChecked = func(r *reconciler.DriftReport) { drifts <- r }
		done := make(chan error, 1)
		go func() { done <- reconciler.Run(ctx, opts) }()

		// The pass finds every unit unchanged, so it leaves the edits alone; the drift
		// checks find them.
		select {
		case r := <-passed:
			if diff := cmp.Diff(every(units, "unchanged", nil), changes(r)); diff != "" {
				t.Errorf("pass changes (-want +got):\n%s", diff)
			}
		case <-time.After(3 * time.Minute):
			t.Fatal("no pass")
		}
		wantFirst := map[string]string{
			"eu-west-2": "corrected logistics-eu/eu-west-2/portal: Deployment/logistics-eu/portal: replace /spec/replicas",
			"us-east-1": "reported trucking/us-east-1/portal: Deployment/trucking/portal: replace /spec/replicas",
		}
		wantThen := map[string]string{
			"us-east-1": "reported trucking/us-east-1/portal: Deployment/trucking/portal: replace /spec/replicas",
		}
		for i, want := range []map[string]string{wantFirst, wantThen, wantThen} {
			select {
			case r := <-drifts:
				if err := r.Err(); err != nil {
					t.Errorf("drift check %d: %v", i, err)
				}
				if diff := cmp.Diff(want, driftSummary(r)); diff != "" {
					t.Errorf("drift check %d (-want +got):\n%s", i, diff)
				}
				if got, wantN := r.Objects(), len(want); got != wantN {
					t.Errorf("drift check %d: %d drifted objects, want %d", i, got, wantN)
				}
			case <-time.After(time.Minute):
				t.Fatalf("no drift check %d", i)
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := *f.deployment(t, "eu-west-2", "logistics-eu", "portal").Spec.Replicas; got != 4 {
			t.Errorf("eu-west-2: logistics-eu/portal has %d replicas, want 4 again", got)
		}
		if got := *f.deployment(t, "us-east-1", "trucking", "portal").Spec.Replicas; got != 1 {
			t.Errorf("us-east-1: trucking/portal has %d replicas, want the 1 it was scaled to", got)
		}
		// Leave the fleet as the later subtests expect it.
		f.scale(t, "us-east-1", "trucking", "portal", 3)
	})

	chart := file(t, "apps/worker/chart/templates/deployment.yaml")
	t.Run("a commit that breaks rendering changes nothing in any cluster", func(t *testing.T) {
		before := f.inventories(t)
		broken := f.push(t, "worker: a template error", map[string]string{"apps/worker/chart/templates/deployment.yaml": chart + "{{ if .Values.replicas }}\n"})
		report, err := f.once(t)
		if diff := cmp.Diff("revision "+broken[:12]+": 4 units failed to render", errString(err)); diff != "" {
			t.Errorf("error (-want +got):\n%s", diff)
		}
		if report == nil {
			t.Fatal("no pass")
		}
		var failed []string
		for _, e := range report.RenderErrors {
			failed = append(failed, e.Error())
		}
		wantFailed := []string{
			"charging-stations-ca/us-east-1/worker: " + workerError,
			"trucking/ap-northeast-2/worker: " + workerError,
			"trucking/eu-west-2/worker: " + workerError,
			"trucking/us-east-1/worker: " + workerError,
		}
		if diff := cmp.Diff(wantFailed, failed); diff != "" {
			t.Errorf("render errors (-want +got):\n%s", diff)
		}
		want := every(units, "unchanged", map[string]string{
			"charging-stations-ca/us-east-1/worker": "keep", "trucking/ap-northeast-2/worker": "keep",
			"trucking/eu-west-2/worker": "keep", "trucking/us-east-1/worker": "keep",
		})
		if diff := cmp.Diff(want, changes(report)); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(before, f.inventories(t)); diff != "" {
			t.Errorf("inventories (-want +got):\n%s", diff)
		}
		f.checkLive(t, before, broken)
	})

	trucking := file(t, "tenants/trucking.yaml")
	t.Run("the daemon keeps serving the last good revision through an invalid commit and shuts down gracefully", func(t *testing.T) {
		fixed := f.push(t, "worker: template fixed", map[string]string{"apps/worker/chart/templates/deployment.yaml": chart})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		opts := f.options()
		reports := make(chan *reconciler.Report, 10)
		opts.Passed = func(r *reconciler.Report) { reports <- r }
		applying := make(chan string, 1)
		var built atomic.Int32
		opts.NewCluster = func(region string, cfg *rest.Config) (reconciler.Cluster, error) {
			built.Add(1)
			c, err := realCluster(cfg)
			return signalling{Cluster: c, unit: "trucking/ap-northeast-2/portal", applying: applying}, err
		}
		done := make(chan error, 1)
		go func() { done <- reconciler.Run(ctx, opts) }()
		next := func(t *testing.T) *reconciler.Report {
			t.Helper()
			select {
			case r := <-reports:
				return r
			case err := <-done:
				t.Fatalf("Run returned early: %v", err)
			case <-time.After(3 * time.Minute):
				t.Fatal("no pass within 3m")
			}
			return nil
		}

		// The first pass serves the fixed revision: the worker units were kept as
		// they were, so nothing changes.
		first := next(t)
		if first.Revision != fixed {
			t.Fatalf("first pass on %s, want %s", first.Revision, fixed)
		}
		if err := first.Err(); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(every(units, "unchanged", nil), changes(first)); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}
		before := f.inventories(t)

		// An invalid fleet file: every error is logged, nothing is applied.
		invalid := f.push(t, "trucking: a typo", map[string]string{"tenants/trucking.yaml": replace(t, trucking, "  regions: [", "  regoins: [")})
		deadline := time.Now().Add(time.Minute)
		for !strings.Contains(f.logs.String(), `"msg":"revision refused; keeping the last good revision","revision":"`+invalid) {
			if time.Now().After(deadline) {
				t.Fatal("the invalid revision was not refused within 1m")
			}
			time.Sleep(50 * time.Millisecond)
		}
		want := []string{
			`tenants/trucking.yaml:6: spec.regions: required field "regions" is missing; add it`,
			`tenants/trucking.yaml:7: spec.regoins: unknown field; did you mean "regions"?`,
			`tenants/trucking.yaml:21: spec.apps[0].regionValues.ap-northeast-2: app "portal" does not run in region "ap-northeast-2"; remove these values or add the region`,
		}
		if diff := cmp.Diff(want, f.logged(t, "invalid fleet file", invalid)); diff != "" {
			t.Errorf("logged errors (-want +got):\n%s", diff)
		}
		select {
		case r := <-reports:
			t.Fatalf("a pass ran on %s after the invalid commit", r.Revision)
		case <-time.After(time.Second): // five polls
		}
		if diff := cmp.Diff(before, f.inventories(t)); diff != "" {
			t.Errorf("inventories (-want +got):\n%s", diff)
		}
		f.checkLive(t, before, invalid)

		// A valid commit after it is applied; shutting down while it is applied lets
		// the pass finish.
		valid := f.push(t, "trucking: two portal replicas in ap-northeast-2", map[string]string{"tenants/trucking.yaml": replace(t, trucking, "          replicas: 1\n", "          replicas: 2\n")})
		select {
		case <-applying:
		case <-time.After(time.Minute):
			t.Fatal("the valid revision was not applied within 1m")
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(2 * time.Minute):
			t.Fatal("Run did not return within 2m of the shutdown")
		}
		if !strings.Contains(f.logs.String(), `"msg":"shutdown requested; letting the pass in flight finish"`) {
			t.Error("the shutdown did not find a pass in flight")
		}
		last := next(t)
		if last.Revision != valid {
			t.Fatalf("last pass on %s, want %s", last.Revision, valid)
		}
		if err := last.Err(); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(every(units, "unchanged", map[string]string{"trucking/ap-northeast-2/portal": "update"}), changes(last)); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff("trucking/portal: replicas=2 ready=2 available=True", available(f.deployment(t, "ap-northeast-2", "trucking", "portal"))); diff != "" {
			t.Errorf("ap-northeast-2 (-want +got):\n%s", diff)
		}
		if got := f.inventories(t)["ap-northeast-2"]["trucking/ap-northeast-2/portal"].Revision; got != valid {
			t.Errorf("inventory of trucking/ap-northeast-2/portal records revision %s, want %s", got, valid)
		}
		// A new revision keeps each region's write side (and its watches).
		if got := built.Load(); got != 3 {
			t.Errorf("%d region write sides built over two revisions, want one per region (3)", got)
		}
	})

	t.Run("a region the daemon cannot reach as configured fails alone", func(t *testing.T) {
		region := replace(t, file(t, "regions/ap-northeast-2.yaml"), "    kubeconfigContext: ap-northeast-2\n",
			"    secretRef: {namespace: meridian-system, name: kubeconfigs, key: ap-northeast-2}\n")
		rev := f.push(t, "ap-northeast-2: kubeconfig from a Secret", map[string]string{"regions/ap-northeast-2.yaml": region})
		report, err := f.once(t)
		reason := "read inventory: regions/ap-northeast-2.yaml:9: spec.cluster.secretRef: Meridian has no access to a management cluster to read Secret meridian-system/kubeconfigs from; give it one (management in the configuration file, docs/regions.md)"
		want := "revision " + rev[:12] + ": ap-northeast-2: " + reason + "; wave main is not healthy, so revision " + rev[:12] + " does not go on to later waves"
		if diff := cmp.Diff(want, errString(err)); diff != "" {
			t.Errorf("error (-want +got):\n%s", diff)
		}
		if report == nil {
			t.Fatal("no pass")
		}
		wantChanges := every(map[string][]string{"eu-west-2": units["eu-west-2"], "us-east-1": units["us-east-1"]}, "unchanged", nil)
		wantChanges["ap-northeast-2"] = map[string]string{}
		if diff := cmp.Diff(wantChanges, changes(report)); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}
	})

	t.Run("removing a tenant is held until a commit allows it", func(t *testing.T) {
		before := f.inventories(t)
		held := f.push(t, "remove charging-stations-ca", map[string]string{
			"regions/ap-northeast-2.yaml":                    file(t, "regions/ap-northeast-2.yaml"),
			"tenants/charging-stations-ca.yaml":              "",
			"tenants/charging-stations-ca.secrets.sops.yaml": "",
		})
		report, err := f.once(t)
		want := "revision " + held[:12] + ": us-east-1: deletions held: the revision deletes tenant namespace charging-stations-ca/us-east-1; to let this revision through, end its commit message with the trailer \"Meridian-Allow-Mass-Deletion: true\""
		if diff := cmp.Diff(want, errString(err)); diff != "" {
			t.Errorf("error (-want +got):\n%s", diff)
		}
		if report == nil {
			t.Fatal("no pass")
		}
		if diff := cmp.Diff(before, f.inventories(t)); diff != "" {
			t.Errorf("inventories after the held pass (-want +got):\n%s", diff)
		}
		f.checkLive(t, before, held)

		if _, err := f.work.Commit(t.Context(), "allow removing charging-stations-ca\n\nMeridian-Allow-Mass-Deletion: true"); err != nil {
			t.Fatal(err)
		}
		if err := f.work.Push(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := f.once(t); err != nil {
			t.Fatal(err)
		}
		after := f.inventories(t)
		for _, unit := range []string{"charging-stations-ca/us-east-1", "charging-stations-ca/us-east-1/portal", "charging-stations-ca/us-east-1/worker"} {
			delete(before["us-east-1"], unit)
		}
		if diff := cmp.Diff(before, after); diff != "" {
			t.Errorf("inventories after the allowed pass (-want +got):\n%s", diff)
		}
		d, err := kubernetes.NewForConfigOrDie(f.tb.Region("us-east-1").Config).AppsV1().Deployments("charging-stations-ca").List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, dep := range d.Items {
			if dep.DeletionTimestamp == nil {
				t.Errorf("Deployment/charging-stations-ca/%s is still in us-east-1", dep.Name)
			}
		}
		f.checkLive(t, after, "")
	})

	t.Run("an unreachable region catches up when it returns", func(t *testing.T) {
		region := f.tb.Region("ap-northeast-2")
		proxy := newSwitch(t, strings.TrimPrefix(region.Server, "https://"))
		kubeconfig, err := clientcmd.LoadFromFile(f.tb.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		kubeconfig.Clusters[kubeconfig.Contexts["ap-northeast-2"].Cluster].Server = "https://" + proxy.addr()
		opts := f.options()
		opts.Kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
		if err := clientcmd.WriteToFile(*kubeconfig, opts.Kubeconfig); err != nil {
			t.Fatal(err)
		}
		opts.RetryMin, opts.RetryMax = 200*time.Millisecond, time.Second
		reports := make(chan *reconciler.Report, 100)
		opts.Passed = func(r *reconciler.Report) { reports <- r }
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}()

		rev := f.push(t, "trucking: three portal replicas in ap-northeast-2", map[string]string{"tenants/trucking.yaml": replace(t, trucking, "          replicas: 1\n", "          replicas: 3\n")})
		go func() { done <- reconciler.Run(ctx, opts) }()
		next := func(t *testing.T) *reconciler.Report {
			t.Helper()
			select {
			case r := <-reports:
				return r
			case <-time.After(2*healthTimeout + time.Minute): // a pass may itself wait healthTimeout
				t.Fatalf("no pass within %v", 2*healthTimeout+time.Minute)
			}
			return nil
		}
		down := next(t)
		if down.Revision != rev {
			t.Fatalf("pass on %s, want %s", down.Revision, rev)
		}
		if rr := down.Regions["ap-northeast-2"]; rr == nil || rr.Problem() == nil {
			t.Fatalf("ap-northeast-2 converged through a closed proxy: %+v", rr)
		}
		for _, name := range []string{"eu-west-2", "us-east-1"} {
			if rr := down.Regions[name]; rr.Problem() != nil || len(rr.Unhealthy()) > 0 {
				t.Errorf("%s did not converge while ap-northeast-2 was unreachable: %v %v", name, rr.Problem(), rr.Unhealthy())
			}
		}

		proxy.up()
		var last *reconciler.Report
		for last = next(t); last.Err() != nil; last = next(t) {
		}
		want := map[string]string{
			"addon:ap-northeast-2/platform": "unchanged",
			"trucking/ap-northeast-2":       "unchanged", "trucking/ap-northeast-2/api": "unchanged",
			"trucking/ap-northeast-2/portal": "update", "trucking/ap-northeast-2/worker": "unchanged",
		}
		if diff := cmp.Diff(want, changes(last)["ap-northeast-2"]); diff != "" {
			t.Errorf("ap-northeast-2 changes after it returned (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff("trucking/portal: replicas=3 ready=3 available=True", available(f.deployment(t, "ap-northeast-2", "trucking", "portal"))); diff != "" {
			t.Errorf("ap-northeast-2 (-want +got):\n%s", diff)
		}
	})

	t.Run("a canary wave that fails keeps the revision from the later waves", func(t *testing.T) {
		before := f.inventories(t)
		served := replace(t, trucking, "          replicas: 1\n", "          replicas: 3\n")
		// Two portal replicas everywhere but ap-northeast-2, and a value the API server
		// refuses in eu-west-2, the canary.
		twoReplicas := replace(t, served, "      values:\n        replicas: 3\n", "      values:\n        replicas: 2\n")
		broken := replace(t, twoReplicas, "          replicas: 3\n", "          replicas: 3\n        eu-west-2:\n          replicas: -1\n")
		rev := f.push(t, "trucking: two portal replicas, and a typo in eu-west-2", map[string]string{"tenants/trucking.yaml": broken})
		report, err := f.once(t)
		if err == nil || !strings.HasSuffix(err.Error(), "; wave canary is not healthy, so revision "+rev[:12]+" does not go on to later waves") {
			t.Errorf("error = %v, want it to end with the stopped rollout", err)
		}
		if report == nil {
			t.Fatal("no pass")
		}
		var waves []string
		for _, w := range report.Waves {
			waves = append(waves, fmt.Sprintf("%s %v healthy=%t skipped=%t", w.Name, w.Regions, w.Healthy, w.Skipped))
		}
		wantWaves := []string{"canary [eu-west-2] healthy=false skipped=false", "main [us-east-1 ap-northeast-2] healthy=false skipped=true"}
		if diff := cmp.Diff(wantWaves, waves); diff != "" {
			t.Errorf("waves (-want +got):\n%s", diff)
		}
		if rr := report.Regions["eu-west-2"]; rr == nil || rr.Problem() == nil || !strings.Contains(rr.Problem().Error(), "trucking/eu-west-2/portal: Deployment/trucking/portal") {
			t.Errorf("eu-west-2 does not name the refused Deployment: %+v", rr)
		}
		for _, region := range []string{"us-east-1", "ap-northeast-2"} {
			if _, ok := report.Regions[region]; ok {
				t.Errorf("%s was visited by a revision its wave should not reach", region)
			}
		}
		if diff := cmp.Diff(before, f.inventories(t)); diff != "" {
			t.Errorf("inventories (-want +got):\n%s", diff)
		}
		if got := *f.deployment(t, "us-east-1", "trucking", "portal").Spec.Replicas; got != 3 {
			t.Errorf("us-east-1: trucking/portal has %d replicas; the later wave got the revision", got)
		}

		fixed := f.push(t, "trucking: typo fixed", map[string]string{"tenants/trucking.yaml": twoReplicas})
		report, err = f.once(t)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range report.Waves {
			if !w.Healthy {
				t.Errorf("wave %s is not healthy on %s", w.Name, fixed)
			}
		}
		for _, region := range []string{"us-east-1", "eu-west-2"} {
			if diff := cmp.Diff("trucking/portal: replicas=2 ready=2 available=True", available(f.deployment(t, region, "trucking", "portal"))); diff != "" {
				t.Errorf("%s (-want +got):\n%s", region, diff)
			}
		}
	})

	t.Run("a tenant named like a namespace another team made is refused, adopted only when asked, and released on removal", func(t *testing.T) {
		ctx := t.Context()
		admin, err := client.New(f.tb.Region("eu-west-2").Config, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// The other team's namespace, with a ConfigMap and a Deployment of theirs.
		ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "payments", "labels": map[string]any{"team": "payments"}}}}
		ledger := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "ledger", "namespace": "payments"}, "data": map[string]any{"k": "v"}}}
		dep := f.deployment(t, "eu-west-2", "trucking", "portal").DeepCopy()
		worker := &appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: metav1.ObjectMeta{Name: "settlement", Namespace: "payments", Labels: map[string]string{"app": "settlement"}},
			Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "settlement"}}, Template: dep.Spec.Template},
		}
		worker.Spec.Template.Labels = map[string]string{"app": "settlement"}
		for _, o := range []client.Object{ns, ledger, worker} {
			if err := admin.Create(ctx, o, client.FieldOwner("payments-team")); err != nil {
				t.Fatal(err)
			}
		}
		foreign := []plan.ObjectRef{
			{Version: "v1", Kind: "Namespace", Name: "payments"},
			{Version: "v1", Kind: "ConfigMap", Namespace: "payments", Name: "ledger"},
			{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "payments", Name: "settlement"},
		}
		labels := map[string]map[string]string{}
		for _, r := range foreign {
			labels[r.String()] = live(t, f.tb.Region("eu-west-2").Config, r).GetLabels()
		}
		// untouched checks that the other team's objects are as they made them.
		untouched := func(t *testing.T) {
			t.Helper()
			for _, r := range foreign {
				u := live(t, f.tb.Region("eu-west-2").Config, r)
				if u == nil || u.GetDeletionTimestamp() != nil {
					t.Errorf("%s is gone or going", r)
					continue
				}
				if diff := cmp.Diff(labels[r.String()], u.GetLabels()); diff != "" {
					t.Errorf("%s labels (-want +got):\n%s", r, diff)
				}
				for _, m := range u.GetManagedFields() {
					if m.Manager == apply.FieldManager {
						t.Errorf("%s holds fields of Meridian's", r)
					}
				}
			}
		}

		// plan shows, before merge, what applying would refuse or adopt.
		planText := func(t *testing.T) (string, error) {
			t.Helper()
			p, text := f.plan(t)
			return text, p.Err()
		}

		tenant := "apiVersion: meridian.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: payments\nspec:\n  regions: [eu-west-2]\n  apps:\n    - name: api\n"
		f.push(t, "payments", map[string]string{"tenants/payments.yaml": tenant})
		text, err := planText(t)
		if want := "payments/eu-west-2: refused: Namespace/payments (field managers: payments-team): it exists and Meridian did not create it"; err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(text, want) {
			t.Errorf("plan's error %v and text:\n%s\nwant the refusal %q", err, text, want)
		}
		report, err := f.once(t)
		if err == nil || report == nil {
			t.Fatalf("pass: %v; want the payments tenant refused", err)
		}
		rr := report.Regions["eu-west-2"]
		var refused *apply.RefusedError
		if err := rr.Units[mustUnit("payments/eu-west-2")].Err; !errors.As(err, &refused) || refused.Objects[0].Object.String() != "Namespace/payments" {
			t.Errorf("payments/eu-west-2: %v; want the Namespace refused", err)
		}
		var nsFailed *reconciler.NamespaceFailedError
		if err := rr.Units[mustUnit("payments/eu-west-2/api")].Err; !errors.As(err, &nsFailed) {
			t.Errorf("payments/eu-west-2/api: %v; want it not applied for its namespace", err)
		}
		untouched(t)
		if _, ok := f.inventories(t)["eu-west-2"]["payments/eu-west-2"]; ok {
			t.Errorf("the refused unit has an inventory")
		}

		f.push(t, "payments adopts its namespace", map[string]string{"tenants/payments.yaml": replace(t, tenant, "  regions: [eu-west-2]\n", "  regions: [eu-west-2]\n  adoptExisting: true\n")})
		text, err = planText(t)
		if want := "  create    payments/eu-west-2\n      Namespace/payments: adopt (it exists and Meridian did not create it)\n"; err != nil || !strings.Contains(text, want) {
			t.Errorf("plan's error %v and text:\n%s\nwant the adoption %q", err, text, want)
		}
		if _, err := f.once(t); err != nil {
			t.Fatal(err)
		}
		inv := f.inventories(t)["eu-west-2"]["payments/eu-west-2"]
		if diff := cmp.Diff(foreign[:1], inv.Adopted); diff != "" {
			t.Errorf("adopted (-want +got):\n%s", diff)
		}
		if got := live(t, f.tb.Region("eu-west-2").Config, foreign[0]).GetLabels()[render.LabelTenant]; got != "payments" {
			t.Errorf("the adopted namespace's tenant label is %q", got)
		}

		f.push(t, "remove payments\n\n"+reconciler.AllowMassDeletionTrailer+": true", map[string]string{"tenants/payments.yaml": ""})
		if _, err := f.once(t); err != nil {
			t.Fatal(err)
		}
		untouched(t)
		for unit := range f.inventories(t)["eu-west-2"] {
			if strings.HasPrefix(unit, "payments/") {
				t.Errorf("%s still has an inventory", unit)
			}
		}
		if api := live(t, f.tb.Region("eu-west-2").Config, plan.ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "payments", Name: "api"}); api != nil && api.GetDeletionTimestamp() == nil {
			t.Errorf("Deployment/payments/api, which Meridian created, is still there")
		}
	})

	t.Run("a prune the API server refuses for good leaves later revisions rolling out", func(t *testing.T) {
		ctx := t.Context()
		admin, err := client.New(f.tb.Region("eu-west-2").Config, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// The platform protects trucking's worker Deployment from deletion in the
		// canary region.
		policy := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
			"metadata": map[string]any{"name": "protect-worker"},
			"spec": map[string]any{
				"failurePolicy": "Fail",
				"matchConstraints": map[string]any{"resourceRules": []any{map[string]any{
					"apiGroups": []any{"apps"}, "apiVersions": []any{"v1"}, "operations": []any{"DELETE"}, "resources": []any{"deployments"},
				}}},
				"validations": []any{map[string]any{"expression": "!(oldObject.metadata.namespace == 'trucking' && oldObject.metadata.name == 'worker')", "message": "trucking's worker is protected", "reason": "Forbidden"}},
			},
		}}
		binding := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
			"metadata": map[string]any{"name": "protect-worker"},
			"spec":     map[string]any{"policyName": "protect-worker", "validationActions": []any{"Deny"}},
		}}
		for _, o := range []client.Object{policy, binding} {
			if err := admin.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		// Policies take effect once the API server has loaded them; a dry-run
		// deletion of a Deployment that exists goes through admission.
		probe := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: "trucking"}}
		for {
			err := admin.Delete(ctx, probe, client.DryRunAll)
			if apierrors.IsForbidden(err) {
				break
			}
			if err != nil || ctx.Err() != nil {
				t.Fatalf("waiting for the policy to take effect: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}

		trucking := file(t, "tenants/trucking.yaml")
		withoutWorker := trucking[:strings.Index(trucking, "    - name: worker\n")]
		f.push(t, "trucking: no worker\n\n"+reconciler.AllowMassDeletionTrailer+": true", map[string]string{"tenants/trucking.yaml": withoutWorker})
		report, err := f.once(t)
		if err == nil || report == nil {
			t.Fatalf("pass: %v; want the refused prune reported", err)
		}
		if report.Stopped != "" {
			t.Errorf("the revision stopped: %s", report.Stopped)
		}
		workerUnit := mustUnit("trucking/eu-west-2/worker")
		var ue *reconciler.UnitError
		if err := report.Regions["eu-west-2"].Units[workerUnit].Err; !errors.As(err, &ue) || ue.Step != reconciler.StepPrune || !strings.Contains(err.Error(), "trucking's worker is protected") {
			t.Errorf("%s: %v; want its prune refused with the policy's reason", workerUnit, err)
		}
		// The later wave removed the worker.
		for _, region := range []string{"us-east-1", "ap-northeast-2"} {
			if _, ok := f.inventories(t)[region]["trucking/"+region+"/worker"]; ok {
				t.Errorf("%s: the worker was not pruned", region)
			}
		}

		// A later revision still reaches the later waves.
		f.push(t, "trucking: four portal replicas", map[string]string{"tenants/trucking.yaml": replace(t, withoutWorker, "      values:\n        replicas: 3\n", "      values:\n        replicas: 4\n")})
		report, err = f.once(t)
		if err == nil || report == nil || report.Stopped != "" {
			t.Fatalf("pass: %v; want only the refused prune reported", err)
		}
		for _, region := range []string{"us-east-1", "eu-west-2"} {
			if got := *f.deployment(t, region, "trucking", "portal").Spec.Replicas; got != 4 {
				t.Errorf("%s: trucking/portal has %d replicas, want the later revision's 4", region, got)
			}
		}

		// Lifted, the prune goes through on the next pass.
		if err := admin.Delete(ctx, binding); err != nil {
			t.Fatal(err)
		}
		for {
			err := admin.Delete(ctx, probe, client.DryRunAll)
			if err == nil {
				break
			}
			if !apierrors.IsForbidden(err) || ctx.Err() != nil {
				t.Fatalf("the policy's binding is deleted, yet: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if _, err := f.once(t); err != nil {
			t.Fatal(err)
		}
		if _, ok := f.inventories(t)["eu-west-2"][workerUnit.String()]; ok {
			t.Errorf("%s still has an inventory", workerUnit)
		}
	})
}

// tcpSwitch forwards TCP connections to a target while it is up, and refuses them
// (closing them at once) while it is down, as a server that stops answering.
type tcpSwitch struct {
	l      net.Listener
	target string
	isUp   atomic.Bool

	mu    sync.Mutex
	conns map[net.Conn]bool // open connections, closed by down
}

// newSwitch starts a switch that is down.
func newSwitch(t *testing.T, target string) *tcpSwitch {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpSwitch{l: l, target: target, conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if !s.isUp.Load() {
				c.Close()
				continue
			}
			go s.forward(c)
		}
	})
	return s
}

func (s *tcpSwitch) addr() string { return s.l.Addr().String() }
func (s *tcpSwitch) up()          { s.isUp.Store(true) }

// down refuses new connections and cuts the open ones.
func (s *tcpSwitch) down() {
	s.isUp.Store(false)
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

func (s *tcpSwitch) forward(c net.Conn) {
	defer c.Close()
	u, err := net.Dial("tcp", s.target)
	if err != nil {
		return
	}
	defer u.Close()
	s.mu.Lock()
	s.conns[c], s.conns[u] = true, true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		delete(s.conns, u)
		s.mu.Unlock()
	}()
	go func() { _, _ = io.Copy(u, c); u.Close() }()
	_, _ = io.Copy(c, u)
}

func TestAllowsMassDeletion(t *testing.T) {
	tests := []struct {
		name string
		body string
		want bool
	}{
		{name: "trailer alone", body: "Meridian-Allow-Mass-Deletion: true", want: true},
		{name: "trailer after the explanation", body: "The tenant moved to its own fleet.\n\nSigned-off-by: A <a@example.com>\nMeridian-Allow-Mass-Deletion: true", want: true},
		{name: "key in another case", body: "meridian-allow-mass-deletion: true", want: true},
		{name: "no message body", body: ""},
		{name: "value other than true", body: "Meridian-Allow-Mass-Deletion: yes"},
		{name: "false", body: "Meridian-Allow-Mass-Deletion: false"},
		{name: "not in the last paragraph", body: "Meridian-Allow-Mass-Deletion: true\n\nThe tenant moved."},
		{name: "mentioned in prose", body: "This does not set Meridian-Allow-Mass-Deletion: true on purpose."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := reconciler.AllowsMassDeletion(sources.Commit{Subject: "Remove a tenant", Body: tt.body})
			if got != tt.want {
				t.Errorf("AllowsMassDeletion(%q) = %v, want %v", tt.body, got, tt.want)
			}
		})
	}
}

// realCluster is the write side of a region as the daemon builds it by default.
func realCluster(cfg *rest.Config) (reconciler.Cluster, error) {
	store, err := inventory.NewStore(cfg)
	if err != nil {
		return nil, err
	}
	a, err := apply.New(cfg, apply.Options{Inventory: store})
	if err != nil {
		return nil, err
	}
	return a.Region(), nil
}

// signalling is a region that signals when it starts to apply one unit.
type signalling struct {
	reconciler.Cluster
	unit     string
	applying chan<- string
}

func (s signalling) Apply(ctx context.Context, unit *render.Unit, prev *plan.Inventory) error {
	if unit.ID().String() == s.unit {
		select {
		case s.applying <- unit.ID().String():
		default:
		}
	}
	return s.Cluster.Apply(ctx, unit, prev)
}

// scale sets a Deployment's replicas as another field manager would, as a person
// running kubectl edit does.
func (f *fixture) scale(t *testing.T, region, namespace, name string, replicas int32) {
	t.Helper()
	d := f.deployment(t, region, namespace, name)
	d.Spec.Replicas = &replicas
	if _, err := kubernetes.NewForConfigOrDie(f.tb.Region(region).Config).AppsV1().Deployments(namespace).Update(t.Context(), d, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatalf("%s: %v", region, err)
	}
}

// driftSummary summarises a drift report: region → "corrected|reported unit:
// drift; drift", one unit per region (the only shape the tests need).
func driftSummary(r *reconciler.DriftReport) map[string]string {
	out := map[string]string{}
	for region, rd := range r.Regions {
		var parts []string
		for _, unit := range slices.SortedFunc(maps.Keys(rd.Drifted), fleet.UnitID.Compare) {
			verb := "corrected"
			if slices.Contains(rd.Reported, unit) {
				verb = "reported"
			} else if !slices.Contains(rd.Corrected, unit) {
				verb = "left"
			}
			var ds []string
			for _, d := range rd.Drifted[unit] {
				ds = append(ds, d.String())
			}
			parts = append(parts, verb+" "+unit.String()+": "+strings.Join(ds, "; "))
		}
		if len(parts) > 0 {
			out[region] = strings.Join(parts, " | ")
		}
	}
	return out
}

// logged returns the "error" of the daemon's log lines with message msg about
// revision.
func (f *fixture) logged(t *testing.T, msg, revision string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
		var entry struct{ Msg, Revision, Error string }
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if entry.Msg == msg && entry.Revision == revision {
			out = append(out, entry.Error)
		}
	}
	return out
}

// logBuffer collects a logger's JSON lines.
type logBuffer struct{ syncbuf.Buffer }

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// errString returns an error's message, or "" for nil.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
