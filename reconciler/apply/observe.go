package apply

import (
	"context"
	"slices"
	"sync"
	"time"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/live"
	"meridian.dev/meridian/reconciler/plan"
)

// DefaultDebounce is how long Region's observer gathers the changes of a unit's
// objects before computing its health again: a rollout's flurry of events makes
// one update a second at most, not one per event.
const DefaultDebounce = time.Second

// HealthObserver receives a unit's health each time the watches see it change
// between passes (see Region.Observe).
type HealthObserver func(unit fleet.UnitID, h Health)

// observer follows the health of the units a Region waited for.
type observer struct {
	applier  *Applier
	fn       HealthObserver
	debounce time.Duration

	mu       sync.Mutex
	units    map[fleet.UnitID][]plan.ObjectRef
	byObject map[live.Key][]fleet.UnitID // an object has one unit, but for a moment two
	last     map[fleet.UnitID]string     // State and Reason last reported or waited for
	dirty    map[fleet.UnitID]struct{}
	// gen is each unit's registration, new at every waited: a health flush
	// computed before a pass's Wait registered the unit again is older than what
	// that Wait found, and is dropped.
	gen     map[fleet.UnitID]uint64
	nextGen uint64
	kick    chan struct{}
	ctx     context.Context // ended by Close
	stop    context.CancelFunc
	done    chan struct{}
}

// Observe makes the Region follow, between passes, the health of every unit it
// waited for, from Options.Live: when a change of one of a unit's objects changes
// the unit's state or reason (from what Wait found, or what fn was last told), fn
// is told, at most once per debounce (zero means DefaultDebounce), from a
// goroutine of the Region's. A unit whose objects the watches cannot all answer
// for is not reported until they can: its health is unknown, never taken for
// healthy. A unit pruned from the region (plan.Prune), or left out by Retain, is
// no longer followed. Without Options.Live, Observe does nothing. Call it once,
// before the first pass; Close stops it.
func (r *Region) Observe(fn HealthObserver, debounce time.Duration) {
	if r.applier.opts.Live == nil || fn == nil || r.obs != nil {
		return
	}
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	o := newObserver(r.applier, fn, debounce)
	r.obs = o
	r.applier.opts.Live.OnChange(o.changed)
	go o.loop()
}

// newObserver returns an observer of a's units that tells fn, not yet started:
// its context ends with stop.
func newObserver(a *Applier, fn HealthObserver, debounce time.Duration) *observer {
	o := &observer{
		applier: a, fn: fn, debounce: debounce,
		units:    map[fleet.UnitID][]plan.ObjectRef{},
		byObject: map[live.Key][]fleet.UnitID{},
		last:     map[fleet.UnitID]string{},
		dirty:    map[fleet.UnitID]struct{}{},
		gen:      map[fleet.UnitID]uint64{},
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	o.ctx, o.stop = context.WithCancel(context.Background())
	return o
}

// Retain stops following the units keep says no to: a replica's tenants that
// another replica took over.
func (r *Region) Retain(keep func(fleet.UnitID) bool) {
	if r.obs == nil {
		return
	}
	r.obs.mu.Lock()
	defer r.obs.mu.Unlock()
	for id := range r.obs.units {
		if !keep(id) {
			r.obs.forgetLocked(id)
		}
	}
}

// Close stops following health. It may be called more than once.
func (r *Region) Close() {
	if r.obs == nil {
		return
	}
	r.obs.stop()
	<-r.obs.done
}

// waited records what a pass's Wait found of a unit: its objects are followed
// from now on, and a change is reported against that health. A health that could
// not be read leaves nothing to compare with: the next change is reported. A
// change seen but not yet flushed stays to flush; a flush under way when this is
// called does not report (see flush).
func (o *observer) waited(id fleet.UnitID, refs []plan.ObjectRef, h Health, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, dirty := o.dirty[id]
	o.forgetLocked(id)
	if dirty {
		o.dirty[id] = struct{}{}
	}
	o.nextGen++
	o.gen[id] = o.nextGen
	o.units[id] = refs
	for _, ref := range refs {
		k := live.KeyOf(ref)
		if !slices.Contains(o.byObject[k], id) {
			o.byObject[k] = append(o.byObject[k], id)
		}
	}
	if !HealthUnknown(err) {
		o.last[id] = h.String()
	}
}

func (o *observer) forget(id fleet.UnitID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.forgetLocked(id)
}

func (o *observer) forgetLocked(id fleet.UnitID) {
	for _, ref := range o.units[id] {
		k := live.KeyOf(ref)
		if ids := slices.DeleteFunc(o.byObject[k], func(u fleet.UnitID) bool { return u == id }); len(ids) > 0 {
			o.byObject[k] = ids
		} else {
			delete(o.byObject, k)
		}
	}
	delete(o.units, id)
	delete(o.last, id)
	delete(o.dirty, id)
	delete(o.gen, id)
}

// changed marks the units of an object the watches saw change.
func (o *observer) changed(ref plan.ObjectRef) {
	o.mu.Lock()
	units := o.byObject[live.KeyOf(ref)]
	for _, id := range units {
		o.dirty[id] = struct{}{}
	}
	n := len(units)
	o.mu.Unlock()
	if n > 0 {
		select {
		case o.kick <- struct{}{}:
		default:
		}
	}
}

func (o *observer) loop() {
	defer close(o.done)
	for {
		select {
		case <-o.ctx.Done():
			return
		case <-o.kick:
		}
		// Gather the rest of the flurry.
		t := time.NewTimer(o.debounce)
		select {
		case <-o.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		o.flush()
	}
}

// flush computes the health of the units that changed and reports those whose
// state or reason did. The health is computed without the lock: a unit that a
// pass's Wait registered again meanwhile (its generation changed), or that is no
// longer followed, is not reported, since what that Wait found is newer.
func (o *observer) flush() {
	type pending struct {
		refs []plan.ObjectRef
		gen  uint64
	}
	o.mu.Lock()
	dirty := make(map[fleet.UnitID]pending, len(o.dirty))
	for id := range o.dirty {
		dirty[id] = pending{refs: o.units[id], gen: o.gen[id]}
	}
	clear(o.dirty)
	o.mu.Unlock()
	for id, d := range dirty {
		refs := d.refs
		objects := make([]ObjectHealth, len(refs))
		if unread := o.applier.fromLive(o.ctx, refs, objects); len(unread) > 0 {
			continue // unknown until the watches can answer: never taken for healthy
		}
		h := summarize(objects)
		o.mu.Lock()
		_, followed := o.units[id]
		report := followed && o.gen[id] == d.gen && o.last[id] != h.String()
		if report {
			o.last[id] = h.String()
		}
		o.mu.Unlock()
		if report {
			o.fn(id, h)
		}
	}
}
