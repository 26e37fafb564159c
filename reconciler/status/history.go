package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"meridian.dev/meridian/reconciler"
)

// DefaultHistorySize is how many passes the history keeps when Options do not say.
const DefaultHistorySize = 100

// maxHistoryText bounds each text of a PassRecord, so that a pass with a
// thousand failing units does not make the history a thousand times larger.
const maxHistoryText = 1000

// PassRecord is one reconcile pass, as the history keeps it.
type PassRecord struct {
	// Revision is the revision the pass applied; Subject and Author are its
	// commit's, when the Store knew them.
	Revision string `json:"revision"`
	Subject  string `json:"subject,omitempty"`
	Author   string `json:"author,omitempty"`
	// Start is when the pass started, DurationSeconds how long it took.
	Start           time.Time `json:"start"`
	DurationSeconds float64   `json:"durationSeconds"`
	// Converged is true when every region reached the revision healthy;
	// Problems says what did not, redacted and shortened.
	Converged bool   `json:"converged"`
	Problems  string `json:"problems,omitempty"`
	// Regions are each region's outcome of the pass, by name.
	Regions []RegionOutcome `json:"regions"`
	// Renders counts the units the pass rendered (not served from the cache).
	Renders int `json:"renders"`
	// Placements counts the tenant × region × app placements after the pass,
	// States them by state, Units every unit (namespaces and addons too).
	Placements int           `json:"placements"`
	Units      int           `json:"units"`
	States     map[State]int `json:"states"`
}

// RegionOutcome is one region's outcome of a pass.
type RegionOutcome struct {
	Name string `json:"name"`
	// State is converged, failed, held or waiting, as Region.State.
	State string `json:"state"`
	// Changes summarises the region's plan.
	Changes string `json:"changes,omitempty"`
	// Error is why the region did not converge, redacted and shortened.
	Error string `json:"error,omitempty"`
}

// HistoryStore keeps the history of passes across restarts. Load returns what
// Save last saved (nothing, without an error, the first time); Save replaces it.
// What they are given is already redacted and bounded (Options.HistorySize).
type HistoryStore interface {
	Load(ctx context.Context) ([]PassRecord, error)
	Save(ctx context.Context, passes []PassRecord) error
}

// HistoryFile keeps the history in a JSON file, written whole to a temporary file,
// synced and renamed over the old one, so that a crash leaves one or the other.
// It keeps the newest passes that fit MaxHistoryBytes, as a HistoryConfigMap does.
type HistoryFile struct {
	// Path is the file; its directory is created when missing.
	Path string
}

var _ HistoryStore = HistoryFile{}

// Load reads the file; a missing file is an empty history.
func (f HistoryFile) Load(context.Context) ([]PassRecord, error) {
	data, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var passes []PassRecord
	if err := json.Unmarshal(data, &passes); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	return passes, nil
}

// Save writes the file.
func (f HistoryFile) Save(_ context.Context, passes []PassRecord) error {
	data, err := encodeHistory(passes, len(passes))
	if err != nil {
		return err
	}
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".history-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	if _, err := tmp.WriteString(data); err != nil {
		tmp.Close()
		return err
	}
	// Synced before the rename: a crash after it must not leave an empty file.
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil { // the rename itself, where the system allows
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// History returns the passes the Store remembers, newest first.
func (s *Store) History() []PassRecord {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]PassRecord, 0, len(s.history))
	for i := len(s.history) - 1; i >= 0; i-- {
		p := s.history[i]
		p.Regions = slices.Clone(p.Regions)
		p.States = maps.Clone(p.States)
		out = append(out, p)
	}
	return out
}

// historyLoadTimeout bounds reading the history when a Store is made: a
// management cluster that does not answer must not hold the daemon's start.
const historyLoadTimeout = 5 * time.Second

// historySaveTimeout bounds one save of the history.
const historySaveTimeout = 30 * time.Second

// loadHistory reads the history from Options.History, when set; a history that
// cannot be read is logged and started afresh. Every text goes through the
// Redactor again: what was stored before a secret was known is cleaned now.
func (s *Store) loadHistory() {
	if s.opts.History == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), historyLoadTimeout)
	defer cancel()
	passes, err := s.opts.History.Load(ctx)
	if err != nil {
		s.log.Warn("status: the history of passes could not be read; starting a new one", "error", err)
		return
	}
	for i := range passes {
		passes[i] = s.cleanRecord(passes[i])
	}
	if over := len(passes) - s.opts.HistorySize; over > 0 {
		passes = passes[over:]
	}
	s.history = passes
}

// cleanRecord redacts and shortens a record's texts; the caller holds s.mu or
// owns the Store alone.
func (s *Store) cleanRecord(p PassRecord) PassRecord {
	p.Subject = shorten(s.clean(p.Subject), maxHistoryText)
	p.Author = shorten(s.clean(p.Author), maxHistoryText)
	p.Problems = shorten(s.clean(p.Problems), maxHistoryText)
	p.Regions = slices.Clone(p.Regions)
	for i := range p.Regions {
		p.Regions[i].Changes = shorten(s.clean(p.Regions[i].Changes), maxHistoryText)
		p.Regions[i].Error = shorten(s.clean(p.Regions[i].Error), maxHistoryText)
	}
	return p
}

// shorten cuts v to at most n bytes (on a rune boundary), marking the cut.
func shorten(v string, n int) string {
	if len(v) <= n {
		return v
	}
	cut := n
	for cut > 0 && (v[cut]&0xC0) == 0x80 {
		cut--
	}
	return v[:cut] + "…"
}

// recordPass adds a pass to the history and returns the history to save; the
// caller holds s.mu for writing, after the pass's units and regions were
// observed.
func (s *Store) recordPass(r *reconciler.Report, pass *Pass, d time.Duration) []PassRecord {
	rec := PassRecord{
		Revision: r.Revision, Start: pass.At.Add(-d), DurationSeconds: d.Seconds(),
		Converged: pass.Converged, Problems: pass.Problems, Renders: r.Renders, States: map[State]int{},
	}
	if c, ok := s.commits[r.Revision]; ok {
		rec.Subject, rec.Author = c.Subject, c.Author
	}
	for _, name := range slices.Sorted(maps.Keys(r.Regions)) {
		reg := s.regions[name]
		if reg == nil {
			continue
		}
		rec.Regions = append(rec.Regions, RegionOutcome{Name: name, State: reg.State, Changes: reg.Changes, Error: reg.Error})
	}
	for _, w := range r.Waves {
		if !w.Skipped {
			continue
		}
		for _, name := range w.Regions {
			rec.Regions = append(rec.Regions, RegionOutcome{Name: name, State: "waiting"})
		}
	}
	var c Counts
	for unit, p := range s.placements {
		c.add(kindOf(unit), p.state)
	}
	rec.Units, rec.Placements = c.Units, c.Placements
	if c.PlacementStates != nil {
		rec.States = c.PlacementStates
	}
	s.history = append(s.history, s.cleanRecord(rec))
	if over := len(s.history) - s.opts.HistorySize; over > 0 {
		s.history = slices.Delete(s.history, 0, over)
	}
	if s.saver == nil {
		return nil
	}
	return slices.Clone(s.history)
}

// historySaver saves the history to Options.History in a goroutine of its own,
// so that a slow disk or management cluster never holds a pass. It is handed
// each pass's history through a buffer of one: a history waiting to be saved is
// replaced by a newer one, so the saves follow the passes' order and the last
// one saved is the newest.
type historySaver struct {
	latest chan []PassRecord
	done   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	// closed is set by Close; it is guarded by Store.mu.
	closed bool
}

// startHistorySaver starts the saver, when the Store has a HistoryStore.
func (s *Store) startHistorySaver() {
	if s.opts.History == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &historySaver{latest: make(chan []PassRecord, 1), done: make(chan struct{}), ctx: ctx, cancel: cancel}
	s.saver = h
	go func() {
		defer close(h.done)
		for passes := range h.latest {
			ctx, cancel := context.WithTimeout(h.ctx, historySaveTimeout)
			err := s.opts.History.Save(ctx, passes)
			cancel()
			if err != nil {
				s.log.Warn("status: the history of passes could not be saved; it is kept in memory", "error", err)
			}
		}
	}()
}

// handHistory hands the history to the saver, replacing the one still waiting;
// the caller holds s.mu for writing, which makes it the only sender.
func (s *Store) handHistory(passes []PassRecord) {
	if s.saver == nil || s.saver.closed || passes == nil {
		return
	}
	select {
	case <-s.saver.latest:
	default:
	}
	s.saver.latest <- passes
}

// Close saves the history still waiting to be saved (Options.History), waiting
// at most timeout, then stops saving it: later passes are kept in memory only.
// Later calls return at once. The daemon closes its Store when it stops.
func (s *Store) Close(timeout time.Duration) {
	s.mu.Lock()
	h := s.saver
	if h == nil || h.closed {
		s.mu.Unlock()
		return
	}
	h.closed = true
	close(h.latest)
	s.mu.Unlock()
	t := time.AfterFunc(timeout, h.cancel)
	defer t.Stop()
	<-h.done
	h.cancel()
}
