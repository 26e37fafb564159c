package status

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/kubernetes/fake"

	"meridian.dev/meridian/render/secrets"
)

func TestHistoryIsKeptAcrossARestart(t *testing.T) {
	f := loadExampleFleet(t)
	file := HistoryFile{Path: filepath.Join(t.TempDir(), "status", "history.json")}
	clock := newClock()
	s := New(Options{Now: clock.Now, History: file, Redactor: secrets.NewRedactor([]string{secretValue})})
	s.ObserveRevision(commit1)
	s.ObservePass(f.readyReport(rev1), 42*time.Second)
	clock.Add(time.Minute)
	s.ObserveRevision(commit2)
	leaky := f.troubledReport()
	setApplyError(leaky.Regions["eu-west-2"], unit("trucking/eu-west-2/worker"), "Secret/trucking/worker: invalid data DB_PASSWORD="+secretValue)
	s.ObservePass(leaky, 5*time.Minute)
	before := s.History()
	s.Close(10 * time.Second)

	if len(before) != 2 || before[0].Revision != rev2 || before[1].Revision != rev1 || before[0].Converged || !before[1].Converged {
		t.Fatalf("history before the restart = %+v; want rev2 (did not converge), then rev1 (converged)", before)
	}
	// The example's 14 placements, 6 namespace units and 3 addon units; the
	// troubled pass keeps a placement that left the fleet (its deletion held).
	if before[0].Subject != commit2.Subject || before[0].Author != commit2.Author || before[1].Placements != 14 || before[1].Units != 23 || before[0].Placements != 15 {
		t.Errorf("newest pass = %s by %s; placements %d then %d, units %d; want %q by %s, 14 then 15 placements, 23 units",
			before[0].Subject, before[0].Author, before[1].Placements, before[0].Placements, before[1].Units, commit2.Subject, commit2.Author)
	}
	if before[0].States[Failed] == 0 || before[1].States[Ready] != 14 {
		t.Errorf("states = %v then %v; want 14 Ready, then some Failed", before[1].States, before[0].States)
	}
	if want := clock.Now().Add(-5 * time.Minute); !before[0].Start.Equal(want) || before[0].DurationSeconds != 300 {
		t.Errorf("newest pass started %v and took %vs; want %v and 300s", before[0].Start, before[0].DurationSeconds, want)
	}
	data, err := os.ReadFile(file.Path)
	if err != nil {
		t.Fatalf("the history was not saved: %v", err)
	}
	if bytes.Contains(data, []byte(secretValue)) {
		t.Error("the saved history holds a secret value")
	}
	if !bytes.Contains(data, []byte(secrets.Redacted)) {
		t.Error("the saved history does not show where the secret was redacted: the test did not feed it")
	}

	// The daemon restarts: a new Store reads the same file.
	after := New(Options{Now: clock.Now, History: file})
	defer after.Close(10 * time.Second)
	if diff := cmp.Diff(before, after.History()); diff != "" {
		t.Errorf("history after the restart (-before +after):\n%s", diff)
	}
	srv := httptest.NewServer(after.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/history")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var served []PassRecord
	if err := json.NewDecoder(resp.Body).Decode(&served); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, served); diff != "" {
		t.Errorf("/api/v1/history after the restart (-want +got):\n%s", diff)
	}

	// The next pass adds to what was read.
	clock.Add(time.Minute)
	after.ObservePass(f.readyReport(rev2), 30*time.Second)
	if h := after.History(); len(h) != 3 || h[0].Revision != rev2 || !h[0].Converged {
		t.Errorf("history after one more pass has %d passes, newest %+v; want 3, rev2 converged first", len(h), h[0])
	}
}

func TestHistoryIsBounded(t *testing.T) {
	f := loadExampleFleet(t)
	file := HistoryFile{Path: filepath.Join(t.TempDir(), "history.json")}
	s := New(Options{History: file, HistorySize: 3})
	for i := range 5 {
		s.ObservePass(f.readyReport([]string{rev1, rev2}[i%2]), time.Duration(i+1)*time.Second)
	}
	s.Close(10 * time.Second)
	var got []float64
	for _, p := range New(Options{History: file, HistorySize: 2}).History() {
		got = append(got, p.DurationSeconds)
	}
	// The file keeps the last 3; a Store that keeps 2 reads the newest 2.
	if diff := cmp.Diff([]float64{5, 4}, got); diff != "" {
		t.Errorf("durations of the passes kept (-want +got):\n%s", diff)
	}
	var saved []PassRecord
	data, err := os.ReadFile(file.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &saved); err != nil || len(saved) != 3 {
		t.Errorf("the file holds %d passes (%v); want 3", len(saved), err)
	}
	long := string(bytes.Repeat([]byte("x"), 5*maxHistoryText))
	s.ObserveRefused(commit1, nil)
	r := f.readyReport(rev1)
	setApplyError(r.Regions["us-east-1"], unit("trucking/us-east-1/portal"), long)
	s.ObservePass(r, time.Second)
	if p := s.History()[0]; len(p.Problems) > maxHistoryText+len("…") {
		t.Errorf("a pass's problems take %d bytes in the history; want at most %d", len(p.Problems), maxHistoryText)
	}
}

func TestHistoryRedactsWhatItReads(t *testing.T) {
	file := HistoryFile{Path: filepath.Join(t.TempDir(), "history.json")}
	// A history saved before the secret was known to the Redactor.
	if err := file.Save(t.Context(), []PassRecord{{Revision: rev1, Problems: "us-east-1: token " + secretValue, Regions: []RegionOutcome{{Name: "us-east-1", State: "failed", Error: "token " + secretValue}}}}); err != nil {
		t.Fatal(err)
	}
	s := New(Options{History: file, Redactor: secrets.NewRedactor([]string{secretValue})})
	got, _ := json.Marshal(s.History())
	if bytes.Contains(got, []byte(secretValue)) || !bytes.Contains(got, []byte(rev1)) {
		t.Errorf("history read = %s; want the pass without the secret", got)
	}
}

func TestAnUnreadableHistoryStartsAfresh(t *testing.T) {
	file := HistoryFile{Path: filepath.Join(t.TempDir(), "history.json")}
	if err := os.WriteFile(file.Path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	s := New(Options{History: file, Log: slogTo(&logged)})
	if h := s.History(); len(h) != 0 {
		t.Errorf("history = %v; want none", h)
	}
	if !bytes.Contains(logged.Bytes(), []byte("could not be read")) {
		t.Errorf("log = %q; want the unreadable history said", logged.String())
	}
	if _, err := (HistoryFile{Path: filepath.Join(t.TempDir(), "none.json")}).Load(t.Context()); err != nil {
		t.Errorf("a missing file: %v; want an empty history", err)
	}
	if err := (HistoryFile{Path: "/dev/null/history.json"}).Save(t.Context(), nil); err == nil {
		t.Error("saving under a file that is not a directory did not fail")
	}
}

// blockingHistory is a HistoryStore whose saves wait for release, recording the
// passes each one was given.
type blockingHistory struct {
	started chan int
	release chan struct{}
	mu      sync.Mutex
	saved   [][]float64
}

func (b *blockingHistory) Load(context.Context) ([]PassRecord, error) { return nil, nil }

func (b *blockingHistory) Save(ctx context.Context, passes []PassRecord) error {
	b.started <- len(passes)
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	var durations []float64
	for _, p := range passes {
		durations = append(durations, p.DurationSeconds)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.saved = append(b.saved, durations)
	return nil
}

func TestASlowHistoryStoreHoldsNoPass(t *testing.T) {
	f := loadExampleFleet(t)
	h := &blockingHistory{started: make(chan int, 10), release: make(chan struct{})}
	s := New(Options{History: h})
	s.ObservePass(f.readyReport(rev1), 1*time.Second)
	<-h.started // the first save hangs
	passed := make(chan struct{})
	go func() {
		defer close(passed)
		s.ObservePass(f.readyReport(rev1), 2*time.Second)
		s.ObservePass(f.readyReport(rev1), 3*time.Second)
	}()
	select {
	case <-passed:
	case <-time.After(10 * time.Second):
		t.Fatal("passes waited for a hanging save of the history")
	}
	close(h.release)
	s.Close(10 * time.Second)
	// The second pass's history was replaced by the third's before it was saved.
	if diff := cmp.Diff([][]float64{{1}, {1, 2, 3}}, h.saved); diff != "" {
		t.Errorf("histories saved, in order (-want +got):\n%s", diff)
	}

	// Close does not wait longer than it is told for a save that hangs.
	h = &blockingHistory{started: make(chan int, 10), release: make(chan struct{})}
	s = New(Options{History: h})
	s.ObservePass(f.readyReport(rev1), time.Second)
	<-h.started
	start := time.Now()
	s.Close(100 * time.Millisecond)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v with a hanging save; want about its timeout", d)
	}
	s.ObservePass(f.readyReport(rev1), time.Second) // after Close: kept in memory, not sent
	if n := len(s.History()); n != 2 {
		t.Errorf("history after Close has %d passes; want 2", n)
	}
}

func TestHistoryFileIsBoundedInBytes(t *testing.T) {
	file := HistoryFile{Path: filepath.Join(t.TempDir(), "history.json")}
	var big []PassRecord
	for i := range 2000 {
		big = append(big, PassRecord{Revision: rev1, Start: time.Unix(int64(i), 0), Problems: strings.Repeat("x", maxHistoryText)})
	}
	if err := file.Save(t.Context(), big); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file.Path)
	if err != nil {
		t.Fatal(err)
	}
	var kept []PassRecord
	if err := json.Unmarshal(data, &kept); err != nil {
		t.Fatal(err)
	}
	if len(data) > MaxHistoryBytes || len(kept) == 0 || kept[len(kept)-1].Start.Unix() != 1999 {
		t.Errorf("the file holds %d bytes, %d passes; want at most %d bytes, the newest passes", len(data), len(kept), MaxHistoryBytes)
	}
}

// TestHistoryConfigMapKeepsWhatTheStoreKeeps: a HistoryConfigMap without Keep
// keeps as many passes, all replicas together, as the Store's HistorySize.
func TestHistoryConfigMapKeepsWhatTheStoreKeeps(t *testing.T) {
	f := loadExampleFleet(t)
	client := fake.NewClientset()
	cm := HistoryConfigMap{Client: client.CoreV1(), Namespace: "meridian-system", Name: "meridian-status-history"}
	var old []PassRecord
	for i := range 3 {
		old = append(old, PassRecord{Revision: rev1, Start: time.Unix(int64(i), 0), DurationSeconds: float64(i + 1)})
	}
	if err := cm.Save(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	s := New(Options{History: cm, HistorySize: 2})
	s.ObservePass(f.readyReport(rev1), 10*time.Second)
	s.Close(10 * time.Second)
	cm.Keep = 100
	saved, err := cm.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []float64
	for _, p := range saved {
		got = append(got, p.DurationSeconds)
	}
	if diff := cmp.Diff([]float64{3, 10}, got); diff != "" {
		t.Errorf("passes in the ConfigMap by duration (-want +got):\n%s", diff)
	}
}
