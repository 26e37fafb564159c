package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"k8s.io/client-go/rest"
)

// Connection follows whether the API server answers a watch's requests.
// client-go's reflector takes a refused connection for an API server restarting
// and retries its watch quietly, without telling the watch's error handler, and
// after a watch that ended it may wait (its backoff) before it asks again: the
// informer goes on holding what it last saw. Connection sees those failures in
// the transport, so that what it holds is not served as the truth while the
// region does not answer.
//
// It marks the connection down at the first request that does not reach the API
// server and at the first response body (a watch's stream) cut by a broken
// connection, whether or not the reflector asks again; and up again only at a
// response to a request sent after the last failure, so that a response already
// on its way when the API server died does not hide its death. It is safe for
// concurrent use.
type Connection struct {
	mu   sync.Mutex
	err  error
	down func()
	// failures counts the failures seen; a request answered marks the
	// connection up only if none was seen since it was sent.
	failures uint64
}

// Wrap returns a copy of cfg whose requests Connection follows: one that fails
// to reach the API server, or whose response is cut, marks the connection down
// (and calls onDown, if set, on the change), and one sent since and answered
// marks it up again.
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

// sent returns the count of failures seen so far, for answered.
func (c *Connection) sent() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failures
}

// answered marks the connection up, unless a failure was seen since the request
// was sent (sent returned failures).
func (c *Connection) answered(failures uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failures == failures {
		c.err = nil
	}
}

// failed marks the connection down.
func (c *Connection) failed(err error) {
	c.mu.Lock()
	was := c.err
	c.err = err
	c.failures++
	down := c.down
	c.mu.Unlock()
	if was == nil && down != nil {
		down()
	}
}

type connectionTransport struct {
	rt http.RoundTripper
	c  *Connection
}

func (t connectionTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	failures := t.c.sent()
	resp, err := t.rt.RoundTrip(req)
	switch {
	case err != nil:
		if !cancelled(req, err) {
			t.c.failed(fmt.Errorf("the API server does not answer: %w", err))
		}
	case resp.StatusCode < http.StatusInternalServerError:
		t.c.answered(failures)
		resp.Body = &followedBody{ReadCloser: resp.Body, req: req, c: t.c}
	}
	return resp, err
}

// cancelled reports whether err is the request's own cancellation, not the API
// server's failure.
func cancelled(req *http.Request, err error) bool {
	return req.Context().Err() != nil || errors.Is(err, context.Canceled)
}

// followedBody is a response body whose reading Connection follows: a watch's
// stream cut by a broken connection (the API server died) marks the connection
// down at once, before the reflector asks again. The end of a stream the API
// server closed (io.EOF) and a read after the client closed the body are not
// failures.
type followedBody struct {
	io.ReadCloser
	req *http.Request
	c   *Connection

	mu     sync.Mutex
	closed bool
}

func (b *followedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && !cancelled(b.req, err) {
		b.mu.Lock()
		closed := b.closed
		b.mu.Unlock()
		if !closed {
			b.c.failed(fmt.Errorf("the API server's answer was cut: %w", err))
		}
	}
	return n, err
}

func (b *followedBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return b.ReadCloser.Close()
}
