package status

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/sources"
)

// The kinds of Event.
const (
	// EventSucceeded: the revision reached the region and became healthy there.
	EventSucceeded = "succeeded"
	// EventFailed: the region, or some of its units, failed at the revision.
	EventFailed = "failed"
	// EventHeld: the revision applied in the region but its deletions are held.
	EventHeld = "held"
)

// Event is one notification: a region's outcome of a revision.
type Event struct {
	// Kind is EventSucceeded, EventFailed or EventHeld.
	Kind string `json:"kind"`
	// Region is the region concerned.
	Region string `json:"region"`
	// Revision is the revision concerned.
	Revision string `json:"revision"`
	// Subject is the subject of the revision's commit, when known.
	Subject string `json:"subject,omitempty"`
	// Message says what happened, in one paragraph; it has been redacted.
	Message string `json:"message"`
	// At is when the pass finished.
	At time.Time `json:"at"`
}

// Text is the event as one line of a chat message.
func (e Event) Text() string {
	icon := map[string]string{EventSucceeded: "✅", EventFailed: "❌", EventHeld: "⏸️", EventUnhealthy: "⚠️", EventRecovered: "✅"}[e.Kind]
	subject := ""
	if e.Subject != "" {
		subject = " (" + e.Subject + ")"
	}
	return fmt.Sprintf("%s Meridian: revision %s%s %s in %s: %s", icon, sources.ShortRevision(e.Revision), subject, e.Kind, e.Region, e.Message)
}

// NotifierOptions configure a Notifier. The URLs are secrets of their own (a Slack
// incoming webhook's URL is its credential): they are never logged.
type NotifierOptions struct {
	// WebhookURL receives each Event as JSON (POST, application/json).
	WebhookURL string
	// SlackURL receives each Event as a Slack-compatible message: {"text": ...}.
	SlackURL string
	// Client sends the requests; nil means a client with a 10s timeout.
	Client *http.Client
	// Attempts bounds the tries of one delivery; zero means 3.
	Attempts int
	// Backoff is the wait before the second try, doubled for each next; zero
	// means 2s.
	Backoff time.Duration
	// Queue bounds the events waiting for delivery; zero means 100. Events past it
	// are dropped (and logged), so the daemon never waits for a receiver.
	Queue int
	// Log receives delivery failures. Nil discards them.
	Log *slog.Logger
}

// Notifier delivers Events to a generic JSON webhook and a Slack-compatible one,
// in order, from a goroutine of its own.
type Notifier struct {
	opts   NotifierOptions
	queue  chan Event
	done   chan struct{}
	cancel context.CancelFunc
	ctx    context.Context

	mu     sync.Mutex // guards closed and sends on queue
	closed bool
}

// NewNotifier starts a Notifier; Close stops it.
func NewNotifier(opts NotifierOptions) *Notifier {
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 3
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 2 * time.Second
	}
	if opts.Queue <= 0 {
		opts.Queue = 100
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{opts: opts, queue: make(chan Event, opts.Queue), done: make(chan struct{}), ctx: ctx, cancel: cancel}
	go n.loop()
	return n
}

// Notify queues an event for delivery; it never blocks. After Close it drops the
// event.
func (n *Notifier) Notify(e Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		n.opts.Log.Warn("notification dropped: the notifier is closed", "kind", e.Kind, "region", e.Region, "revision", e.Revision)
		return
	}
	select {
	case n.queue <- e:
	default:
		n.opts.Log.Warn("notification dropped: too many waiting", "kind", e.Kind, "region", e.Region, "revision", e.Revision)
	}
}

// Close delivers the events already queued, waiting at most timeout, then stops
// the Notifier. Later calls of Notify drop their events; later calls of Close
// return at once.
func (n *Notifier) Close(timeout time.Duration) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	close(n.queue)
	n.mu.Unlock()
	t := time.AfterFunc(timeout, n.cancel)
	defer t.Stop()
	<-n.done
	n.cancel()
}

func (n *Notifier) loop() {
	defer close(n.done)
	for e := range n.queue {
		if n.opts.WebhookURL != "" {
			n.deliver("webhook", n.opts.WebhookURL, e)
		}
		if n.opts.SlackURL != "" {
			n.deliver("slack", n.opts.SlackURL, struct {
				Text string `json:"text"`
			}{e.Text()})
		}
	}
}

// deliver POSTs body as JSON, retrying failures with backoff.
func (n *Notifier) deliver(receiver, target string, body any) {
	payload, err := json.Marshal(body)
	if err != nil {
		n.opts.Log.Error("notification not encoded", "receiver", receiver, "error", err)
		return
	}
	wait := n.opts.Backoff
	for attempt := 1; ; attempt++ {
		err = n.post(target, payload)
		if err == nil {
			return
		}
		if attempt == n.opts.Attempts || n.ctx.Err() != nil {
			break
		}
		select {
		case <-time.After(wait):
		case <-n.ctx.Done():
		}
		wait *= 2
	}
	n.opts.Log.Warn("notification not delivered", "receiver", receiver, "attempts", n.opts.Attempts, "error", err)
}

// post sends one request. Its errors never carry the URL.
func (n *Notifier) post(target string, payload []byte) error {
	req, err := http.NewRequestWithContext(n.ctx, http.MethodPost, target, bytes.NewReader(payload))
	if err != nil {
		return errors.New("the receiver's URL is not valid")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "meridian")
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			return uerr.Err
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return nil
}

// passEvents returns the notifications a pass calls for: each region's outcome of
// the revision, once per revision and outcome (a retried pass that ends the same
// way says nothing new). The caller holds s.mu for writing.
func (s *Store) passEvents(r *reconciler.Report) []Event {
	if s.opts.Notifier == nil {
		return nil
	}
	now := s.now()
	var events []Event
	for _, region := range slices.Sorted(maps.Keys(r.Regions)) {
		rr := r.Regions[region]
		if rr == nil {
			continue
		}
		e := Event{Region: region, Revision: r.Revision, At: now}
		problem, unhealthy := rr.Problem(), rr.Unhealthy()
		switch {
		case problem != nil:
			e.Kind, e.Message = EventFailed, s.clean(reconciler.OneLine(problem))
		case len(unhealthy) > 0:
			var parts []string
			for _, u := range unhealthy {
				parts = append(parts, s.clean(rr.Units[u].HealthErr.Error()))
			}
			e.Kind, e.Message = EventFailed, "not healthy: "+strings.Join(parts, "; ")
		case rr.Changes.Held != "":
			e.Kind = EventHeld
			e.Message = fmt.Sprintf("%d deletions held: %s", rr.Changes.Deletions(), s.clean(rr.Changes.Held))
		default:
			e.Kind, e.Message = EventSucceeded, "applied and healthy ("+strings.TrimPrefix(rr.Changes.String(), region+": ")+")"
		}
		key := e.Revision + " " + e.Kind
		if s.notified[region] == key {
			continue
		}
		s.notified[region] = key
		events = append(events, e)
	}
	return events
}
