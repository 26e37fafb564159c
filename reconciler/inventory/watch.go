package inventory

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"meridian.dev/meridian/reconciler/live"
	"meridian.dev/meridian/reconciler/plan"
)

// catchUp bounds how long List waits for the watch to see the Store's own writes
// before it lists from the API server instead.
const catchUp = 5 * time.Second

// watch is a watch of the inventory ConfigMaps: List reads them from it.
type watch struct {
	informer cache.SharedIndexInformer
	cancel   context.CancelFunc
	done     chan struct{}
	conn     live.Connection

	mu      sync.Mutex
	changed chan struct{} // closed and replaced at every event
	failed  live.WatchFailure
}

// Watch makes List read the inventories from a watch of their ConfigMaps instead
// of listing them at every pass: after the watch's first list, a pass whose units
// all stay as they are makes no request for its inventories. A List waits (a few
// seconds at most) for the watch to see what this Store wrote, and lists from the
// API server when the watch has not synced, fails, or lags behind; so it never
// returns less than the cluster holds because of the watch, nor answers while the
// API server does not answer the watch (live.Connection). Stop ends it.
func (s *Store) Watch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watch != nil {
		return nil
	}
	w := &watch{changed: make(chan struct{}), done: make(chan struct{})}
	cfg := w.conn.Wrap(s.cfg, nil)
	cfg.Timeout = 0 // a watch stays open; the request timeout would cut it
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	inf := informers.NewSharedInformerFactoryWithOptions(cs, 0,
		informers.WithNamespace(Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = LabelInventory }),
	).Core().V1().ConfigMaps().Informer()
	w.informer = inf
	if err := inf.SetTransform(func(obj any) (any, error) {
		if cm, ok := obj.(*corev1.ConfigMap); ok {
			cm.ManagedFields = nil // the inventory's data is all List reads
		}
		return obj, nil
	}); err != nil {
		return err
	}
	if err := inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) { w.fail(err) }); err != nil {
		return err
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.event() },
		UpdateFunc: func(any, any) { w.event() },
		DeleteFunc: func(any) { w.event() },
	}); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go func() {
		defer close(w.done)
		inf.RunWithContext(ctx)
	}()
	s.watch = w
	return nil
}

// Stop ends the watch started by Watch; List then lists from the API server.
func (s *Store) Stop() {
	s.mu.Lock()
	w := s.watch
	s.watch = nil
	s.mu.Unlock()
	if w != nil {
		w.cancel()
		<-w.done
	}
}

// event wakes the Lists waiting for the watch to catch up. It does not end a
// failure: the informer hands out events it queued before the failure; usable
// ends it once the reflector listed or watched past it.
func (w *watch) event() {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *watch) fail(err error) { w.failed.Set(w.informer, err) }

// usable reports whether the watch can answer: synced, and not failing since its
// last list.
func (w *watch) usable() bool {
	return w.failed.Err(w.informer) == nil && w.conn.Err() == nil && w.informer.HasSynced()
}

// fromWatch returns every inventory as the watch holds them, once it holds every
// write this Store made; ok is false when the watch cannot answer.
func (s *Store) fromWatch(ctx context.Context) (out []plan.Inventory, ok bool, err error) {
	s.mu.Lock()
	w := s.watch
	s.mu.Unlock()
	if w == nil || !w.usable() {
		return nil, false, nil
	}
	deadline := time.NewTimer(catchUp)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		changed := w.changed
		w.mu.Unlock()
		if s.caughtUp(w) {
			break
		}
		select {
		case <-changed:
		case <-deadline.C:
			return nil, false, nil
		case <-ctx.Done():
			return nil, false, fmt.Errorf("inventory: list ConfigMaps in namespace %s: waited for their watch: %w", Namespace, ctx.Err())
		}
	}
	var cms []*corev1.ConfigMap
	for _, obj := range w.informer.GetStore().List() {
		if cm, ok := obj.(*corev1.ConfigMap); ok {
			cms = append(cms, cm)
		}
	}
	out, err = s.decodeAll(cms)
	return out, true, err
}

// caughtUp reports whether the watch holds every unit's ConfigMap at least at the
// version this Store last read or wrote, and none it deleted.
func (s *Store) caughtUp(w *watch) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	store := w.informer.GetStore()
	for unit, v := range s.versions {
		if !v.known {
			continue
		}
		obj, exists, err := store.GetByKey(Namespace + "/" + Name(unit))
		if err != nil {
			return false
		}
		if v.resourceVersion == "" {
			if exists {
				return false
			}
			continue
		}
		if !exists {
			return false
		}
		cm, ok := obj.(*corev1.ConfigMap)
		if !ok {
			return false
		}
		if !live.Seen(cm.ResourceVersion, v.resourceVersion) {
			return false
		}
	}
	return true
}
