package apply

import (
	"context"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/live"
	"meridian.dev/meridian/reconciler/plan"
)

// blockingLive is a region's watches whose reads wait for release: a flush is
// held in the middle of computing a health.
type blockingLive struct {
	reading chan struct{} // told of each read
	release chan struct{}
}

func (l *blockingLive) Get(context.Context, plan.ObjectRef) (*unstructured.Unstructured, error) {
	l.reading <- struct{}{}
	<-l.release
	return nil, nil // a synced watch without the object: NotFound
}

func (l *blockingLive) Lookup(context.Context, plan.ObjectRef) (*live.Object, error) {
	l.reading <- struct{}{}
	<-l.release
	return nil, nil
}

func (l *blockingLive) Changed([]plan.ObjectRef) (<-chan struct{}, func()) {
	return make(chan struct{}), func() {}
}

func (l *blockingLive) OnChange(func(plan.ObjectRef)) {}

// TestObserverDropsFlushOlderThanWait checks that a health computed between
// passes is not reported when a pass's Wait registered the unit meanwhile: what
// the Wait found is newer, and the flush's would overwrite it. A change seen
// before the Wait is flushed after it all the same.
func TestObserverDropsFlushOlderThanWait(t *testing.T) {
	l := &blockingLive{reading: make(chan struct{}), release: make(chan struct{})}
	var mu sync.Mutex
	var told []Health
	o := newObserver(&Applier{opts: Options{Live: l}}, func(_ fleet.UnitID, h Health) {
		mu.Lock()
		defer mu.Unlock()
		told = append(told, h)
	}, 0)
	t.Cleanup(o.stop)
	id := fleet.UnitID{Tenant: "trucking", Region: "us-east-1", App: "portal"}
	ref := plan.ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "trucking", Name: "portal"}
	refs := []plan.ObjectRef{ref}
	o.waited(id, refs, Health{State: Ready}, nil)

	o.changed(ref)
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		o.flush()
	}()
	<-l.reading // the flush reads the object
	newer := Health{State: Progressing, Reason: "ConfigMap/trucking/portal: InProgress: newer"}
	o.waited(id, refs, newer, nil) // a pass's Wait meanwhile
	close(l.release)
	<-flushed
	mu.Lock()
	if len(told) != 0 {
		t.Errorf("a health computed before the Wait was reported: %v", told)
	}
	mu.Unlock()
	if got := o.last[id]; got != newer.String() {
		t.Errorf("last = %q, want the Wait's %q", got, newer.String())
	}

	// A change seen before a Wait registers the unit again is still flushed.
	o.changed(ref)
	o.waited(id, refs, newer, nil)
	if _, ok := o.dirty[id]; !ok {
		t.Error("a change seen before the Wait was dropped")
	}
}
