package live_test

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/reconciler/live"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
)

func newCache(t *testing.T, cfg *rest.Config, opts live.Options) *live.Cache {
	t.Helper()
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		t.Fatal(err)
	}
	c, err := live.New(cfg, mapper, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// TestCache checks the cache on a real API server: it holds Meridian's objects
// (trimmed), never another owner's, gives each Get a copy of its own, wakes a waiter at a change, and answers
// nothing it cannot know — a kind it may not list, after Stop.
func TestCache(t *testing.T) {
	tb := testbed.New(t, testbed.Options{Regions: 1})
	ctx := t.Context()
	cfg := tb.Regions[0].Config
	cs := kubernetes.NewForConfigOrDie(cfg)
	ns := "default"
	mine := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: ns, Labels: map[string]string{render.LabelManagedBy: render.ManagedByMeridian}},
		Data:       map[string]string{"k": "v"},
	}
	theirs := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "theirs", Namespace: ns}, Data: map[string]string{"k": "v"}}
	for _, cm := range []*corev1.ConfigMap{mine, theirs} {
		if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ref := func(name string) plan.ObjectRef {
		return plan.ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: ns, Name: name}
	}

	c := newCache(t, cfg, live.Options{})
	got, err := c.Get(ctx, ref("mine"))
	if err != nil || got == nil {
		t.Fatalf("Get(mine) = %v, %v; want the object", got, err)
	}
	if _, ok := got.Object["data"]; ok {
		t.Error("the cache holds a ConfigMap's data")
	}
	// Lookup reads the same copy without decoding it; each Get is the caller's.
	if o, err := c.Lookup(ctx, ref("mine")); err != nil || o == nil || o.ResourceVersion() != got.GetResourceVersion() {
		t.Errorf("Lookup(mine) = %v, %v; want the object at resourceVersion %s", o, err, got.GetResourceVersion())
	}
	got.SetLabels(nil)
	if again, err := c.Get(ctx, ref("mine")); err != nil || again.GetLabels()[render.LabelManagedBy] != render.ManagedByMeridian {
		t.Errorf("Get(mine) after its caller changed the last one: %v, %v; want the watched object as it is", again, err)
	}
	if got, err := c.Get(ctx, ref("theirs")); err != nil || got != nil {
		t.Errorf("Get(theirs) = %v, %v; want nothing: not Meridian's", got, err)
	}

	changed, cancel := c.Changed([]plan.ObjectRef{ref("mine")})
	defer cancel()
	mine.Data["k"] = "w"
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, mine, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-ctx.Done():
		t.Fatal("no change seen")
	}
	if got, err := c.Get(ctx, ref("mine")); err != nil || got.GetResourceVersion() == "" {
		t.Fatalf("Get after the change: %v, %v", got, err)
	}

	// A user who may list nothing: the kind's watch fails, and Get says so as
	// soon as it did, rather than at the sync timeout.
	nobody := rest.CopyConfig(cfg)
	nobody.Impersonate = rest.ImpersonationConfig{UserName: "nobody"}
	forbidden := newCache(t, nobody, live.Options{SyncTimeout: time.Hour})
	fctx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	_, err = forbidden.Get(fctx, ref("mine"))
	var unavailable *live.UnavailableError
	if !errors.As(err, &unavailable) || errors.Is(err, context.DeadlineExceeded) || !apierrors.IsForbidden(err) {
		t.Errorf("Get as a user who may not list: %v; want an *UnavailableError, forbidden", err)
	}

	c.Stop()
	if _, err := c.Get(ctx, ref("mine")); !errors.Is(err, live.ErrStopped) {
		t.Errorf("Get after Stop: %v; want ErrStopped", err)
	}
	if ch, _ := c.Changed([]plan.ObjectRef{ref("mine")}); ch == nil {
		t.Error("Changed after Stop returned no channel")
	} else {
		select {
		case <-ch:
		default:
			t.Error("Changed after Stop does not wake at once")
		}
	}
}
