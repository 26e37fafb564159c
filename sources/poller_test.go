package sources

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"meridian.dev/meridian/internal/testenv/gitserver"
)

// next receives an update or fails the test after a while.
func next(t *testing.T, updates <-chan Update) Update {
	t.Helper()
	select {
	case u, ok := <-updates:
		if !ok {
			t.Fatal("updates closed")
		}
		return u
	case <-time.After(20 * time.Second):
		t.Fatal("no update within 20s")
	}
	return Update{}
}

// quiet fails the test if an update arrives within d.
func quiet(t *testing.T, updates <-chan Update, d time.Duration) {
	t.Helper()
	select {
	case u := <-updates:
		t.Errorf("unexpected update: snapshot %v, error %v", u.Snapshot, u.Err)
	case <-time.After(d):
	}
}

// TestPollerWebhook checks that the poller fetches at once when started, and
// that one valid push notification triggers exactly one fetch, which finds
// the pushed commit.
func TestPollerWebhook(t *testing.T) {
	t.Parallel()
	s, w := newRepo(t, gitserver.Options{})
	first := push(t, w, "one", map[string]string{"a": "1"})
	g := newGit(t, GitOptions{URL: s.URL(repoName), Ref: Ref{Branch: "main"}})
	wh, err := NewWebhook(WebhookOptions{GitHubSecret: testGitHubSecret})
	if err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(wh)
	defer hook.Close()

	ctx, cancel := context.WithCancel(t.Context())
	p := &Poller{Source: g, Interval: time.Hour, Trigger: wh.Trigger()}
	updates := p.Watch(ctx)
	if u := next(t, updates); u.Err != nil || u.Snapshot.Revision != first {
		t.Fatalf("first update: %+v, want %s", u, first)
	}
	quiet(t, updates, 200*time.Millisecond)

	second := push(t, w, "two", map[string]string{"a": "2"})
	n := len(s.Requests())
	body := []byte(`{"ref":"refs/heads/main"}`)
	if status, _ := post(t, hook.URL, "POST", hdr(HeaderGitHubSignature, SignBody(testGitHubSecret, body), HeaderGitHubEvent, "push"), string(body)); status != 202 {
		t.Fatalf("webhook status %d, want 202", status)
	}
	u := next(t, updates)
	if u.Err != nil || u.Snapshot.Revision != second || u.Snapshot.Unchanged {
		t.Fatalf("update after the webhook: %+v, want %s", u, second)
	}
	quiet(t, updates, 300*time.Millisecond)
	if diff := cmp.Diff([]string{"GET git-upload-pack", "POST git-upload-pack"}, requestsSince(s, n)); diff != "" {
		t.Errorf("requests after one webhook (-want +got):\n%s", diff)
	}

	// An invalid notification triggers nothing.
	if status, _ := post(t, hook.URL, "POST", hdr(HeaderGitHubSignature, SignBody("wrong-secret-0123456789", body)), string(body)); status != 401 {
		t.Fatalf("webhook status %d, want 401", status)
	}
	quiet(t, updates, 300*time.Millisecond)

	cancel()
	for range updates { // closed once the poller has stopped
	}
}

// TestPollerInterval checks that the poller fetches on its interval and
// reports unchanged snapshots.
func TestPollerInterval(t *testing.T) {
	t.Parallel()
	s, w := newRepo(t, gitserver.Options{})
	head := push(t, w, "one", map[string]string{"a": "1"})
	g := newGit(t, GitOptions{URL: s.URL(repoName), Ref: Ref{Branch: "main"}})
	updates := (&Poller{Source: g, Interval: 50 * time.Millisecond}).Watch(t.Context())
	var unchanged []bool
	for range 3 {
		u := next(t, updates)
		if u.Err != nil || u.Snapshot.Revision != head {
			t.Fatalf("update %+v, want %s", u, head)
		}
		unchanged = append(unchanged, u.Snapshot.Unchanged)
	}
	if diff := cmp.Diff([]bool{false, true, true}, unchanged); diff != "" {
		t.Errorf("Unchanged of successive polls (-want +got):\n%s", diff)
	}
}

// TestPollerBackoff checks that transient errors are retried soon with
// backoff, and permanent ones only after the interval.
func TestPollerBackoff(t *testing.T) {
	t.Parallel()
	stopped := gitserver.New(t, gitserver.Options{})
	url := stopped.URL(repoName)
	if err := stopped.Close(); err != nil {
		t.Fatal(err)
	}
	down := newGit(t, GitOptions{URL: url, Ref: Ref{Branch: "main"}})
	p := &Poller{Source: down, Interval: time.Hour, MinBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond}
	updates := p.Watch(t.Context())
	var times []time.Time
	for range 5 {
		u := next(t, updates)
		if !Transient(u.Err) {
			t.Fatalf("update %+v, want a transient error", u)
		}
		times = append(times, time.Now())
	}
	// Waits are at least half the doubled backoff: 10, 20, 40, 40 ms.
	for i, minGap := range []time.Duration{10, 20, 40, 40} {
		if gap := times[i+1].Sub(times[i]); gap < minGap*time.Millisecond {
			t.Errorf("retry %d came after %v, want at least %v", i+1, gap, minGap*time.Millisecond)
		}
	}

	s, w := newRepo(t, gitserver.Options{})
	push(t, w, "one", map[string]string{"a": "1"})
	missing := newGit(t, GitOptions{URL: s.URL(repoName), Ref: Ref{Branch: "nope"}})
	updates = (&Poller{Source: missing, Interval: time.Hour, MinBackoff: time.Millisecond}).Watch(t.Context())
	if u := next(t, updates); !errors.Is(u.Err, ErrRefNotFound) {
		t.Fatalf("update %+v, want ErrRefNotFound", u)
	}
	quiet(t, updates, 300*time.Millisecond)
}
