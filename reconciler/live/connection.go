package live

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"k8s.io/client-go/rest"
)

// Connection follows whether the API server answers a watch's requests.
// client-go's reflector takes a refused connection for an API server restarting
// and retries its watch quietly, without telling the watch's error handler: the
// informer goes on holding what it last saw. Connection sees those failures in
// the transport, so that what it holds is not served as the truth while the
// region does not answer. It is safe for concurrent use.
type Connection struct {
	mu   sync.Mutex
	err  error
	down func()
}

// Wrap returns a copy of cfg whose requests Connection follows: one that fails
// to reach the API server marks the connection down (and calls onDown, if set, on
// the change), and one answered marks it up again.
func (c *Connection) Wrap(cfg *rest.Config, onDown func()) *rest.Config {
	c.mu.Lock()
	c.down = onDown
	c.mu.Unlock()
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return connectionTransport{rt: rt, c: c}
	})
	return cfg
}

// Err returns why the API server did not answer the last request, or nil.
func (c *Connection) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Connection) observe(err error) {
	c.mu.Lock()
	was := c.err
	c.err = err
	down := c.down
	c.mu.Unlock()
	if was == nil && err != nil && down != nil {
		down()
	}
}

type connectionTransport struct {
	rt http.RoundTripper
	c  *Connection
}

func (t connectionTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	switch {
	case err != nil && req.Context().Err() == nil && !errors.Is(err, context.Canceled):
		t.c.observe(fmt.Errorf("the API server does not answer: %w", err))
	case err == nil && resp.StatusCode < http.StatusInternalServerError:
		t.c.observe(nil)
	}
	return resp, err
}
