package status

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render/secrets"
)

// receiver records what the webhooks were sent.
type receiver struct {
	mu       sync.Mutex
	webhook  []Event
	slack    []string
	failures int // answer 500 this many times first
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "want a JSON POST", http.StatusBadRequest)
		return
	}
	if rc.failures > 0 {
		rc.failures--
		http.Error(w, "try again", http.StatusInternalServerError)
		return
	}
	body, _ := io.ReadAll(r.Body)
	switch r.URL.Path {
	case "/hook":
		var e Event
		if err := json.Unmarshal(body, &e); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.webhook = append(rc.webhook, e)
	case "/services/T000/B000/slack-token-in-url":
		var m map[string]string
		if err := json.Unmarshal(body, &m); err != nil || len(m) != 1 || m["text"] == "" {
			http.Error(w, "want {\"text\": ...}", http.StatusBadRequest)
			return
		}
		rc.slack = append(rc.slack, m["text"])
	default:
		http.NotFound(w, r)
	}
}

func TestNotifications(t *testing.T) {
	f := loadExampleFleet(t)
	rc := &receiver{failures: 1}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	n := NewNotifier(NotifierOptions{WebhookURL: srv.URL + "/hook", SlackURL: srv.URL + "/services/T000/B000/slack-token-in-url", Backoff: time.Millisecond})
	clock := newClock()
	s := New(Options{Now: clock.Now, Notifier: n, Redactor: secrets.NewRedactor([]string{secretValue})})

	s.ObserveRevision(commit1)
	s.ObservePass(f.readyReport(rev1), time.Second)
	s.ObservePass(f.readyReport(rev1), time.Second) // the same outcome again: nothing new
	s.ObserveRevision(commit2)
	r := f.troubledReport()
	appendHealthReason(r.Regions["ap-northeast-2"], unit("trucking/ap-northeast-2/portal"), " (DB_PASSWORD="+secretValue+")")
	s.ObservePass(r, time.Second)
	r = f.readyReport(rev2)
	setApplyError(r.Regions["eu-west-2"], unit("trucking/eu-west-2/api"), "Secret/trucking/api: apply failed: "+secretValue)
	s.ObservePass(r, time.Second)
	n.Close(5 * time.Second)

	type short struct{ Kind, Region, Revision, Subject string }
	var got []short
	for _, e := range rc.webhook {
		got = append(got, short{e.Kind, e.Region, e.Revision, e.Subject})
		if !e.At.Equal(clock.Now()) || e.Message == "" {
			t.Errorf("event %+v: want the pass's time and a message", e)
		}
	}
	want := []short{
		{EventSucceeded, "ap-northeast-2", rev1, commit1.Subject},
		{EventSucceeded, "eu-west-2", rev1, commit1.Subject},
		{EventSucceeded, "us-east-1", rev1, commit1.Subject},
		{EventFailed, "ap-northeast-2", rev2, commit2.Subject},
		{EventSucceeded, "eu-west-2", rev2, commit2.Subject},
		{EventFailed, "us-east-1", rev2, commit2.Subject},
		{EventSucceeded, "ap-northeast-2", rev2, commit2.Subject},
		{EventFailed, "eu-west-2", rev2, commit2.Subject},
		{EventSucceeded, "us-east-1", rev2, commit2.Subject},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("webhook events (-want +got):\n%s", diff)
	}
	if len(rc.slack) != len(want) {
		t.Fatalf("%d Slack messages; want %d", len(rc.slack), len(want))
	}
	if !strings.Contains(rc.slack[3], "revision "+rev2[:12]+" ("+commit2.Subject+") failed in ap-northeast-2: not healthy: Deployment/trucking/portal: failed") {
		t.Errorf("Slack message %q; want the revision, its subject, the region and why", rc.slack[3])
	}
	for i, text := range rc.slack {
		if strings.Contains(text, secretValue) || strings.Contains(mustJSON(t, rc.webhook[i]), secretValue) {
			t.Errorf("notification %d shows the secret value", i)
		}
	}
}

func TestHeldDeletionsAreNotified(t *testing.T) {
	f := loadExampleFleet(t)
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	n := NewNotifier(NotifierOptions{WebhookURL: srv.URL + "/hook"})
	s := New(Options{Notifier: n})
	r := f.readyReport(rev2)
	eu := r.Regions["eu-west-2"]
	for _, ch := range eu.Changes.Changes {
		if ch.Unit.Tenant == "logistics-eu" {
			setAction(eu, plan.Change{Unit: ch.Unit, Action: plan.Prune, Delete: []plan.ObjectRef{{Version: "v1", Kind: "ConfigMap", Namespace: "logistics-eu", Name: "c"}}})
		}
	}
	eu.Changes.Held = "the revision deletes tenant namespace logistics-eu/eu-west-2; to let this revision through, end its commit message with the trailer \"Meridian-Allow-Mass-Deletion: true\""
	s.ObservePass(r, time.Second)
	n.Close(5 * time.Second)
	var held []Event
	for _, e := range rc.webhook {
		if e.Kind == EventHeld {
			held = append(held, e)
		}
	}
	if len(held) != 1 || held[0].Region != "eu-west-2" || !strings.Contains(held[0].Message, "3 deletions held: the revision deletes tenant namespace logistics-eu/eu-west-2") {
		t.Errorf("held events = %+v; want one for eu-west-2 with the count and the reason", held)
	}
}

func TestNotifierNeverLogsItsURL(t *testing.T) {
	var logs strings.Builder
	n := NewNotifier(NotifierOptions{
		SlackURL: "http://127.0.0.1:1/services/T000/B000/slack-token-in-url",
		Attempts: 2, Backoff: time.Millisecond,
		Log: slogTo(&logs),
	})
	n.Notify(Event{Kind: EventFailed, Region: "r", Revision: rev1, Message: "x"})
	n.Close(5 * time.Second)
	n.Notify(Event{Kind: EventFailed, Region: "r", Revision: rev2, Message: "after close"}) // dropped, no panic
	n.Close(time.Second)
	if !strings.Contains(logs.String(), "the notifier is closed") {
		t.Errorf("an event after Close was not reported dropped: %s", logs.String())
	}
	if !strings.Contains(logs.String(), "notification not delivered") {
		t.Fatalf("no delivery failure logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), "slack-token-in-url") {
		t.Errorf("the log shows the receiver's URL: %s", logs.String())
	}
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
