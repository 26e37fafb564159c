package gitserver

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cgi"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"meridian.dev/meridian/internal/testenv/syncbuf"
)

// realm is the realm named in WWW-Authenticate challenges.
const realm = "meridian-gitserver"

// maxChunkedBody bounds a request body sent with chunked transfer encoding,
// which the server buffers before handing it to git http-backend.
const maxChunkedBody = 512 << 20

// Options configures a Server. The zero value serves plain HTTP without
// authentication.
type Options struct {
	// Username and Password, when Username is not empty, make the server
	// accept HTTP basic authentication with exactly these credentials.
	Username string
	// Password is the basic authentication password; see Username.
	Password string
	// BearerToken, when not empty, makes the server accept an
	// "Authorization: Bearer <token>" header carrying exactly this token.
	//
	// When Username or BearerToken is set, a request that carries none of the
	// accepted credentials is answered 401 Unauthorized with a
	// WWW-Authenticate challenge for each accepted scheme. When both are set,
	// either credential is enough.
	BearerToken string
	// TLS makes the server speak HTTPS with a certificate signed by a
	// certificate authority generated for this server alone; see Server.CAPEM
	// and Server.CAFile.
	TLS bool
	// Log receives what git http-backend writes to standard error and the
	// HTTP server's own error messages. Nil discards them. Writes to Log are
	// serialised.
	Log io.Writer
	// SSHAuthorizedKeys, when not empty, makes the server also speak git over
	// SSH on a second port of 127.0.0.1, accepting a client that proves it
	// holds the private key of one of these public keys (any user name). See
	// Server.SSHURL and Server.SSHKnownHosts.
	SSHAuthorizedKeys []ssh.PublicKey
	// CloseTimeout bounds how long Close waits for the requests, SSH sessions
	// and git commands in flight before it stops them and reports what was
	// still running. Zero means DefaultCloseTimeout; New uses the time left
	// before the test's deadline instead, so a slow machine never fails a
	// test that would have passed.
	CloseTimeout time.Duration
}

// DefaultCloseTimeout is how long Close waits for the work in flight unless
// Options.CloseTimeout says otherwise: far longer than any git request of a
// test takes on a loaded machine, so that only a hang reaches it.
const DefaultCloseTimeout = 5 * time.Minute

// Server is a git smart HTTP server for tests, backed by git http-backend and
// a temporary directory of bare repositories. Its methods are safe for
// concurrent use.
type Server struct {
	opts        Options
	gitPath     string
	dir         string // temporary directory holding everything below
	reposDir    string // GIT_PROJECT_ROOT
	homeDir     string // HOME of every git process
	workDir     string // parent of Workdir clones
	caPEM       []byte
	caFile      string
	baseURL     string
	backend     *cgi.Handler
	httpServer  *http.Server
	served      chan struct{}
	workdirs    atomic.Int64
	closeOnce   sync.Once
	closeErr    error
	logw        io.Writer   // the serialised Options.Log, or io.Discard
	ssh         *sshServer  // nil unless Options.SSHAuthorizedKeys is set
	mu          sync.Mutex  // guards stopOnClose and requests
	stopOnClose func() bool // unregisters the context.AfterFunc of Start
	requests    []Request

	work   inflight           // what Close waits for
	forced context.Context    // done when Close gives up waiting and stops the work
	force  context.CancelFunc // ends forced

	connsMu   sync.Mutex
	newConns  map[net.Conn]struct{} // HTTP connections that have not sent a byte yet
	connsShut bool                  // Close began: a new connection is closed at once
}

// Start starts a server on a random port of 127.0.0.1. The server stops, and
// its repositories are deleted, when Close is called or ctx is done, whichever
// comes first. Start fails when the git command-line tool or git http-backend
// cannot be found.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("gitserver: start: %w", err)
	}
	if opts.Username == "" && opts.Password != "" {
		return nil, errors.New("gitserver: start: password given without username")
	}
	gitPath, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("gitserver: start: find git: %w", err)
	}
	dir, err := os.MkdirTemp("", "meridian-gitserver-")
	if err != nil {
		return nil, fmt.Errorf("gitserver: start: %w", err)
	}
	s := &Server{
		opts:     opts,
		gitPath:  gitPath,
		dir:      dir,
		reposDir: filepath.Join(dir, "repos"),
		homeDir:  filepath.Join(dir, "home"),
		workDir:  filepath.Join(dir, "work"),
		served:   make(chan struct{}),
		newConns: map[net.Conn]struct{}{},
	}
	if s.opts.CloseTimeout <= 0 {
		s.opts.CloseTimeout = DefaultCloseTimeout
	}
	s.forced, s.force = context.WithCancel(context.Background())
	if err := s.start(ctx); err != nil {
		s.force()
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	s.mu.Lock()
	s.stopOnClose = context.AfterFunc(ctx, func() { _ = s.Close() })
	s.mu.Unlock()
	return s, nil
}

func (s *Server) start(ctx context.Context) error {
	for _, d := range []string{s.reposDir, s.homeDir, s.workDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("gitserver: start: %w", err)
		}
	}
	execPath, err := runGit(ctx, s.gitPath, "", s.homeDir, IsolatedEnv(s.homeDir), "--exec-path")
	if err != nil {
		return fmt.Errorf("gitserver: start: %w", err)
	}
	backendPath := filepath.Join(execPath, "git-http-backend")
	if _, err := os.Stat(backendPath); err != nil {
		return fmt.Errorf("gitserver: start: find git http-backend: %w", err)
	}

	logw := io.Discard
	if s.opts.Log != nil {
		logw = &lockedWriter{w: s.opts.Log}
	}
	s.logw = logw
	env := append(IsolatedEnv(s.homeDir),
		"GIT_PROJECT_ROOT="+s.reposDir,
		"GIT_HTTP_EXPORT_ALL=1",
		// http-backend refuses receive-pack to anonymous clients unless it is
		// switched on explicitly.
		"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=http.receivepack",
		"GIT_CONFIG_VALUE_0=true",
	)
	s.backend = &cgi.Handler{
		Path:   backendPath,
		Root:   "/",
		Dir:    s.reposDir,
		Env:    env,
		Logger: log.New(logw, "gitserver: ", 0),
		Stderr: logw,
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("gitserver: start: listen: %w", err)
	}
	scheme := "http"
	if s.opts.TLS {
		cert, caPEM, err := newCertificates(time.Now())
		if err != nil {
			ln.Close()
			return err
		}
		s.caPEM = caPEM
		s.caFile = filepath.Join(s.dir, "ca.pem")
		if err := os.WriteFile(s.caFile, caPEM, 0o644); err != nil {
			ln.Close()
			return fmt.Errorf("gitserver: start: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	s.baseURL = scheme + "://" + ln.Addr().String()
	s.httpServer = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(logw, "gitserver: ", 0),
		ConnState:         s.trackConn,
	}
	go func() {
		defer close(s.served)
		_ = s.httpServer.Serve(ln)
	}()
	if len(s.opts.SSHAuthorizedKeys) > 0 {
		ssh, err := s.startSSH()
		if err != nil {
			_ = s.httpServer.Close()
			<-s.served
			return err
		}
		s.ssh = ssh
	}
	return nil
}

// New starts a server for the duration of a test and registers its Close with
// t.Cleanup. It stops the test when the server cannot start. Unless opts.Log
// is set, the server's log is collected and written to the test log if the
// test fails.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	var buf *syncbuf.Buffer
	if opts.Log == nil {
		buf = &syncbuf.Buffer{}
		opts.Log = buf
	}
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok && opts.CloseTimeout == 0 {
		if deadline, ok := d.Deadline(); ok {
			// Most of the time left, so that a hang is reported by Close,
			// naming what hung, before the test binary panics.
			left := time.Until(deadline)
			opts.CloseTimeout = max(left-left/10, time.Second)
		}
	}
	s, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if buf != nil && t.Failed() {
			if out := buf.String(); out != "" {
				t.Logf("git server log:\n%s", out)
			}
		}
	})
	return s
}

// Close stops the server and deletes its repositories and workdirs. It stops
// listening, refuses new requests and git commands, and waits for those in
// flight — HTTP requests with their git http-backend processes, SSH sessions
// with their git processes, git commands run by the server's and its
// Workdirs' methods — however long they take, up to Options.CloseTimeout.
// Work still running then is stopped and named in the error. Connections that
// carry no request are closed at once. Calling Close more than once is
// harmless; later calls return the first call's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		stop := s.stopOnClose
		s.mu.Unlock()
		if stop != nil {
			stop()
		}
		s.closeErr = s.shutdown()
	})
	return s.closeErr
}

func (s *Server) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CloseTimeout)
	defer cancel()
	s.work.close()
	s.closeNewConns()
	shutdown := make(chan error, 1)
	go func() { shutdown <- s.httpServer.Shutdown(ctx) }()
	if s.ssh != nil {
		s.ssh.stop()
	}
	var errs []error
	if err := s.work.wait(ctx); err != nil {
		errs = append(errs, fmt.Errorf("gitserver: close: after waiting %s, %w; stopped them", s.opts.CloseTimeout, err))
		s.force()
		_ = s.httpServer.Close()
		if s.ssh != nil {
			s.ssh.closeAll()
		}
		_ = s.work.wait(context.Background()) // they end once their connections and processes are gone
	}
	if err := <-shutdown; err != nil && len(errs) == 0 {
		// No request was running, but a connection stayed active: a client
		// that never finished sending its request's header.
		errs = append(errs, fmt.Errorf("gitserver: close: after waiting %s for the HTTP connections: %w", s.opts.CloseTimeout, err))
		_ = s.httpServer.Close()
	}
	<-s.served
	if s.ssh != nil {
		s.ssh.wait()
	}
	s.force()
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, fmt.Errorf("gitserver: close: %w", err))
	}
	return errors.Join(errs...)
}

// trackConn is the HTTP server's ConnState hook: it keeps the connections that
// have not sent a byte yet, which Close closes at once instead of granting
// them net/http's five seconds to start a request.
func (s *Server) trackConn(c net.Conn, state http.ConnState) {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if state != http.StateNew {
		delete(s.newConns, c)
		return
	}
	if s.connsShut {
		c.Close()
		return
	}
	s.newConns[c] = struct{}{}
}

// closeNewConns closes the HTTP connections that have not sent a byte yet, and
// makes trackConn close those accepted from now on.
func (s *Server) closeNewConns() {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	s.connsShut = true
	for c := range s.newConns {
		c.Close()
		delete(s.newConns, c)
	}
}

// runGit runs git for one of the server's or a Workdir's methods as work that
// Close waits for, and stops it when Close stops waiting.
func (s *Server) runGit(ctx context.Context, repo, dir string, env []string, args ...string) (string, error) {
	end, ok := s.work.begin(fmt.Sprintf("git %s (repo %q)", strings.Join(args, " "), repo))
	if !ok {
		return "", fmt.Errorf("gitserver: repo %q: git %s: %w", repo, strings.Join(args, " "), errClosed)
	}
	defer end()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.forced, cancel)()
	return runGit(ctx, s.gitPath, repo, dir, env, args...)
}

// BaseURL returns the scheme, host and port the server listens on, such as
// "http://127.0.0.1:41234", without a trailing slash.
func (s *Server) BaseURL() string { return s.baseURL }

// URL returns the clone URL of the repository name, whether or not it exists.
func (s *Server) URL(name string) string {
	segs := strings.Split(name, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return s.baseURL + "/" + strings.Join(segs, "/")
}

// CreateRepo creates an empty bare repository called name whose default branch
// is main, and returns its clone URL. The name is a slash-separated relative
// path such as "fleet.git" or "org/fleet.git"; it must not exist yet.
func (s *Server) CreateRepo(name string) (string, error) {
	dir, err := s.repoDir(name)
	if err != nil {
		return "", err
	}
	end, ok := s.work.begin(fmt.Sprintf("create repo %q", name))
	if !ok {
		return "", fmt.Errorf("gitserver: repo %q: create: %w", name, errClosed)
	}
	defer end()
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("gitserver: repo %q: create: %w", name, err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("gitserver: repo %q: create: %w", name, err)
	}
	if _, err := s.runGit(context.Background(), name, dir, IsolatedEnv(s.homeDir), "init", "--quiet", "--bare", "--initial-branch=main"); err != nil {
		return "", err
	}
	return s.URL(name), nil
}

// RevParse resolves rev, such as "refs/heads/main" or "v1.0.0^{commit}", in
// the server's copy of the repository name and returns the object hash. It
// shows what a push actually left on the server.
func (s *Server) RevParse(ctx context.Context, name, rev string) (string, error) {
	dir, err := s.repoDir(name)
	if err != nil {
		return "", err
	}
	return s.runGit(ctx, name, dir, IsolatedEnv(s.homeDir), "rev-parse", "--verify", "--end-of-options", rev)
}

// CAPEM returns the PEM-encoded certificate of the authority that signed the
// server's TLS certificate, or nil when the server does not use TLS.
func (s *Server) CAPEM() []byte { return slices.Clone(s.caPEM) }

// CAFile returns the path of a file holding CAPEM, suitable for GIT_SSL_CAINFO
// or http.sslCAInfo, or "" when the server does not use TLS. The file is
// deleted by Close.
func (s *Server) CAFile() string { return s.caFile }

// Client returns an HTTP client that trusts the server's certificate
// authority. It sends no credentials.
func (s *Server) Client() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if s.caPEM != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(s.caPEM)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}
}

// GitEnv returns an environment in which the git command-line tool can fetch
// from and push to this server: IsolatedEnv with the server's private HOME,
// GIT_SSL_CAINFO naming CAFile when the server uses TLS, and, when the server
// requires authentication, an http.extraHeader carrying the configured basic
// credentials (or, without them, the bearer token), set through
// GIT_CONFIG_COUNT. Callers adding configuration through GIT_CONFIG_COUNT must
// extend the entries rather than replace them.
func (s *Server) GitEnv() []string {
	env := IsolatedEnv(s.homeDir)
	if s.caFile != "" {
		env = append(env, "GIT_SSL_CAINFO="+s.caFile)
	}
	var header string
	switch {
	case s.opts.Username != "":
		r := &http.Request{Header: http.Header{}}
		r.SetBasicAuth(s.opts.Username, s.opts.Password)
		header = "Authorization: " + r.Header.Get("Authorization")
	case s.opts.BearerToken != "":
		header = "Authorization: Bearer " + s.opts.BearerToken
	}
	if header != "" {
		env = append(env, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader", "GIT_CONFIG_VALUE_0="+header)
	}
	return env
}

// repoDir returns the directory of the repository name after checking that
// name is a clean relative path that stays inside the repository root.
func (s *Server) repoDir(name string) (string, error) {
	if name == "" || path.Clean(name) != name || !filepath.IsLocal(filepath.FromSlash(name)) || strings.Contains(name, `\`) || name == "." {
		return "", fmt.Errorf("gitserver: repo %q: invalid name: want a clean relative slash-separated path", name)
	}
	return filepath.Join(s.reposDir, filepath.FromSlash(name)), nil
}

// serveHTTP records the request and serves it, as work Close waits for.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	end, ok := s.work.begin("HTTP " + r.Method + " " + r.URL.Path)
	if !ok {
		http.Error(w, errClosed.Error(), http.StatusServiceUnavailable)
		return
	}
	defer end()
	req := Request{Transport: "http", Method: r.Method, Path: r.URL.Path}
	req.Repo, req.Service = splitGitPath(r.URL.Path)
	if req.Service == "info/refs" {
		req.Service = r.URL.Query().Get("service")
	}
	body := &countingReader{r: r.Body}
	r.Body = body
	cw := &countingResponseWriter{ResponseWriter: w, status: http.StatusOK}
	s.serveGit(cw, r)
	req.Status = cw.status
	req.BytesIn = body.n.Load()
	req.BytesOut = cw.n
	s.record(req)
}

// serveGit checks credentials and hands the request to git http-backend.
func (s *Server) serveGit(w http.ResponseWriter, r *http.Request) {
	user, ok := s.authorize(r)
	if !ok {
		if s.opts.Username != "" {
			w.Header().Add("WWW-Authenticate", `Basic realm="`+realm+`"`)
		}
		if s.opts.BearerToken != "" {
			w.Header().Add("WWW-Authenticate", `Bearer realm="`+realm+`"`)
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	// Credentials stay out of the CGI environment.
	r = r.Clone(r.Context())
	r.Header.Del("Authorization")

	// net/http/cgi rejects chunked request bodies, which git sends for pushes
	// and fetch negotiations larger than http.postBuffer. Buffer them so the
	// backend sees a CONTENT_LENGTH.
	if slices.Contains(r.TransferEncoding, "chunked") {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxChunkedBody))
		if err != nil {
			http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.TransferEncoding = nil
		r.ContentLength = int64(len(body))
		r.Body = io.NopCloser(bytes.NewReader(body))
	}

	h := s.backend
	if user != "" {
		withUser := *s.backend
		withUser.Env = append(slices.Clip(s.backend.Env), "REMOTE_USER="+user)
		h = &withUser
	}
	h.ServeHTTP(w, r)
}

// authorize reports whether r carries credentials the server accepts, and the
// basic-auth user name when that is what it carried.
func (s *Server) authorize(r *http.Request) (user string, ok bool) {
	if s.opts.Username == "" && s.opts.BearerToken == "" {
		return "", true
	}
	if s.opts.Username != "" {
		if u, p, ok := r.BasicAuth(); ok && equal(u, s.opts.Username) && equal(p, s.opts.Password) {
			return u, true
		}
	}
	if s.opts.BearerToken != "" {
		scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
		if found && strings.EqualFold(scheme, "Bearer") && equal(strings.TrimSpace(token), s.opts.BearerToken) {
			return "", true
		}
	}
	return "", false
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
