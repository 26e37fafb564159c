package status

import (
	"maps"
	"slices"
	"strings"
	"time"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/dns"
	"meridian.dev/meridian/sources"
)

// ObserveRevision records that a fetched revision was accepted: its fleet is
// valid, and it is the revision passes now apply.
func (s *Store) ObserveRevision(c Commit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c = s.cleanCommit(c)
	s.current = &c
	s.commits[c.Revision] = c
	if s.refused != nil && s.refused.Commit.Revision == c.Revision {
		s.refused = nil
	}
}

// ObserveRefused records that a fetched revision was refused — its fleet files are
// not valid — with every error (each naming its file and line). The revision in
// use stays as it was.
func (s *Store) ObserveRefused(c Commit, errs []error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c = s.cleanCommit(c)
	r := &Refusal{Commit: c, At: s.now(), Errors: []string{}}
	for _, err := range errs {
		if err == nil {
			continue
		}
		msg := s.clean(err.Error())
		r.Errors = append(r.Errors, msg)
		s.record("refused", sources.ShortRevision(c.Revision), c.Revision, msg)
	}
	s.refused = r
	s.metrics.refused.Inc()
	s.forgetCommits()
}

// cleanCommit redacts a commit's text; the caller holds s.mu.
func (s *Store) cleanCommit(c Commit) Commit {
	c.Subject = s.clean(c.Subject)
	c.Author = s.clean(c.Author)
	return c
}

// ObserveFetchFailure records that fetching the fleet repository failed; the
// revision in use stays.
func (s *Store) ObserveFetchFailure(err error) {
	if err == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.fetch.Failures++
	s.fetch.LastError = s.clean(err.Error())
	s.fetch.LastErrorAt = &now
	s.record("fetch", "repository", "", err.Error())
	s.metrics.fetchFailures.Inc()
}

// ObserveRender records how long rendering a revision took, and how many
// placements it rendered (the rest came from the render cache).
func (s *Store) ObserveRender(d time.Duration, rendered int) {
	s.metrics.renderDuration.Observe(d.Seconds())
	s.metrics.renders.Add(float64(rendered))
}

// Route53Request counts one request to Route53 by operation ("ChangeResourceRecordSets",
// ...), and whether Route53 throttled it. Operations Meridian does not use are
// counted as "other", which keeps the metric's cardinality bounded.
func (s *Store) Route53Request(op string, throttled bool) {
	op = route53Operation(op)
	s.metrics.route53Requests.WithLabelValues(op).Inc()
	if throttled {
		s.metrics.route53Throttles.WithLabelValues(op).Inc()
	}
}

// ObserveDNS replaces the DNS endpoints with what the Route53 code last saw: every
// endpoint of every placement, with the health of its check.
func (s *Store) ObserveDNS(endpoints []DNSEndpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dns = map[fleet.UnitID][]DNSEndpoint{}
	for _, e := range endpoints {
		e.Name = s.clean(e.Name)
		e.HealthCheckID = s.clean(e.HealthCheckID)
		unit := e.unit()
		s.placementOf(unit)
		s.dns[unit] = append(s.dns[unit], e)
	}
	for _, eps := range s.dns {
		slices.SortFunc(eps, func(a, b DNSEndpoint) int { return strings.Compare(a.Name, b.Name) })
	}
}

// ObservePass records a reconcile pass's report and how long it took: the state of
// every unit (see DeriveStates), the waves, each region's outcome and the errors;
// then it counts the pass and sends the notifications it calls for. The report's
// Redactor, when set, becomes the Store's (see SetRedactor): it knows the
// revision's decrypted values, which the events read from the regions may hold.
// The previous revision's Redactor is kept too, for a rotated secret.
func (s *Store) ObservePass(r *reconciler.Report, d time.Duration) {
	if r == nil {
		return
	}
	s.metrics.passDuration.Observe(d.Seconds())
	outcome := DeriveStates(r)

	s.mu.Lock()
	if r.Redactor != nil {
		if r.Revision != s.redactRevision {
			s.previous, s.redactRevision = s.redact, r.Revision
		}
		s.redact = r.Redactor
	}
	now := s.now()
	if r.DNS != nil && r.DNS.Quotas.HealthChecks.Name != "" {
		s.quotas = nil
		for _, q := range []dns.Quota{r.DNS.Quotas.HealthChecks, r.DNS.Quotas.RecordSets} {
			s.quotas = append(s.quotas, Route53Quota{Name: q.Name, Limit: q.Limit, Others: q.Others, Needed: q.Needed, Fits: q.Fits(), Summary: s.clean(q.String())})
		}
	}
	waveOf := s.observeWaves(r)
	s.observeUnits(r, outcome, now)
	s.observeApplies(r, outcome, now)
	s.observeRegions(r, outcome, waveOf)
	pass := &Pass{Revision: r.Revision, At: now, DurationSeconds: d.Seconds(), Converged: true}
	if err := r.Err(); err != nil {
		pass.Converged = false
		pass.Problems = s.clean(err.Error())
	}
	s.lastPass = pass
	s.handHistory(s.recordPass(r, pass, d))
	s.forgetCommits()
	events := s.passEvents(r)
	subject := ""
	if c, ok := s.commits[r.Revision]; ok {
		subject = c.Subject
	}
	s.mu.Unlock()

	result := "converged"
	if !pass.Converged {
		result = "problems"
	}
	s.metrics.passes.WithLabelValues(result).Inc()
	if s.opts.Notifier != nil {
		for _, e := range events {
			e.Subject = subject
			s.opts.Notifier.Notify(e)
		}
	}
}

// observeWaves records the pass's waves and returns each region's wave; the
// caller holds s.mu for writing.
func (s *Store) observeWaves(r *reconciler.Report) map[string]string {
	waveOf := map[string]string{}
	s.waves = nil
	for _, w := range r.Waves {
		state := "healthy"
		switch {
		case w.Skipped:
			state = "skipped"
		case !w.Healthy:
			state = "failed"
		}
		s.waves = append(s.waves, Wave{Name: w.Name, Regions: slices.Clone(w.Regions), State: state})
		for _, region := range w.Regions {
			waveOf[region] = w.Name
		}
	}
	return waveOf
}

// observeUnits applies a pass's outcome to the units: those no longer Meridian's
// leave, the others take their new state, and the units of unreached and waiting
// regions say why. The caller holds s.mu for writing.
func (s *Store) observeUnits(r *reconciler.Report, outcome PassOutcome, now time.Time) {
	// Units of a region planned in full that the pass does not name are no longer
	// Meridian's; so are units it pruned.
	for unit, p := range s.placements {
		o, named := outcome.Units[unit]
		if (outcome.Listed[p.region] && !named) || o.Gone {
			s.forget(unit)
		}
	}
	for _, unit := range slices.SortedFunc(maps.Keys(outcome.Units), fleet.UnitID.Compare) {
		if o := outcome.Units[unit]; !o.Gone {
			s.observeUnit(unit, o, r.Revision, now)
		}
	}
	for region, reason := range outcome.Unreached {
		reason = s.clean(reason)
		for _, p := range s.placements {
			if p.region == region && p.state != RenderFailed {
				p.state, p.reason = Failed, reason
				p.fromHealth = false
				p.lastError, p.lastErrorAt = reason, now
			}
		}
		s.record("region", region, r.Revision, reason)
	}
	for region, reason := range outcome.Waiting {
		reason = s.clean(reason)
		for _, p := range s.placements {
			if p.region == region && p.state != RenderFailed {
				p.state, p.reason = Progressing, "waiting: "+reason
				p.fromHealth = false
			}
		}
	}
	if r.Stopped != "" {
		s.record("rollout", sources.ShortRevision(r.Revision), r.Revision, r.Stopped)
	}
}

// observeUnit records one unit's outcome of the pass of revision; the caller
// holds s.mu for writing.
func (s *Store) observeUnit(unit fleet.UnitID, o Outcome, revision string, now time.Time) {
	p := s.placementOf(unit)
	p.state = o.State
	p.fromHealth = o.Applied && o.State != Held
	p.reason = s.clean(o.Reason)
	if o.Revision != "" {
		p.revision = o.Revision
	}
	if o.State == Ready {
		p.lastSync = now
	}
	if o.State == Failed || o.State == RenderFailed || (o.State == Progressing && o.Reason != "") {
		p.lastError = p.reason
		p.lastErrorAt = now
		kind := "apply"
		switch {
		case o.State == RenderFailed:
			kind = "render"
		case o.Applied:
			kind = "health"
		}
		s.record(kind, unit.String(), revision, o.Reason)
	}
}

// observeRegions records each region's outcome and wave; the caller holds s.mu
// for writing.
func (s *Store) observeRegions(r *reconciler.Report, outcome PassOutcome, waveOf map[string]string) {
	for region, wave := range waveOf {
		reg := s.regionOf(region)
		reg.Wave = wave
		if _, waiting := outcome.Waiting[region]; waiting {
			reg.State = "waiting"
		}
	}
	for region, rr := range r.Regions {
		if rr == nil {
			continue
		}
		reg := s.regionOf(region)
		reg.Revision = r.Revision
		reg.Changes = strings.TrimPrefix(rr.Changes.String(), rr.Changes.Region+": ")
		if len(rr.Changes.Changes) == 0 {
			reg.Changes = ""
		}
		reg.Error, reg.Held, reg.HeldDeletions = "", "", 0
		problem, unhealthy := rr.Problem(), rr.Unhealthy()
		switch {
		case problem != nil:
			reg.State = "failed"
			reg.Error = s.clean(reconciler.OneLine(problem))
		case len(unhealthy) > 0:
			reg.State = "failed"
			reg.Error = s.clean(unhealthySummary(unhealthy))
		case rr.Changes.Held != "":
			reg.State = "held"
		default:
			reg.State = "converged"
		}
		if rr.Changes.Held != "" {
			reg.Held = s.clean(rr.Changes.Held)
			reg.HeldDeletions = rr.Changes.Deletions()
			s.record("held", region, r.Revision, "deletions held: "+rr.Changes.Held)
		}
	}
	for _, p := range s.placements {
		if w, ok := waveOf[p.region]; ok {
			p.wave = w
		}
	}
}

// forget drops a unit, unless Route53 still has endpoints for it; the caller holds
// s.mu for writing.
func (s *Store) forget(unit fleet.UnitID) {
	if len(s.dns[unit]) > 0 {
		p := s.placements[unit]
		p.state, p.reason = Unknown, "no longer in the fleet; its DNS endpoints remain"
		p.fromHealth = false
		return
	}
	delete(s.placements, unit)
}

// regionOf returns the region's entry, creating it; the caller holds s.mu.
func (s *Store) regionOf(name string) *Region {
	if r, ok := s.regions[name]; ok {
		return r
	}
	r := &Region{Name: name, State: "unknown"}
	s.regions[name] = r
	return r
}

// ObserveDrift records a drift check's report: how many objects of each unit
// drifted, and whether they were corrected or only reported.
func (s *Store) ObserveDrift(r *reconciler.DriftReport) {
	if r == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for region, rd := range r.Regions {
		if rd == nil {
			continue
		}
		reg := s.regionOf(region)
		reg.DriftedObjects = rd.Objects
		reg.DriftError = ""
		if rd.Err != nil {
			reg.DriftError = s.clean(rd.Err.Error())
			s.record("drift", region, r.Revision, region+": "+rd.Err.Error())
		}
		reported := map[fleet.UnitID]bool{}
		for _, u := range rd.Reported {
			reported[u] = true
		}
		for _, p := range s.placements {
			if p.region == region && rd.Err == nil {
				p.drift = Drift{CheckedAt: &now}
			}
		}
		for _, unit := range slices.SortedFunc(maps.Keys(rd.Drifted), fleet.UnitID.Compare) {
			drifts := rd.Drifted[unit]
			p := s.placementOf(unit)
			d := Drift{Objects: len(drifts), CheckedAt: &now, Action: "corrected"}
			if reported[unit] {
				d.Action = "reported"
			}
			for i, x := range drifts {
				if i == maxDriftDetails {
					break
				}
				d.Details = append(d.Details, s.clean(x.String()))
			}
			p.drift = d
		}
	}
}

// unhealthySummary says which units are not healthy, in one line.
func unhealthySummary(units []fleet.UnitID) string {
	names := make([]string, len(units))
	for i, u := range units {
		names[i] = u.String()
	}
	return "not healthy: " + strings.Join(names, ", ")
}
