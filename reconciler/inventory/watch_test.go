package inventory

import (
	"net/http"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/reconciler/plan"
)

// lists counts the requests that are not watches.
type lists struct {
	mu sync.Mutex
	n  int
}

func (l *lists) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTrip(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodGet && req.URL.Query().Get("watch") == "" {
				l.mu.Lock()
				l.n++
				l.mu.Unlock()
			}
			return rt.RoundTrip(req)
		})
	})
	return cfg
}

func (l *lists) take() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.n
	l.n = 0
	return n
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// TestWatch checks List from the watch on a real API server: every write of the
// Store is in the next List, without a read, and a change behind its back
// reaches it too.
func TestWatch(t *testing.T) {
	tb := testbed.New(t, testbed.Options{Regions: 1})
	ctx := t.Context()
	var reads lists
	s := newStore(t, reads.wrap(tb.Regions[0].Config))
	if err := s.Watch(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	web := plan.Inventory{Unit: unit("t1/us-east-1/web"), Digest: "sha256:1", Revision: "rev1", Objects: refs("a", "b")}
	api := plan.Inventory{Unit: unit("t1/us-east-1/api"), Digest: "sha256:2", Revision: "rev1", Objects: refs("c")}

	list(t, s) // the watch syncs; until then List reads the API server
	for _, inv := range []plan.Inventory{web, api} {
		if err := s.Put(ctx, inv); err != nil {
			t.Fatal(err)
		}
	}
	reads.take()
	// Right after the writes: the List waits for the watch to see them.
	if diff := cmp.Diff([]plan.Inventory{api, web}, list(t, s)); diff != "" {
		t.Errorf("List after two Puts (-want +got):\n%s", diff)
	}
	if err := s.Delete(ctx, api.Unit); err != nil {
		t.Fatal(err)
	}
	web.Digest = "sha256:3"
	if err := s.Put(ctx, web); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]plan.Inventory{web}, list(t, s)); diff != "" {
		t.Errorf("List after a Delete and a Put (-want +got):\n%s", diff)
	}
	if n := reads.take(); n != 0 {
		t.Errorf("Lists from the watch made %d reads, want 0", n)
	}

	// Someone deletes an inventory behind the Store's back: the watch no longer
	// holds what the Store wrote, so after waiting for it (catchUp) List reads
	// the API server, which does not have it either.
	cs := kubernetes.NewForConfigOrDie(tb.Regions[0].Config)
	if err := cs.CoreV1().ConfigMaps(Namespace).Delete(ctx, Name(web.Unit), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		got := list(t, s)
		if len(got) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the deleted inventory is still listed: %v", got)
		default:
		}
	}

	// Stopped, List reads the API server again.
	s.Stop()
	reads.take()
	if got := list(t, s); len(got) != 0 {
		t.Errorf("List after Stop = %v, want none", got)
	}
	if n := reads.take(); n == 0 {
		t.Error("List after Stop made no read")
	}
}
