package live

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"meridian.dev/meridian/reconciler/plan"
)

// TestChangedNamesObjects checks that a change the informer hands out, an
// Object or the tombstone of one deleted while the watch was down, wakes the
// object's waiters and tells the handlers its reference.
func TestChangedNamesObjects(t *testing.T) {
	out, err := Trim(parse(t, configMapAsServed))
	if err != nil {
		t.Fatal(err)
	}
	gvk := schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	want := plan.ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "trucking", Name: "portal-settings"}
	for _, obj := range []any{out, cache.DeletedFinalStateUnknown{Key: "trucking/portal-settings", Obj: out}} {
		c := &Cache{waiters: map[Key]map[*waiter]struct{}{}}
		var told []plan.ObjectRef
		c.OnChange(func(r plan.ObjectRef) { told = append(told, r) })
		changed, cancel := c.Changed([]plan.ObjectRef{want})
		c.changed(gvk, obj)
		cancel()
		select {
		case <-changed:
		default:
			t.Errorf("%T: the object's waiter was not woken", obj)
		}
		if diff := cmp.Diff([]plan.ObjectRef{want}, told); diff != "" {
			t.Errorf("%T: handlers told (-want +got):\n%s", obj, diff)
		}
	}
}
