package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
)

// DefaultSelector selects the objects Meridian applied: render labels every object
// of every unit with it.
const DefaultSelector = render.LabelManagedBy + "=" + render.ManagedByMeridian

// DefaultSyncTimeout bounds how long Get waits for a kind's first list. It is
// short: a kind whose first list is slow is read from the API server meanwhile,
// and the wait must not eat the time its caller has for that read.
const DefaultSyncTimeout = 2 * time.Second

// ErrStopped is the cause of an *UnavailableError once the Cache was stopped.
var ErrStopped = errors.New("the region's watches are stopped")

// UnavailableError says the cache cannot answer for a kind: its watch has not
// synced yet, failed, or was stopped. The caller reads the API server instead; it
// never takes the absence of an answer for health.
type UnavailableError struct {
	// Kind is the kind asked about, as Group/Version, Kind=… in client-go's form.
	Kind schema.GroupVersionKind
	// Err is why.
	Err error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("watch of %s: %v", e.Kind.Kind, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// Options configure a Cache.
type Options struct {
	// Selector restricts every watch; empty means DefaultSelector.
	Selector string
	// SyncTimeout bounds the wait for a kind's first list; zero means
	// DefaultSyncTimeout.
	SyncTimeout time.Duration
	// Logger receives watch failures; nil discards.
	Logger *slog.Logger
}

// Cache holds one region's objects that Meridian applied, one informer per kind,
// each as an *Object (see Trim). It is safe for concurrent use.
type Cache struct {
	opts   Options
	conn   Connection
	dyn    dynamic.Interface
	mapper meta.RESTMapper
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	kinds    map[schema.GroupVersionKind]*kind
	waiters  map[Key]map[*waiter]struct{}
	handlers []func(plan.ObjectRef)
	stopped  bool
}

// Key identifies an object whatever version it is read at.
type Key struct {
	Group, Kind, Namespace, Name string
}

// KeyOf returns the Key of an object's reference.
func KeyOf(r plan.ObjectRef) Key { return Key{r.Group, r.Kind, r.Namespace, r.Name} }

// Seen reports whether an object read at resourceVersion have includes the write
// that returned want: have is at least want, or, where the two cannot be
// compared, equal to it.
func Seen(have, want string) bool {
	c, err := resourceversion.CompareResourceVersion(have, want)
	if err != nil {
		return have == want
	}
	return c >= 0
}

// kind is one informer.
type kind struct {
	gvk      schema.GroupVersionKind
	informer cache.SharedIndexInformer
	synced   chan struct{}
	// failedOnce is closed at the first failure, so that a wait for the first
	// list ends then rather than at Options.SyncTimeout.
	failedOnce chan struct{}
	closeOnce  sync.Once

	// failed is the last watch error, until the informer lists again.
	failed WatchFailure
}

// waiter is one Changed call: done is closed at the first change of any of its
// objects.
type waiter struct {
	done chan struct{}
	once sync.Once
}

func (w *waiter) fire() { w.once.Do(func() { close(w.done) }) }

// New returns a Cache of the cluster cfg points at; mapper maps kinds to
// resources (the applier's). Nothing is watched until a kind is asked about. Stop
// ends every watch.
func New(cfg *rest.Config, mapper meta.RESTMapper, opts Options) (*Cache, error) {
	if opts.Selector == "" {
		opts.Selector = DefaultSelector
	}
	if opts.SyncTimeout <= 0 {
		opts.SyncTimeout = DefaultSyncTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cache{
		opts: opts, mapper: mapper, ctx: ctx, cancel: cancel,
		kinds:   map[schema.GroupVersionKind]*kind{},
		waiters: map[Key]map[*waiter]struct{}{},
	}
	cfg = c.conn.Wrap(cfg, func() {
		c.opts.Logger.Warn("the region's API server does not answer its watches; health is read from it until it does")
		c.wakeAll()
	})
	// A watch is held open for as long as the cache runs: the request timeout of
	// the region's configuration would cut it, and the informer would list again.
	cfg.Timeout = 0
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("live: %w", err)
	}
	c.dyn = dyn
	return c, nil
}

// Stop ends every watch and waits for them to return; waiters are woken, and
// later calls of Get fail with ErrStopped. It may be called more than once.
func (c *Cache) Stop() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.stopped = true
	c.cancel()
	for _, ws := range c.waiters {
		for w := range ws {
			w.fire()
		}
	}
	c.waiters = map[Key]map[*waiter]struct{}{}
	c.mu.Unlock()
	c.wg.Wait()
}

// OnChange registers fn, called with the reference of every object the cache sees
// added, changed or deleted, from the watch's goroutine: fn must return quickly.
func (c *Cache) OnChange(fn func(plan.ObjectRef)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.handlers = append(c.handlers, fn)
}

// Get returns the object ref names as its watch last saw it (trimmed, see Trim),
// or nil when the watch, synced, does not hold it: Lookup's Object, decoded into
// a fresh value that the caller may keep and change. It fails as Lookup does.
func (c *Cache) Get(ctx context.Context, ref plan.ObjectRef) (*unstructured.Unstructured, error) {
	o, err := c.Lookup(ctx, ref)
	if err != nil || o == nil {
		return nil, err
	}
	u, err := o.Unstructured()
	if err != nil {
		return nil, &UnavailableError{Kind: ref.GroupVersionKind(), Err: err}
	}
	return u, nil
}

// Lookup returns the object ref names as its watch holds it, or nil when the
// watch, synced, does not hold it; it decodes nothing, for callers that read only
// what an Object holds apart (its resourceVersion, its AppliedFields). It starts
// the watch of ref's kind if need be and waits for its first list (at most
// Options.SyncTimeout). It fails with an *UnavailableError when the cache cannot
// answer.
func (c *Cache) Lookup(ctx context.Context, ref plan.ObjectRef) (*Object, error) {
	gvk := ref.GroupVersionKind()
	k, err := c.kindOf(gvk)
	if err != nil {
		return nil, &UnavailableError{Kind: gvk, Err: err}
	}
	if err := c.waitSynced(ctx, k); err != nil {
		return nil, &UnavailableError{Kind: gvk, Err: err}
	}
	if err := k.failure(); err != nil {
		return nil, &UnavailableError{Kind: gvk, Err: err}
	}
	if err := c.conn.Err(); err != nil {
		return nil, &UnavailableError{Kind: gvk, Err: err}
	}
	obj, ok, err := k.informer.GetStore().GetByKey(cache.NewObjectName(ref.Namespace, ref.Name).String())
	if err != nil {
		return nil, &UnavailableError{Kind: gvk, Err: err}
	}
	if !ok {
		return nil, nil
	}
	o, ok := obj.(*Object)
	if !ok {
		return nil, &UnavailableError{Kind: gvk, Err: fmt.Errorf("unexpected %T in the cache", obj)}
	}
	return o, nil
}

// Changed returns a channel closed at the next change the cache sees of any of
// refs, or when a watch fails or the cache stops; cancel forgets it. Call it before
// reading, so that no change between the read and the wait is missed.
func (c *Cache) Changed(refs []plan.ObjectRef) (changed <-chan struct{}, cancel func()) {
	w := &waiter{done: make(chan struct{})}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		w.fire()
		return w.done, func() {}
	}
	keys := make([]Key, len(refs))
	for i, r := range refs {
		keys[i] = KeyOf(r)
		ws := c.waiters[keys[i]]
		if ws == nil {
			ws = map[*waiter]struct{}{}
			c.waiters[keys[i]] = ws
		}
		ws[w] = struct{}{}
	}
	return w.done, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, k := range keys {
			if ws := c.waiters[k]; ws != nil {
				delete(ws, w)
				if len(ws) == 0 {
					delete(c.waiters, k)
				}
			}
		}
	}
}

// kindOf returns the informer of gvk, started if need be. The kind is mapped to
// its resource outside the lock: a mapper that asks the API server (a kind it
// has not seen) must not hold up every other Get and every watch event.
func (c *Cache) kindOf(gvk schema.GroupVersionKind) (*kind, error) {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil, ErrStopped
	}
	if k, ok := c.kinds[gvk]; ok {
		c.mu.Unlock()
		return k, nil
	}
	c.mu.Unlock()
	mapping, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		// Not remembered: the kind may be defined by a CRD still to be applied.
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil, ErrStopped
	}
	if k, ok := c.kinds[gvk]; ok {
		return k, nil // started by another Get meanwhile
	}
	selector := c.opts.Selector
	inf := dynamicinformer.NewFilteredDynamicInformer(c.dyn, mapping.Resource, metav1.NamespaceAll, 0, cache.Indexers{},
		func(o *metav1.ListOptions) { o.LabelSelector = selector }).Informer()
	k := &kind{gvk: gvk, informer: inf, synced: make(chan struct{}), failedOnce: make(chan struct{})}
	if err := inf.SetTransform(Trim); err != nil {
		return nil, err
	}
	if err := inf.SetWatchErrorHandlerWithContext(func(_ context.Context, r *cache.Reflector, err error) {
		k.fail(err)
		c.opts.Logger.Warn("watch failed; health of this kind is read from the API server until it recovers", "kind", gvk.Kind, "group", gvk.Group, "error", err)
		c.wakeAll()
	}); err != nil {
		return nil, err
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		// An event does not end a failure: the informer hands out events it
		// queued before the failure. failure ends it once the reflector
		// listed or watched past it.
		AddFunc:    func(obj any) { c.changed(gvk, obj) },
		UpdateFunc: func(_, obj any) { c.changed(gvk, obj) },
		DeleteFunc: func(obj any) { c.changed(gvk, obj) },
	}); err != nil {
		return nil, err
	}
	c.kinds[gvk] = k
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		inf.RunWithContext(c.ctx)
	}()
	go func() {
		defer c.wg.Done()
		if cache.WaitForCacheSync(c.ctx.Done(), inf.HasSynced) {
			close(k.synced)
		}
	}()
	return k, nil
}

// waitSynced waits for k's first list. A kind whose watch failed before it
// listed answers at once with the failure.
func (c *Cache) waitSynced(ctx context.Context, k *kind) error {
	select {
	case <-k.synced:
		return nil
	default:
	}
	if err := k.failure(); err != nil {
		return err
	}
	t := time.NewTimer(c.opts.SyncTimeout)
	defer t.Stop()
	select {
	case <-k.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrStopped
	case <-k.failedOnce:
		if err := k.failure(); err != nil {
			return err
		}
		return errors.New("its watch failed before it listed")
	case <-t.C:
		if err := k.failure(); err != nil {
			return err
		}
		return fmt.Errorf("not synced after %s", c.opts.SyncTimeout)
	}
}

// changed wakes the waiters of an object and tells the handlers.
func (c *Cache) changed(gvk schema.GroupVersionKind, obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	ref := plan.ObjectRef{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: m.GetNamespace(), Name: m.GetName()}
	c.mu.Lock()
	ws := c.waiters[KeyOf(ref)]
	delete(c.waiters, KeyOf(ref))
	handlers := c.handlers
	c.mu.Unlock()
	for w := range ws {
		w.fire()
	}
	for _, fn := range handlers {
		fn(ref)
	}
}

// wakeAll wakes every waiter: a watch failed, and they read the API server now.
func (c *Cache) wakeAll() {
	c.mu.Lock()
	all := c.waiters
	c.waiters = map[Key]map[*waiter]struct{}{}
	c.mu.Unlock()
	for _, ws := range all {
		for w := range ws {
			w.fire()
		}
	}
}

func (k *kind) fail(err error) {
	k.failed.Set(k.informer, err)
	k.closeOnce.Do(func() { close(k.failedOnce) })
}

// failure returns the watch's failure, unless the reflector listed or watched
// since (see WatchFailure).
func (k *kind) failure() error { return k.failed.Err(k.informer) }
