package status

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/plan"
)

const (
	// eventsFresh is how long the events read of a unit are served again
	// before they are read anew: every open unit page asks every few seconds.
	eventsFresh = 10 * time.Second
	// maxEventReadsPerRegion bounds the reads of events from one region at
	// once; more are answered ErrBusy.
	maxEventReadsPerRegion = 4
	// eventsReadTimeout bounds one read, whoever asked for it first.
	eventsReadTimeout = 15 * time.Second
)

// eventReads shares the reads of events: one at a time per unit (the callers
// of the same unit wait for it), kept for eventsFresh, and at most
// maxEventReadsPerRegion per region.
type eventReads struct {
	group   singleflight.Group
	mu      sync.Mutex
	read    map[fleet.UnitID]eventsRead
	regions map[string]chan struct{}
}

// eventsRead is what a read of a unit's events returned, unredacted, and when.
type eventsRead struct {
	events []KubeEvent
	err    error
	at     time.Time
}

// UnitEvents reads the Kubernetes events of a unit's objects through
// Options.Events, redacted. A unit's events are read at most once every ten
// seconds, whoever asks. It returns ErrNoEvents when the Store has no way to read
// them, ErrNoRedactor before it has a Redactor (no pass reported one yet),
// ErrUnknownUnit for a unit it does not know, and ErrBusy when the unit's region
// is being read for too many units already.
func (s *Store) UnitEvents(ctx context.Context, unit fleet.UnitID) ([]KubeEvent, error) {
	if s.opts.Events == nil {
		return nil, ErrNoEvents
	}
	s.mu.RLock()
	noRedactor := s.redact == nil
	_, ok := s.placements[unit]
	s.mu.RUnlock()
	switch {
	case noRedactor:
		return nil, ErrNoRedactor
	case !ok:
		return nil, ErrUnknownUnit
	}
	events, err := s.readEvents(ctx, unit)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err != nil {
		if errors.Is(err, ErrBusy) {
			return nil, err
		}
		return nil, errorString(s.clean(err.Error()))
	}
	out := make([]KubeEvent, len(events))
	for i, e := range events {
		e.Message, e.Reason, e.Object = s.clean(e.Message), s.clean(e.Reason), s.clean(e.Object)
		out[i] = e
	}
	slices.SortStableFunc(out, func(a, b KubeEvent) int { return b.Last.Compare(a.Last) })
	return out, nil
}

// eventRefs returns the unit's objects and those of the other units of its
// region in the same namespaces (see EventReader).
func (s *Store) eventRefs(unit fleet.UnitID) (refs, others []plan.ObjectRef) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.placements[unit]
	if !ok {
		return nil, nil
	}
	refs = unitRefs(p)
	namespaces := map[string]bool{}
	for _, r := range refs {
		namespaces[r.Namespace] = true
	}
	for u, q := range s.placements {
		if u == unit || q.region != unit.Region {
			continue
		}
		for _, r := range q.desired {
			if r.Namespace != "" && namespaces[r.Namespace] {
				others = append(others, r)
			}
		}
	}
	return refs, others
}

// unitRefs are the objects of a unit the Store knows, each once: what its watch
// saw, then what its last pass rendered. The caller holds s.mu.
func unitRefs(p *placement) []plan.ObjectRef {
	var refs []plan.ObjectRef
	seen := map[string]bool{}
	add := func(r plan.ObjectRef) {
		if !seen[r.Key()] {
			seen[r.Key()] = true
			refs = append(refs, r)
		}
	}
	for _, o := range p.objects {
		add(plan.ObjectRef{Group: o.Group, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name})
	}
	for _, o := range p.desired {
		add(o)
	}
	return refs
}

// readEvents returns the unit's events as last read, when that is recent, or
// reads them (once, for every caller of the unit that asks meanwhile), unless
// the region is read for maxEventReadsPerRegion units already.
func (s *Store) readEvents(ctx context.Context, unit fleet.UnitID) ([]KubeEvent, error) {
	r := &s.eventReads
	r.mu.Lock()
	if last, ok := r.read[unit]; ok && s.now().Sub(last.at) < eventsFresh {
		r.mu.Unlock()
		return last.events, last.err
	}
	r.mu.Unlock()
	v, err, _ := r.group.Do(unit.String(), func() (any, error) {
		slot := r.slot(unit.Region)
		select {
		case slot <- struct{}{}:
			defer func() { <-slot }()
		default:
			return nil, ErrBusy
		}
		// The read is shared: it does not end with the request that started it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventsReadTimeout)
		defer cancel()
		refs, others := s.eventRefs(unit)
		events, err := s.opts.Events(ctx, unit, refs, others)
		r.keep(unit, eventsRead{events: events, err: err, at: s.now()}, s.now())
		return events, err
	})
	events, _ := v.([]KubeEvent)
	return events, err
}

// slot returns the semaphore of a region's reads.
func (r *eventReads) slot(region string) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.regions == nil {
		r.regions = map[string]chan struct{}{}
	}
	c, ok := r.regions[region]
	if !ok {
		c = make(chan struct{}, maxEventReadsPerRegion)
		r.regions[region] = c
	}
	return c
}

// keep records a read, dropping those no longer fresh.
func (r *eventReads) keep(unit fleet.UnitID, read eventsRead, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.read == nil {
		r.read = map[fleet.UnitID]eventsRead{}
	}
	for u, old := range r.read {
		if now.Sub(old.at) >= eventsFresh {
			delete(r.read, u)
		}
	}
	r.read[unit] = read
}
