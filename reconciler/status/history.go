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

// HistoryFile keeps the history in a JSON file, written whole to a temporary file
// and renamed over the old one, so that a crash leaves one or the other.
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
	data, err := json.Marshal(passes)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.Path), ".history-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), f.Path)
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

// loadHistory reads the history from Options.History, when set; a history that
// cannot be read is logged and started afresh. Every text goes through the
// Redactor again: what was stored before a secret was known is cleaned now.
func (s *Store) loadHistory() {
	if s.opts.History == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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
	for unit, p := range s.placements {
		rec.Units++
		if kindOf(unit) == KindPlacement {
			rec.Placements++
			rec.States[p.state]++
		}
	}
	s.history = append(s.history, s.cleanRecord(rec))
	if over := len(s.history) - s.opts.HistorySize; over > 0 {
		s.history = slices.Delete(s.history, 0, over)
	}
	if s.opts.History == nil {
		return nil
	}
	return slices.Clone(s.history)
}

// saveHistory hands the history to Options.History, one save at a time, in the
// order of the passes.
func (s *Store) saveHistory(passes []PassRecord) {
	if s.opts.History == nil || passes == nil {
		return
	}
	s.historyMu.Lock()
	defer s.historyMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.opts.History.Save(ctx, passes); err != nil {
		s.log.Warn("status: the history of passes could not be saved; it is kept in memory", "error", err)
	}
}
