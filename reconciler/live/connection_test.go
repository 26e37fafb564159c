package live

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"k8s.io/client-go/rest"
)

// fakeServer answers each request with its next answer.
type fakeServer struct {
	answers []func(*http.Request) (*http.Response, error)
}

func (f *fakeServer) RoundTrip(req *http.Request) (*http.Response, error) {
	a := f.answers[0]
	f.answers = f.answers[1:]
	return a(req)
}

func ok(body io.ReadCloser) func(*http.Request) (*http.Response, error) {
	return func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Body: body}, nil
	}
}

func refused(*http.Request) (*http.Response, error) {
	return nil, syscall.ECONNREFUSED
}

// cutBody is a watch's stream: its content, then err.
type cutBody struct {
	r   io.Reader
	err error
}

func (b *cutBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		err = b.err
	}
	return n, err
}

func (b *cutBody) Close() error { return nil }

func stream(err error) io.ReadCloser {
	return &cutBody{r: strings.NewReader(`{"type":"BOOKMARK"}`), err: err}
}

// TestConnection checks what marks a region's connection down and up: it must
// go down when a watch's stream is cut, without waiting for the reflector's next
// request, and a response to a request sent before a failure must not bring it
// up again.
func TestConnection(t *testing.T) {
	get := func(t *testing.T, rt http.RoundTripper) (*http.Response, error) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "https://region.invalid/api/v1/configmaps?watch=true", nil)
		if err != nil {
			t.Fatal(err)
		}
		return rt.RoundTrip(req)
	}
	wrap := func(c *Connection, server http.RoundTripper) http.RoundTripper {
		return c.Wrap(&rest.Config{}, nil).WrapTransport(server)
	}

	t.Run("a refused request marks it down, an answered one up", func(t *testing.T) {
		var c Connection
		rt := wrap(&c, &fakeServer{answers: []func(*http.Request) (*http.Response, error){refused, ok(stream(io.EOF))}})
		if _, err := get(t, rt); err == nil {
			t.Fatal("the refused request succeeded")
		}
		if c.Err() == nil {
			t.Fatal("up after a refused request")
		}
		if _, err := get(t, rt); err != nil {
			t.Fatal(err)
		}
		if err := c.Err(); err != nil {
			t.Fatalf("down after an answer: %v", err)
		}
	})

	t.Run("a stream cut by a broken connection marks it down", func(t *testing.T) {
		var c Connection
		rt := wrap(&c, &fakeServer{answers: []func(*http.Request) (*http.Response, error){ok(stream(io.ErrUnexpectedEOF))}})
		resp, err := get(t, rt)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("read the stream: %v", err)
		}
		if c.Err() == nil {
			t.Error("up after its watch's stream was cut")
		}
	})

	t.Run("a stream the server ends, or the client closes, leaves it up", func(t *testing.T) {
		var c Connection
		rt := wrap(&c, &fakeServer{answers: []func(*http.Request) (*http.Response, error){
			ok(stream(io.EOF)), ok(stream(errors.New("http2: response body closed"))),
		}})
		resp, err := get(t, rt)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(resp.Body); err != nil {
			t.Fatal(err)
		}
		resp, err = get(t, rt)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		io.ReadAll(resp.Body) //nolint:errcheck // the read after Close fails, as the stream's reader does
		if err := c.Err(); err != nil {
			t.Errorf("down: %v", err)
		}
	})

	t.Run("an answer to a request sent before a failure leaves it down", func(t *testing.T) {
		var c Connection
		release := make(chan struct{})
		sent := make(chan struct{})
		server := &fakeServer{answers: []func(*http.Request) (*http.Response, error){
			func(*http.Request) (*http.Response, error) {
				close(sent)
				<-release // the API server dies while this answer is on its way
				return &http.Response{StatusCode: http.StatusOK, Body: stream(io.EOF)}, nil
			},
		}}
		rt := wrap(&c, server)
		req, err := http.NewRequest(http.MethodGet, "https://region.invalid/api/v1/configmaps", nil)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() {
			_, err := rt.RoundTrip(req)
			done <- err
		}()
		<-sent
		c.failed(errors.New("the API server does not answer"))
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if c.Err() == nil {
			t.Error("up after an answer sent before the failure")
		}
	})
}
