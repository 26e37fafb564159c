package shard

import (
	"context"
	"errors"
	"time"

	"k8s.io/utils/clock"
)

// hold is one pass's pin on the shards it may change.
type hold struct {
	shards map[int]bool
	cancel context.CancelCauseFunc
}

// errExpired ends a fenced context whose shards were not renewed in time.
var errExpired = errors.New("the shard Leases were not renewed in time; stopped writing so that another replica may take them over")

// Hold pins the shards this replica owns now: until release is called they are
// renewed and never given up, even if hashing gives them to another replica.
// owns reports whether a tenant is in one of them, and owns(DNSWriter) whether
// this replica holds the Route53 writer's Lease for the pass. fenced is ctx, ended early when
// a pinned shard's Lease was lost or not renewed in time; whoever writes for the
// pass must stop then, before another replica can take the Lease over.
func (m *Manager) Hold(ctx context.Context) (owns func(tenant string) bool, fenced context.Context, release func()) {
	fenced, cancel := context.WithCancelCause(ctx)
	h := &hold{shards: map[int]bool{}, cancel: cancel}
	m.mu.Lock()
	for _, s := range m.owned(m.clock.Now()) {
		h.shards[s] = true
		m.pins[s]++
	}
	m.holds[h] = true
	m.mu.Unlock()

	done := make(chan struct{})
	go m.watch(h, done)
	n := m.opts.Shards
	owns = func(tenant string) bool {
		if tenant == DNSWriter {
			return h.shards[dnsShard]
		}
		return h.shards[Of(tenant, n)]
	}
	release = func() {
		m.mu.Lock()
		if m.holds[h] {
			delete(m.holds, h)
			for s := range h.shards {
				m.pins[s]--
			}
			close(done)
		}
		m.mu.Unlock()
		cancel(context.Canceled)
	}
	return owns, fenced, release
}

// watch ends h's fenced context when one of its shards is no longer held, or its
// validity passes without a renewal. It waits on a timer of its own, so that a
// renewal stuck on a slow management cluster cannot keep writes going.
func (m *Manager) watch(h *hold, done <-chan struct{}) {
	if len(h.shards) == 0 {
		return
	}
	var timer clock.Timer
	for {
		until := m.validity(h)
		now := m.clock.Now()
		if !now.Before(until) {
			m.log.Error("stopping the pass's writes", "error", errExpired)
			h.cancel(errExpired)
			return
		}
		if timer == nil {
			timer = m.clock.NewTimer(until.Sub(now))
			defer timer.Stop()
		} else {
			timer.Reset(until.Sub(now))
		}
		select {
		case <-done:
			return
		case <-timer.C():
		}
	}
}

// validity is the time until which every shard of h is held, or zero when one of
// them no longer is.
func (m *Manager) validity(h *hold) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	var until time.Time
	for s := range h.shards {
		v, ok := m.held[s]
		if !ok {
			return time.Time{}
		}
		if until.IsZero() || v.Before(until) {
			until = v
		}
	}
	return until
}
