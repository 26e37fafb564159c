package apply_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/syncbuf"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/inventory"
	"meridian.dev/meridian/reconciler/live"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/helm"
	"meridian.dev/meridian/render/secrets"
)

// The region's write side plugs into a reconcile pass as it is.
var (
	_ reconciler.Cluster = (*apply.Region)(nil)
	_ apply.Inventory    = (*inventory.Store)(nil)
)

const (
	exampleDir = "../../fleet-example"
	region     = "us-east-1"
	revision   = "0123456789abcdef0123456789abcdef01234567"
)

// renderExample renders fleet-example's units of one region with the demo age key.
func renderExample(t *testing.T) []*render.Unit {
	t.Helper()
	keys, err := secrets.KeysFromFiles(filepath.Join(exampleDir, "demo-age-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return renderFleet(t, exampleDir, secrets.NewDecryptor(keys))
}

// renderFleet renders the units of one region of the fleet in dir.
func renderFleet(t *testing.T, dir string, decryptor *secrets.Decryptor) []*render.Unit {
	t.Helper()
	charts, err := helm.New(helm.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	model, err := fleet.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// One placement at a time: render's decryption memo races when placements of one
	// tenant render in parallel (reported to render's owner).
	r := render.New(render.Options{Helm: charts, Decryptor: decryptor, Parallelism: 1})
	res, err := r.Render(t.Context(), render.Snapshot{Dir: dir, Revision: revision, Model: model}, render.Filter{Region: region})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	return res.Units
}

// object builds an object from its apiVersion, kind, namespace, name and the rest of
// its fields.
func object(apiVersion, kind, namespace, name string, fields map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	for k, v := range fields {
		u.Object[k] = v
	}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

func configMap(namespace, name string, data map[string]any) *unstructured.Unstructured {
	return object("v1", "ConfigMap", namespace, name, map[string]any{"data": data})
}

// deployment is a small Deployment; extra fields are merged into its spec.
func deployment(namespace, name string, replicas int64, extra map[string]any) *unstructured.Unstructured {
	labels := map[string]any{"app.kubernetes.io/name": name}
	spec := map[string]any{
		"replicas": replicas,
		"selector": map[string]any{"matchLabels": labels},
		"template": map[string]any{
			"metadata": map[string]any{"labels": labels},
			"spec": map[string]any{
				"securityContext": map[string]any{"runAsNonRoot": true, "runAsUser": int64(10001)},
				"containers": []any{map[string]any{
					"name":  "app",
					"image": "ghcr.io/stefanprodan/podinfo:6.7.0",
					"securityContext": map[string]any{
						"allowPrivilegeEscalation": false,
						"capabilities":             map[string]any{"drop": []any{"ALL"}},
					},
				}},
			},
		},
	}
	for k, v := range extra {
		spec[k] = v
	}
	return object("apps/v1", "Deployment", namespace, name, map[string]any{"spec": spec})
}

// unit labels objects as render does and wraps them in a unit; app "" makes a
// namespace unit.
func unit(tenant, app string, objects ...*unstructured.Unstructured) *render.Unit {
	u := &render.Unit{Tenant: tenant, Region: region, App: app}
	for _, o := range objects {
		o = o.DeepCopy()
		labels := o.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[render.LabelManagedBy] = render.ManagedByMeridian
		labels[render.LabelTenant] = tenant
		labels[render.LabelRegion] = region
		if app != "" {
			labels[render.LabelApp] = app
		}
		o.SetLabels(labels)
		annotations := o.GetAnnotations()
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[render.AnnotationPlacement] = u.ID().String()
		annotations[render.AnnotationRevision] = revision
		o.SetAnnotations(annotations)
		u.Objects = append(u.Objects, o)
	}
	h := sha256.New()
	for _, o := range u.Objects {
		_ = json.NewEncoder(h).Encode(o.Object)
	}
	u.Digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return u
}

func refsOf(u *render.Unit) []plan.ObjectRef {
	out := make([]plan.ObjectRef, len(u.Objects))
	for i, o := range u.Objects {
		out[i] = plan.RefOf(o)
	}
	return out
}

// writes records the requests that change something in the cluster: every
// POST, PUT, PATCH and DELETE that is not a dry-run; and apart, every GET, and
// every request but watches (a watch held open is not a request a check makes).
type writes struct {
	mu       sync.Mutex
	seen     []string
	reads    []string
	requests []string
	dryRuns  int
}

func (w *writes) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			w.mu.Lock()
			if q := req.URL.Query().Get("watch"); q != "true" && q != "1" {
				w.requests = append(w.requests, req.Method+" "+req.URL.Path)
			}
			switch {
			case req.Method == http.MethodGet:
				w.reads = append(w.reads, req.URL.Path)
			case strings.Contains(req.URL.RawQuery, "dryRun=All"):
				w.dryRuns++
			default:
				w.seen = append(w.seen, req.Method+" "+req.URL.Path)
			}
			w.mu.Unlock()
			return rt.RoundTrip(req)
		})
	})
	return cfg
}

// take returns the writes seen since the last call.
func (w *writes) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.seen
	w.seen = nil
	return out
}

// takeDryRuns returns how many dry runs were made since the last call.
func (w *writes) takeDryRuns() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.dryRuns
	w.dryRuns = 0
	return n
}

// takeRequests returns the requests but watches made since the last call, sorted.
func (w *writes) takeRequests() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.requests
	w.requests = nil
	slices.Sort(out)
	return out
}

// takeReads returns how often each path was read since the last call.
func (w *writes) takeReads() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int{}
	for _, p := range w.reads {
		out[p]++
	}
	w.reads = nil
	return out
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// logBuffer is a logger whose lines, without times, the test reads back.
type logBuffer struct{ syncbuf.Buffer }

func (l *logBuffer) take() string { return l.Take() }

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// watches starts the watches of cfg's region, stopped when t ends. The reads are
// counted by tests: a kind's first list, however slow on a busy machine, is
// waited for (a minute) rather than read around.
func watches(t *testing.T, cfg *rest.Config) *live.Cache {
	t.Helper()
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		t.Fatal(err)
	}
	objects, err := live.New(cfg, mapper, live.Options{SyncTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(objects.Stop)
	return objects
}

// newStore is the inventory store of cfg's region.
func newStore(t *testing.T, cfg *rest.Config) *inventory.Store {
	t.Helper()
	store, err := inventory.NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// newApplier is an applier of cfg's region with opts.
func newApplier(t *testing.T, cfg *rest.Config, opts apply.Options) *apply.Applier {
	t.Helper()
	a, err := apply.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// liveObject reads r from the API server with admin.
func liveObject(t *testing.T, admin client.Client, r plan.ObjectRef) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(r.GroupVersionKind())
	if err := admin.Get(t.Context(), client.ObjectKey{Namespace: r.Namespace, Name: r.Name}, u); err != nil {
		t.Fatalf("%s: %v", r, err)
	}
	return u
}
