package gitserver

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
)

// Request is one request the server answered: an HTTP request, or an SSH
// session that ran a git service. Tests read them to tell what a client did,
// for instance that a poll only listed references (an HTTP GET of info/refs)
// and fetched no objects (no POST to git-upload-pack).
type Request struct {
	// Transport is "http" or "ssh".
	Transport string
	// Method is the HTTP method, or "exec" for an SSH session.
	Method string
	// Path is the HTTP request path, or the repository path the SSH client
	// asked for.
	Path string
	// Repo is the repository name the request was for, as given to
	// CreateRepo, or "" when the path names none.
	Repo string
	// Service is "git-upload-pack" (fetch) or "git-receive-pack" (push), or ""
	// for anything else. For HTTP it comes from the service query parameter
	// of an info/refs request or from the last path segment of a POST.
	Service string
	// Status is the HTTP status code, or the exit status of the git service
	// run for an SSH session (-1 when it did not run).
	Status int
	// BytesIn and BytesOut count the bytes of the request body and response
	// body (for SSH, what the client sent to and received from the git
	// service).
	BytesIn, BytesOut int64
}

// Requests returns every request answered so far, oldest first, including
// refused ones. Requests still in progress are not included.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func (s *Server) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r)
}

// splitGitPath splits a smart HTTP request path such as
// "/org/fleet.git/info/refs" into the repository name and the git endpoint
// ("info/refs", "git-upload-pack" or "git-receive-pack"). A path naming no
// endpoint yields the path without its leading slash and "".
func splitGitPath(p string) (repo, endpoint string) {
	p = strings.TrimPrefix(p, "/")
	for _, e := range []string{"info/refs", "git-upload-pack", "git-receive-pack"} {
		if r, ok := strings.CutSuffix(p, "/"+e); ok {
			return r, e
		}
	}
	return p, ""
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.ReadCloser
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

// countingResponseWriter remembers the status code and counts the body bytes
// written through it.
type countingResponseWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	n           int64
}

func (c *countingResponseWriter) WriteHeader(code int) {
	if !c.wroteHeader {
		c.status = code
		c.wroteHeader = true
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingResponseWriter) Write(p []byte) (int, error) {
	c.wroteHeader = true
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// Flush lets git http-backend stream through the writer.
func (c *countingResponseWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
