package status

import (
	"fmt"
	"time"

	"meridian.dev/meridian/fleet"
)

// ObjectStatus is the health of one object of a unit, as a watch of its region
// last saw it.
type ObjectStatus struct {
	// Kind, Namespace and Name name the object; Group is its API group ("" for
	// the core group).
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Status is the object's kstatus: Current, InProgress, Failed, Terminating,
	// NotFound or Unknown.
	Status string `json:"status"`
	// Message is kstatus's explanation, redacted.
	Message string `json:"message,omitempty"`
}

// UnitHealth is a unit's health as watches see it between passes.
type UnitHealth struct {
	// State is Ready, Progressing or Failed.
	State State
	// Reason says why the state is not Ready: the object that decided it.
	Reason string
	// Objects are the unit's objects with their kstatus.
	Objects []ObjectStatus
	// At is when the watch saw it.
	At time.Time
}

// The kinds of Event a watch's view of a unit makes between passes.
const (
	// EventUnhealthy: a unit that was Ready is no longer, without a pass.
	EventUnhealthy = "unhealthy"
	// EventRecovered: a unit that was not Ready is Ready again, without a pass.
	EventRecovered = "recovered"
)

// ObserveHealth records a unit's health as a watch of its region sees it, between
// passes: the unit's state, its reason and its objects follow the cluster within
// seconds of a change, without a commit. Only a unit whose state the last pass
// took from its health (applied or found unchanged without error, no deletion
// held) changes state: one the Store does not know (not Meridian's, or gone) and
// one whose state comes from something health does not change (an apply or prune
// that failed, an unreached region, a wave not reached, Held, RenderFailed) keep
// it, and their last sync; the objects of a known unit are still recorded. When a unit turns from Ready to another state, or
// back, the Notifier (if any) is told: EventUnhealthy or EventRecovered.
func (s *Store) ObserveHealth(unit fleet.UnitID, h UnitHealth) {
	if e, ok := s.observeHealth(unit, h); ok && s.opts.Notifier != nil {
		s.opts.Notifier.Notify(e)
	}
}

// observeHealth is ObserveHealth but the notification, which it returns.
func (s *Store) observeHealth(unit fleet.UnitID, h UnitHealth) (Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.placements[unit]
	if !ok {
		return Event{}, false
	}
	objects := make([]ObjectStatus, len(h.Objects))
	for i, o := range h.Objects {
		o.Message = s.clean(o.Message)
		objects[i] = o
	}
	p.objects = objects
	p.healthAt = h.At
	if !p.fromHealth {
		return Event{}, false
	}
	was := p.state
	p.state, p.reason = h.State, s.clean(h.Reason)
	if h.State == Ready {
		p.lastSync = h.At
	}
	e := Event{Region: unit.Region, Revision: p.revision, At: h.At}
	switch {
	case was == Ready && h.State != Ready:
		e.Kind, e.Message = EventUnhealthy, fmt.Sprintf("%s is %s: %s", unit, h.State, p.reason)
	case was != Ready && h.State == Ready:
		e.Kind, e.Message = EventRecovered, fmt.Sprintf("%s is %s again", unit, h.State)
	default:
		return Event{}, false
	}
	if c, ok := s.commits[p.revision]; ok {
		e.Subject = c.Subject
	}
	return e, true
}
