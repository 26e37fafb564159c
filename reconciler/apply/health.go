package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"meridian.dev/meridian/reconciler/live"
	"meridian.dev/meridian/reconciler/plan"
)

// State is the health of a unit in a region.
type State string

// The states of a unit.
const (
	// Ready means every object reached its desired state (kstatus Current).
	Ready State = "Ready"
	// Progressing means some object is still on its way (kstatus InProgress,
	// Terminating or Unknown) and none has failed.
	Progressing State = "Progressing"
	// Failed means some object will not get there by itself (kstatus Failed, such as a
	// Deployment past its progress deadline), is missing from the cluster, or is a
	// workload someone scaled to zero that Meridian applies with replicas.
	Failed State = "Failed"
)

// ObjectHealth is the kstatus of one object.
type ObjectHealth struct {
	// Object is the object's reference.
	Object plan.ObjectRef
	// Status is the object's kstatus: Current, InProgress, Failed, Terminating,
	// NotFound or Unknown.
	Status status.Status
	// Message is kstatus's explanation, such as "Deployment does not have minimum
	// availability.".
	Message string
}

// Health is the health of a unit's objects.
type Health struct {
	// State sums up the objects: Failed if any failed or is missing, else
	// Progressing if any is not yet current, else Ready.
	State State
	// Reason names the object that decided State and why, "" when Ready:
	// "Deployment/trucking/web: InProgress: Deployment does not have minimum availability.".
	Reason string
	// Objects are the objects in the order asked for.
	Objects []ObjectHealth
}

// String is the state and its reason, for logs.
func (h Health) String() string {
	if h.Reason == "" {
		return string(h.State)
	}
	return string(h.State) + ": " + h.Reason
}

// culprit returns the object that decided the state, or nil when Ready.
func (h Health) culprit() *ObjectHealth {
	for _, want := range []func(status.Status) bool{
		func(s status.Status) bool { return s == status.FailedStatus || s == status.NotFoundStatus },
		func(s status.Status) bool { return s != status.CurrentStatus },
	} {
		for i := range h.Objects {
			if want(h.Objects[i].Status) {
				return &h.Objects[i]
			}
		}
	}
	return nil
}

// Health reads each object and computes its kstatus, and from them the unit's state.
// With Options.Live, objects are read from the region's watches, and only those
// they cannot answer for (a kind not watched yet or whose watch fails, an object
// Meridian wrote that the watch has not seen since) from the API server, as
// Meridian. A failure to read one is an *Error naming it.
func (a *Applier) Health(ctx context.Context, refs []plan.ObjectRef) (Health, error) {
	h, _, err := a.health(ctx, refs)
	return h, err
}

// health is Health, and whether some object was read from the API server.
func (a *Applier) health(ctx context.Context, refs []plan.ObjectRef) (Health, bool, error) {
	objects := make([]ObjectHealth, len(refs))
	unread := a.fromLive(ctx, refs, objects)
	if err := a.read(ctx, refs, unread, objects); err != nil {
		return Health{}, true, err
	}
	return summarize(objects), len(unread) > 0, nil
}

// fromLive sets objects[i] from Options.Live for every refs[i] it can answer for,
// and returns the indices of the others.
func (a *Applier) fromLive(ctx context.Context, refs []plan.ObjectRef, objects []ObjectHealth) []int {
	var unread []int
	for i, ref := range refs {
		if a.opts.Live == nil {
			unread = append(unread, i)
			continue
		}
		u, err := a.opts.Live.Get(ctx, ref)
		if err != nil || !a.seen(ref, resourceVersion(u)) {
			unread = append(unread, i)
			continue
		}
		objects[i] = a.objectHealth(ref, u)
	}
	return unread
}

// read sets objects[i] for every index i of unread, reading refs[i] from the API
// server.
func (a *Applier) read(ctx context.Context, refs []plan.ObjectRef, unread []int, objects []ObjectHealth) error {
	if len(unread) == 0 {
		return nil
	}
	select {
	case a.reads <- struct{}{}:
		defer func() { <-a.reads }()
	case <-ctx.Done():
		return &Error{Object: refs[unread[0]].String(), Op: "read status failed: waited for other units' reads", Err: ctx.Err(), Transient: true}
	}
	for _, i := range unread {
		ref := refs[i]
		live := stub(ref)
		err := a.admin.Get(ctx, client.ObjectKeyFromObject(live), live)
		switch {
		case apierrors.IsNotFound(err):
			a.forgetWrite(ref)
			objects[i] = a.objectHealth(ref, nil)
		case err != nil:
			return &Error{Object: ref.String(), Op: "read status failed", Err: err, Transient: transient(err)}
		default:
			objects[i] = a.objectHealth(ref, live)
		}
	}
	return nil
}

// objectHealth is the kstatus of ref, whose live object is u (nil: it does not
// exist). A workload Meridian applies with replicas that someone scaled to zero
// is Failed, though kstatus finds it Current (it has all the replicas it now
// asks for): it serves nothing, and will not come back by itself before the next
// drift correction (see scaled).
func (a *Applier) objectHealth(ref plan.ObjectRef, u *unstructured.Unstructured) ObjectHealth {
	oh := ObjectHealth{Object: ref}
	if u == nil {
		oh.Status, oh.Message = status.NotFoundStatus, "the object does not exist"
		return oh
	}
	res, err := status.Compute(u)
	if err != nil {
		oh.Status, oh.Message = status.UnknownStatus, err.Error()
	} else {
		oh.Status, oh.Message = res.Status, res.Message
	}
	if want := a.replicasOf(ref); want > 0 {
		if live, ok := replicas(u); ok && live == 0 {
			oh.Status, oh.Message = status.FailedStatus, fmt.Sprintf("scaled to 0 replicas outside Meridian, which applies %d", want)
		}
	}
	return oh
}

// scaledKinds are the kinds whose spec.replicas objectHealth compares with what
// Meridian applies.
var scaledKinds = map[live.Key]bool{
	{Group: "apps", Kind: "Deployment"}:  true,
	{Group: "apps", Kind: "StatefulSet"}: true,
	{Group: "apps", Kind: "ReplicaSet"}:  true,
}

// expectReplicas remembers the replicas a unit's workloads are applied with, for
// objectHealth; a workload that leaves them to someone else (an autoscaler) sets
// none and is not compared.
func (a *Applier) expectReplicas(objects []*unstructured.Unstructured) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, o := range objects {
		gvk := o.GroupVersionKind()
		if !scaledKinds[live.Key{Group: gvk.Group, Kind: gvk.Kind}] {
			continue
		}
		k := live.KeyOf(plan.RefOf(o))
		if n, ok := replicas(o); ok && n > 0 {
			a.replicas[k] = n
		} else {
			delete(a.replicas, k)
		}
	}
}

// replicasOf returns the replicas Meridian applies ref with, 0 when none.
func (a *Applier) replicasOf(ref plan.ObjectRef) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.replicas[live.KeyOf(ref)]
}

// replicas returns an object's spec.replicas, if it sets it.
func replicas(u *unstructured.Unstructured) (int64, bool) {
	v, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "replicas")
	if !ok {
		return 0, false
	}
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case float64:
		return int64(n), true
	}
	return 0, false
}

// wrote remembers the resourceVersion of an object Meridian just wrote (written)
// and, when the write was a server-side apply of what desiredDigest identifies as
// desired, the fields the apply left Meridian's (applied, for Drift). Any other
// write of Meridian's (a patch) may have changed that entry: it is forgotten.
func (a *Applier) wrote(obj client.Object, desired string) {
	u, ok := obj.(*unstructured.Unstructured)
	if a.opts.Live == nil || !ok || u.GetResourceVersion() == "" {
		return
	}
	var fields string
	if desired != "" {
		fields = live.AppliedFields(u)
	}
	k := live.KeyOf(plan.RefOf(u))
	a.mu.Lock()
	defer a.mu.Unlock()
	a.written[k] = u.GetResourceVersion()
	if fields != "" {
		a.applied[k] = appliedFields{desired: desired, fields: fields}
	} else {
		delete(a.applied, k)
	}
}

// forgetWrite forgets Meridian's last write of ref: the object is gone.
func (a *Applier) forgetWrite(ref plan.ObjectRef) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.written, live.KeyOf(ref))
}

// forgetObjects forgets what Meridian last wrote of refs, the replicas it applied
// them with and the fields it applied: they were pruned or released, and are no
// longer Meridian's to wait for or check, so the maps do not grow with every
// object ever removed.
func (a *Applier) forgetObjects(refs []plan.ObjectRef) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ref := range refs {
		k := live.KeyOf(ref)
		delete(a.written, k)
		delete(a.replicas, k)
		delete(a.applied, k)
	}
}

// seen reports whether the watch's copy of ref, at resourceVersion rv ("": it
// holds none), is at least as new as Meridian's last write of ref; once it is,
// the write is forgotten. Resource versions are compared as the integers the API
// server makes them; one that is not (another storage) must equal the write's.
func (a *Applier) seen(ref plan.ObjectRef, rv string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := live.KeyOf(ref)
	written, ok := a.written[k]
	if !ok {
		return true
	}
	if rv == "" || !live.Seen(rv, written) {
		return false
	}
	delete(a.written, k)
	return true
}

// resourceVersion is u's resourceVersion, "" when u is nil.
func resourceVersion(u *unstructured.Unstructured) string {
	if u == nil {
		return ""
	}
	return u.GetResourceVersion()
}

// summarize sums objects up into a unit's Health.
func summarize(objects []ObjectHealth) Health {
	h := Health{State: Ready, Objects: objects}
	if c := h.culprit(); c != nil {
		h.State = Progressing
		if c.Status == status.FailedStatus || c.Status == status.NotFoundStatus {
			h.State = Failed
		}
		h.Reason = fmt.Sprintf("%s: %s: %s", c.Object, c.Status, c.Message)
	}
	return h
}

// readTimeout bounds one Health read within Wait, so a read in flight when the wait
// times out still completes (or fails) on its own.
const readTimeout = 30 * time.Second

// pause waits before a poll's next read: *interval, which then doubles up to
// PollInterval, and never past deadline. It reports false, without waiting, once
// the deadline passed, and ctx's error when ctx ends first.
func (a *Applier) pause(ctx context.Context, interval *time.Duration, deadline time.Time) (bool, error) {
	left := time.Until(deadline)
	if left <= 0 {
		return false, nil
	}
	t := time.NewTimer(min(*interval, left))
	*interval = min(2**interval, a.opts.PollInterval)
	select {
	case <-ctx.Done():
		t.Stop()
		return false, ctx.Err()
	case <-t.C:
		return true, nil
	}
}

// Wait waits until the unit is Ready, Failed, or timeout passed, and returns the
// last Health. With Options.Live it waits for the watches to see the objects
// change, and reads the API server only for the objects they cannot answer for;
// without, it polls Health. An object seen Current is not read again within the
// wait: most (ConfigMaps, Secrets, Services, RBAC) are Current once they exist, so
// a unit waiting for its Deployment reads only the Deployment, and a region of
// hundreds of units waiting at once asks its API server a third as much. It
// returns an error unless Ready: for Failed, an *Error naming the failed object
// (permanent); on timeout, an *Error naming the object still not ready, or the
// read that kept failing (transient). Transient read failures are retried until
// the timeout.
func (a *Applier) Wait(ctx context.Context, refs []plan.ObjectRef, timeout time.Duration) (Health, error) {
	deadline := time.Now().Add(timeout)
	var (
		last    Health
		lastErr error
		// Most objects are ready within a second of their apply: the first reads
		// come sooner, an eighth of PollInterval, doubling up to it.
		interval = a.opts.PollInterval / 8
	)
	objects := make([]ObjectHealth, len(refs)) // the last read of each
	pending := make([]int, len(refs))          // the indices of those not yet Current
	for i := range pending {
		pending[i] = i
	}
	for {
		toRead := make([]plan.ObjectRef, len(pending))
		for j, i := range pending {
			toRead[j] = refs[i]
		}
		// Subscribed before reading, so that no change after the read is missed.
		var changed <-chan struct{}
		stopWatching := func() {}
		if a.opts.Live != nil {
			changed, stopWatching = a.opts.Live.Changed(toRead)
		}
		rctx, cancel := context.WithTimeout(ctx, readTimeout)
		read, polled, err := a.health(rctx, toRead)
		cancel()
		switch {
		case err == nil:
			var still []int
			for j, i := range pending {
				if objects[i] = read.Objects[j]; objects[i].Status != status.CurrentStatus {
					still = append(still, i)
				}
			}
			pending = still
			h := summarize(slices.Clone(objects))
			last, lastErr = h, nil
			if h.State == Ready {
				stopWatching()
				return h, nil
			}
			if h.State == Failed {
				stopWatching()
				c := h.culprit()
				return h, &Error{Object: c.Object.String(), Op: "failed", Err: fmt.Errorf("%s: %s", c.Status, c.Message)}
			}
		case ctx.Err() != nil:
			stopWatching()
			return last, ctx.Err()
		case !IsTransient(err):
			stopWatching()
			return last, err
		default:
			lastErr = err
		}
		var more bool
		if changed != nil && err == nil && !polled {
			// Everything came from the watches: the next change is worth a look.
			more, err = a.awaitChange(ctx, changed, deadline)
		} else {
			more, err = a.pause(ctx, &interval, deadline)
		}
		stopWatching()
		if err != nil {
			return last, err
		}
		if !more {
			break
		}
	}
	op := fmt.Sprintf("not ready after %s", timeout)
	var e *Error
	if errors.As(lastErr, &e) {
		return last, &Error{Object: e.Object, Op: op + ": " + e.Op, Err: e.Err, Transient: true}
	}
	c := last.culprit()
	return last, &Error{Object: c.Object.String(), Op: op, Err: fmt.Errorf("%s: %s", c.Status, c.Message), Transient: true}
}

// awaitChange waits for changed, and reports false, without waiting, once the
// deadline passed (nothing changed: the last health stands), and ctx's error when
// ctx ends first.
func (a *Applier) awaitChange(ctx context.Context, changed <-chan struct{}, deadline time.Time) (bool, error) {
	left := time.Until(deadline)
	if left <= 0 {
		return false, nil
	}
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-t.C:
		return false, nil
	case <-changed:
		return true, nil
	}
}
