package status

import (
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

// ObserveHealth records a unit's health as a watch of its region sees it, between
// passes: the unit's state, its reason and its objects follow the cluster within
// seconds of a change, without a commit. A unit the Store does not know (not
// Meridian's, or gone), and a unit whose state comes from something health does
// not change (Held, RenderFailed), keep their state; their objects are still
// recorded for a known unit.
func (s *Store) ObserveHealth(unit fleet.UnitID, h UnitHealth) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.placements[unit]
	if !ok {
		return
	}
	objects := make([]ObjectStatus, len(h.Objects))
	for i, o := range h.Objects {
		o.Message = s.clean(o.Message)
		objects[i] = o
	}
	p.objects = objects
	p.healthAt = h.At
	switch p.state {
	case Held, RenderFailed:
		return
	}
	p.state, p.reason = h.State, s.clean(h.Reason)
	if h.State == Ready {
		p.lastSync = h.At
	}
}
