package status

import (
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render/secrets"
	"meridian.dev/meridian/sources"
)

// DefaultRecentErrors is how many recent errors a Store keeps when Options do not
// say.
const DefaultRecentErrors = 50

// Options configure a Store.
type Options struct {
	// Redactor redacts every string the Store keeps and every event it serves.
	// ObservePass replaces it with the pass's (reconciler.Report.Redactor), and
	// SetRedactor with any other. While it is nil, strings are kept as they are
	// given (the reconciler redacts its errors already) and no Kubernetes event
	// is served: they are read from the regions, unredacted.
	Redactor *secrets.Redactor
	// Notifier, when set, is told each region's outcome of every revision and every
	// hold of deletions.
	Notifier *Notifier
	// RecentErrors bounds the ring of recent errors; zero means DefaultRecentErrors.
	RecentErrors int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives what the Store could not do. Nil discards it.
	Log *slog.Logger
	// Events, when set, reads the Kubernetes events of a unit's objects for the
	// unit page (/api/v1/events/<unit>). Nil: the page says events cannot be read.
	Events EventReader
	// History, when set, keeps the history of passes across restarts: New loads
	// it (waiting a few seconds at most), and a goroutine saves it after every
	// pass, until Close. Nil keeps it in memory only.
	History HistoryStore
	// HistorySize bounds the passes the history keeps; zero means
	// DefaultHistorySize.
	HistorySize int
}

// Commit is a revision of the fleet repository as people know it.
type Commit struct {
	// Revision is the commit's hash.
	Revision string `json:"revision"`
	// Subject is the first line of the commit message.
	Subject string `json:"subject,omitempty"`
	// Author is the author's name (never the e-mail address).
	Author string `json:"author,omitempty"`
	// Time is the author date.
	Time time.Time `json:"time,omitzero"`
}

// CommitOf returns the Commit of a fetched revision.
func CommitOf(revision string, c sources.Commit) Commit {
	return Commit{Revision: revision, Subject: c.Subject, Author: c.Author.Name, Time: c.Author.When}
}

// DNSEndpoint is one Route53 record of a placement and the health of its check,
// as the Route53 code last saw it.
type DNSEndpoint struct {
	// Tenant, Region and App name the placement the record points at.
	Tenant string `json:"tenant"`
	Region string `json:"region"`
	App    string `json:"app"`
	// Name is the record's DNS name.
	Name string `json:"name"`
	// Healthy is the health check's status.
	Healthy bool `json:"healthy"`
	// HealthCheckID is the Route53 health check of the record, if any.
	HealthCheckID string `json:"healthCheckId,omitempty"`
}

// unit returns the placement the endpoint belongs to.
func (e DNSEndpoint) unit() fleet.UnitID {
	return fleet.UnitID{Tenant: e.Tenant, Region: e.Region, App: e.App}
}

// Store is the in-memory model of the fleet's status. It is safe for concurrent
// use: the daemon writes to it while the HTTP handler and the metrics read it.
type Store struct {
	opts    Options
	now     func() time.Time
	log     *slog.Logger
	metrics *metrics

	mu     sync.RWMutex
	redact *secrets.Redactor
	// previous is the Redactor of the revision before redactRevision's: while
	// the new one rolls out, pods of the old one still print its secrets in
	// their events, and a rotated secret stays a secret.
	previous       *secrets.Redactor
	redactRevision string
	current        *Commit
	refused        *Refusal
	commits        map[string]Commit
	placements     map[fleet.UnitID]*placement
	regions        map[string]*Region
	waves          []Wave
	lastPass       *Pass
	recent         []ErrorEntry
	fetch          Fetch
	dns            map[fleet.UnitID][]DNSEndpoint
	quotas         []Route53Quota
	history        []PassRecord
	saver          *historySaver
	// eventReads shares the reads of Kubernetes events (Options.Events).
	eventReads eventReads
	// notified remembers the last outcome notified per region, so that a retried
	// pass with the same outcome does not notify again.
	notified map[string]string
}

// placement is what the Store keeps of one unit.
type placement struct {
	tenant, region, app string
	addon               string
	state               State
	reason              string
	revision            string
	wave                string
	lastError           string
	lastErrorAt         time.Time
	lastSync            time.Time
	drift               Drift
	// objects and healthAt are what a watch last saw of the unit's objects.
	objects  []ObjectStatus
	healthAt time.Time
	// fromHealth reports that state comes from the unit's health: the last pass
	// applied it (or found it unchanged) without error, and held no deletion.
	// Only then may a watch change it (ObserveHealth).
	fromHealth bool
	// source is where the unit's objects come from (plan.Desired.Source);
	// desired the objects the last pass rendered for it; lastApply what that
	// pass did; revisions the last revisions passes took it to, oldest first.
	source  string
	desired []plan.ObjectRef
	// desiredDigest is the digest of the render desired was taken from.
	desiredDigest string
	lastApply     *UnitApply
	revisions     []UnitRevision
	// changed is the last revision that changed the unit.
	changed *Change
}

// New returns an empty Store; its metrics are registered in a registry of its own
// (see Handler).
func New(opts Options) *Store {
	if opts.RecentErrors <= 0 {
		opts.RecentErrors = DefaultRecentErrors
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.HistorySize <= 0 {
		opts.HistorySize = DefaultHistorySize
	}
	s := &Store{
		opts:       opts,
		now:        opts.Now,
		log:        opts.Log,
		redact:     opts.Redactor,
		commits:    map[string]Commit{},
		placements: map[fleet.UnitID]*placement{},
		regions:    map[string]*Region{},
		dns:        map[fleet.UnitID][]DNSEndpoint{},
		notified:   map[string]string{},
	}
	if cm, ok := opts.History.(HistoryConfigMap); ok && cm.Keep <= 0 {
		cm.Keep = opts.HistorySize // the replicas' passes together, as many as one Store keeps
		s.opts.History = cm
	}
	s.metrics = newMetrics(s)
	s.loadHistory()
	s.startHistorySaver()
	return s
}

// SetRedactor replaces the Redactor applied to every string stored from now on,
// for instance when a new revision brings new secret values.
func (s *Store) SetRedactor(r *secrets.Redactor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redact = r
}

// clean redacts v with the current revision's secrets and the previous
// revision's; the caller holds s.mu.
func (s *Store) clean(v string) string {
	return s.previous.RedactString(s.redact.RedactString(v))
}

// placementOf returns the unit's placement, creating it as Unknown; the caller
// holds s.mu for writing.
func (s *Store) placementOf(unit fleet.UnitID) *placement {
	if p, ok := s.placements[unit]; ok {
		return p
	}
	p := &placement{state: Unknown, tenant: unit.Tenant, region: unit.Region, app: unit.App, addon: unit.Addon}
	if r, ok := s.regions[p.region]; ok {
		p.wave = r.Wave
	}
	s.placements[unit] = p
	return p
}

// record adds an error to the ring of recent errors; the same error again only
// updates its time and count, so a failing retry loop does not flush the ring.
// The caller holds s.mu for writing.
func (s *Store) record(kind, subject, revision, message string) {
	message = s.clean(message)
	now := s.now()
	for i := range s.recent {
		e := &s.recent[i]
		if e.Kind == kind && e.Subject == subject && e.Message == message {
			e.Last = now
			e.Count++
			e.Revision = revision
			// Keep the ring ordered by Last, newest last.
			entry := *e
			s.recent = append(slices.Delete(s.recent, i, i+1), entry)
			return
		}
	}
	s.recent = append(s.recent, ErrorEntry{Kind: kind, Subject: subject, Revision: revision, Message: message, First: now, Last: now, Count: 1})
	if over := len(s.recent) - s.opts.RecentErrors; over > 0 {
		s.recent = slices.Delete(s.recent, 0, over)
	}
}

// forgetCommits drops the commits no placement, current or refused revision
// refers to, so that the map stays as small as the fleet. The caller holds s.mu.
func (s *Store) forgetCommits() {
	keep := map[string]bool{}
	if s.current != nil {
		keep[s.current.Revision] = true
	}
	if s.refused != nil {
		keep[s.refused.Commit.Revision] = true
	}
	for _, p := range s.placements {
		keep[p.revision] = true
	}
	for rev := range s.commits {
		if !keep[rev] {
			delete(s.commits, rev)
		}
	}
}

// sortedUnits returns the units in tenant, region, app order; the caller holds
// s.mu.
func (s *Store) sortedUnits() []fleet.UnitID {
	return slices.SortedFunc(maps.Keys(s.placements), fleet.UnitID.Compare)
}
