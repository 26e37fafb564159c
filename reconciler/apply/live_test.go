package apply_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/live"
	"meridian.dev/meridian/reconciler/plan"
)

// The region's watch plugs into the applier as it is.
var _ apply.Live = (*live.Cache)(nil)

// TestWaitWatching checks that Wait and Health read from the region's watches give
// the answers and errors the polling ones give (see TestRegion's health subtest),
// without polling: the objects are read from the API server only right after
// Meridian wrote them, and again once the watches stop.
func TestWaitWatching(t *testing.T) {
	tb := testbed.New(t, testbed.Options{Regions: 1, Workloads: true})
	ctx := t.Context()
	w := &writes{}
	cfg := w.wrap(tb.Regions[0].Config)
	store := newStore(t, cfg)
	objects := watches(t, cfg)
	applier := newApplier(t, cfg, apply.Options{Inventory: store, PollInterval: 500 * time.Millisecond, Live: objects})

	const ns = "watched"
	unschedulable := func(name string, extra map[string]any) *unstructured.Unstructured {
		spec := map[string]any{
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app.kubernetes.io/name": name}},
				"spec": map[string]any{
					"nodeSelector": map[string]any{"meridian.dev/no-such-node": "true"},
					"containers":   []any{map[string]any{"name": "app", "image": "ghcr.io/stefanprodan/podinfo:6.7.0"}},
				},
			},
		}
		for k, v := range extra {
			spec[k] = v
		}
		return deployment(ns, name, 1, spec)
	}
	namespace := object("v1", "Namespace", "", ns, nil)
	ok := configMap(ns, "fine", map[string]any{"k": "v"})
	pending := unschedulable("pending", nil)
	// A namespace unit is applied as Meridian: no tenant needed.
	u := unit(ns, "", namespace, ok, pending)
	if _, err := applier.Apply(ctx, u, nil); err != nil {
		t.Fatal(err)
	}
	refs := refsOf(u)
	deploymentPath := "/apis/apps/v1/namespaces/" + ns + "/deployments/pending"

	w.takeReads()
	h, err := applier.Wait(ctx, refs, 5*time.Second)
	// What kstatus says of the pending Deployment depends on how far its
	// controller got in 5 s on a busy machine (its generation not yet observed,
	// or 0/1 available): only that it is in progress is checked.
	const pendingPrefix = "Deployment/watched/pending: not ready after 5s: InProgress: "
	if got := errString(err); !strings.HasPrefix(got, pendingPrefix) {
		t.Errorf("Wait error %q, want one starting %q", got, pendingPrefix)
	}
	if !apply.IsTransient(err) {
		t.Error("a timeout is permanent; want transient")
	}
	want := apply.Health{State: apply.Progressing, Objects: []apply.ObjectHealth{
		{Object: refs[0], Status: status.CurrentStatus, Message: "Resource is current"},
		{Object: refs[1], Status: status.CurrentStatus, Message: "Resource is always ready"},
		{Object: refs[2], Status: status.InProgressStatus},
	}}
	got := h
	got.Reason = ""
	got.Objects = slices.Clone(h.Objects)
	if len(got.Objects) == 3 {
		got.Objects[2].Message = ""
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("health, the pending Deployment's message aside (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(h.Reason, "Deployment/watched/pending: InProgress: ") {
		t.Errorf("reason %q, want the pending Deployment in progress", h.Reason)
	}
	// Polling read the Deployment at every poll (3 or more in 5 s); the watch
	// answers but right after the write, before it saw it. The other reads are
	// the watches' first lists, one per kind.
	reads := w.takeReads()
	if reads[deploymentPath] > 1 || reads["/api/v1/namespaces/"+ns+"/configmaps/fine"] > 1 {
		t.Errorf("reads during a watched wait: %v; want at most one of each object Meridian just wrote", reads)
	}
	t.Logf("reads during the first watched wait: %v", reads)

	// A second wait, the writes seen: not one request.
	if _, err := applier.Wait(ctx, refs, time.Second); err == nil {
		t.Error("the pending Deployment is Ready")
	}
	if reads := w.takeReads(); len(reads) != 0 {
		t.Errorf("reads during a wait on objects the watch holds: %v; want none", reads)
	}

	stuck := unschedulable("stuck", map[string]any{"progressDeadlineSeconds": int64(1)})
	u2 := unit(ns, "", namespace, ok, pending, stuck)
	prev, err := store.Get(ctx, u.ID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := applier.Apply(ctx, u2, prev); err != nil {
		t.Fatal(err)
	}
	w.takeReads()
	h, err = applier.Wait(ctx, refsOf(u2), time.Minute)
	if diff := cmp.Diff("Deployment/watched/stuck: failed: Failed: Progress deadline exceeded", errString(err)); diff != "" {
		t.Errorf("Wait error (-want +got):\n%s", diff)
	}
	if apply.IsTransient(err) {
		t.Error("a failed Deployment is transient; want permanent")
	}
	if h.State != apply.Failed {
		t.Errorf("health = %s, want Failed", h)
	}
	if reads := w.takeReads(); reads["/apis/apps/v1/namespaces/"+ns+"/deployments/stuck"] > 1 {
		t.Errorf("the stuck Deployment was polled: %v", reads)
	}

	// A new unit in a running region (a new tenant): its kinds' watches run
	// already but have not seen its first apply yet (lagging holds them back), so
	// a wait right after it reads each new object from the API server, never
	// taking it for absent.
	const fresh = "watched-fresh"
	behind := newApplier(t, cfg, apply.Options{Inventory: store, PollInterval: 500 * time.Millisecond, Live: lagging{Cache: objects, namespace: fresh}})
	u3 := unit(fresh, "", object("v1", "Namespace", "", fresh, nil), configMap(fresh, "fine", map[string]any{"k": "v"}))
	if _, err := behind.Apply(ctx, u3, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	h, err = behind.Wait(ctx, refsOf(u3), 30*time.Second)
	if err != nil || h.State != apply.Ready {
		t.Errorf("a new unit right after its first apply: %s, %v; want Ready", h, err)
	}
	t.Logf("waited %s for a new unit after its first apply", time.Since(start).Round(time.Millisecond))
	w.takeReads()

	missing := plan.ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: ns, Name: "never-applied"}
	h, err = applier.Health(ctx, []plan.ObjectRef{refs[1], missing})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.String(), "Failed: ConfigMap/watched/never-applied: NotFound: the object does not exist"; got != want {
		t.Errorf("health = %q, want %q", got, want)
	}
	if reads := w.takeReads(); len(reads) != 0 {
		t.Errorf("an object absent from a synced watch was read: %v", reads)
	}

	// Stopped watches answer nothing: health is read from the API server, with
	// the same answer.
	objects.Stop()
	h, err = applier.Health(ctx, []plan.ObjectRef{refs[1], missing})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.String(), "Failed: ConfigMap/watched/never-applied: NotFound: the object does not exist"; got != want {
		t.Errorf("health without watches = %q, want %q", got, want)
	}
	if reads := w.takeReads(); len(reads) != 2 {
		t.Errorf("reads without watches: %v; want both objects", reads)
	}
}

// lagging is a region's watches that have not seen anything in namespace yet
// (nor the namespace itself): they answer that a synced watch does not hold it.
type lagging struct {
	*live.Cache
	namespace string
}

func (l lagging) Get(ctx context.Context, ref plan.ObjectRef) (*unstructured.Unstructured, error) {
	if ref.Namespace == l.namespace || (ref.Kind == "Namespace" && ref.Name == l.namespace) {
		return nil, nil
	}
	return l.Cache.Get(ctx, ref)
}

func (l lagging) Lookup(ctx context.Context, ref plan.ObjectRef) (*live.Object, error) {
	if ref.Namespace == l.namespace || (ref.Kind == "Namespace" && ref.Name == l.namespace) {
		return nil, nil
	}
	return l.Cache.Lookup(ctx, ref)
}
