package gitserver

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshServer serves git over SSH: it authenticates clients by public key and,
// for an exec request of git-upload-pack or git-receive-pack, runs the real
// git program on the requested repository with the session's standard streams.
type sshServer struct {
	s       *Server
	config  *ssh.ServerConfig
	hostKey ssh.PublicKey
	ln      net.Listener
	addr    string

	mu     sync.Mutex
	conns  map[net.Conn]int // each connection, with its sessions running a git service
	closed bool
	wg     sync.WaitGroup
}

// startSSH starts the SSH listener on a random port of 127.0.0.1 with a
// freshly generated Ed25519 host key.
func (s *Server) startSSH() (*sshServer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("gitserver: start ssh: generate host key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("gitserver: start ssh: host key: %w", err)
	}
	authorized := make(map[string]bool, len(s.opts.SSHAuthorizedKeys))
	for _, k := range s.opts.SSHAuthorizedKeys {
		authorized[string(k.Marshal())] = true
	}
	config := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if authorized[string(key.Marshal())] {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("gitserver: public key not authorized")
		},
	}
	config.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("gitserver: start ssh: listen: %w", err)
	}
	srv := &sshServer{
		s:       s,
		config:  config,
		hostKey: signer.PublicKey(),
		ln:      ln,
		addr:    ln.Addr().String(),
		conns:   map[net.Conn]int{},
	}
	srv.wg.Add(1)
	go srv.accept()
	return srv, nil
}

// SSHURL returns the ssh:// clone URL of the repository name, with the user
// name git, or "" when the server does not speak SSH.
func (s *Server) SSHURL(name string) string {
	if s.ssh == nil {
		return ""
	}
	return "ssh://git@" + s.ssh.addr + "/" + name
}

// SSHAddr returns the host and port the SSH listener is bound to, such as
// "127.0.0.1:41235", or "" when the server does not speak SSH.
func (s *Server) SSHAddr() string {
	if s.ssh == nil {
		return ""
	}
	return s.ssh.addr
}

// SSHHostKey returns the server's SSH host public key, or nil when the
// server does not speak SSH.
func (s *Server) SSHHostKey() ssh.PublicKey {
	if s.ssh == nil {
		return nil
	}
	return s.ssh.hostKey
}

// SSHKnownHosts returns a known_hosts line, ending in a newline, that trusts
// the server's host key for its address, or "" when the server does not
// speak SSH.
func (s *Server) SSHKnownHosts() string {
	if s.ssh == nil {
		return ""
	}
	return knownhosts.Line([]string{knownhosts.Normalize(s.ssh.addr)}, s.ssh.hostKey) + "\n"
}

func (srv *sshServer) accept() {
	defer srv.wg.Done()
	for {
		conn, err := srv.ln.Accept()
		if err != nil {
			return
		}
		srv.mu.Lock()
		if srv.closed {
			srv.mu.Unlock()
			conn.Close()
			return
		}
		srv.conns[conn] = 0
		srv.wg.Add(1)
		srv.mu.Unlock()
		go func() {
			defer srv.wg.Done()
			srv.serveConn(conn)
			srv.mu.Lock()
			delete(srv.conns, conn)
			srv.mu.Unlock()
			conn.Close()
		}()
	}
}

// stop stops accepting and closes the connections that run no git service;
// the others are closed as their last session ends (see begin). Work must
// already refuse new sessions.
func (srv *sshServer) stop() {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.closed = true
	srv.ln.Close()
	for c, sessions := range srv.conns {
		if sessions == 0 {
			c.Close()
		}
	}
}

// closeAll stops accepting and closes every connection, ending the sessions
// still running.
func (srv *sshServer) closeAll() {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.closed = true
	srv.ln.Close()
	for c := range srv.conns {
		c.Close()
	}
}

// wait waits for the goroutines of the listener and the connections to
// return, after stop or closeAll.
func (srv *sshServer) wait() { srv.wg.Wait() }

// begin records a session of conn that runs a git service as work the server's
// Close waits for, and returns the function that ends it; ok is false when the
// server is closing. After stop, the connection is closed when its last such
// session ends.
func (srv *sshServer) begin(conn net.Conn, what string) (end func(), ok bool) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	endWork, ok := srv.s.work.begin(what)
	if !ok {
		return nil, false
	}
	srv.conns[conn]++
	return func() {
		srv.mu.Lock()
		srv.conns[conn]--
		if srv.closed && srv.conns[conn] == 0 {
			conn.Close()
		}
		srv.mu.Unlock()
		endWork()
	}, true
}

func (srv *sshServer) serveConn(conn net.Conn) {
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	sconn, chans, reqs, err := ssh.NewServerConn(conn, srv.config)
	if err != nil {
		srv.s.logf("ssh handshake from %s: %v", conn.RemoteAddr(), err)
		return
	}
	defer sconn.Close()
	_ = conn.SetDeadline(time.Time{})
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only session channels are served")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv.serveSession(conn, ch, chReqs)
		}()
	}
	wg.Wait()
}

// serveSession answers env requests for GIT_PROTOCOL and one exec request of
// a git service, refusing everything else. The exec is work the server's Close
// waits for until the client has closed the session too, so that it got the
// exit status before Close closes the connection.
func (srv *sshServer) serveSession(conn net.Conn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var gitProtocol string
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if err := ssh.Unmarshal(req.Payload, &kv); err == nil && kv.Name == "GIT_PROTOCOL" {
				gitProtocol = kv.Value
				_ = req.Reply(true, nil)
				continue
			}
			_ = req.Reply(false, nil)
		case "exec":
			var cmd struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &cmd); err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			end, ok := srv.begin(conn, "SSH "+cmd.Command)
			if !ok {
				_ = req.Reply(false, nil)
				return
			}
			defer end()
			_ = req.Reply(true, nil)
			discarded := make(chan struct{})
			go func() {
				ssh.DiscardRequests(reqs)
				close(discarded)
			}()
			srv.exec(ch, cmd.Command, gitProtocol)
			_ = ch.Close()
			<-discarded // the client closed the session too, or the connection ended
			return
		default:
			_ = req.Reply(false, nil)
		}
	}
}

// exec runs the git service named by command, such as
// "git-upload-pack '/org/fleet.git'", records the session and reports the
// exit status to the client.
func (srv *sshServer) exec(ch ssh.Channel, command, gitProtocol string) {
	req := Request{Transport: "ssh", Method: "exec", Status: -1}
	defer func() { srv.s.record(req) }()
	status := uint32(1)
	defer func() {
		_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
	}()

	service, arg, _ := strings.Cut(command, " ")
	if service == "git" { // "git upload-pack '/repo'"
		var sub string
		sub, arg, _ = strings.Cut(arg, " ")
		service = "git-" + sub
	}
	repoPath, err := shellUnquote(strings.TrimSpace(arg))
	if err != nil {
		fmt.Fprintf(ch.Stderr(), "gitserver: %v\n", err)
		return
	}
	req.Path = repoPath
	if service != "git-upload-pack" && service != "git-receive-pack" {
		fmt.Fprintf(ch.Stderr(), "gitserver: only git-upload-pack and git-receive-pack are served, not %q\n", service)
		return
	}
	req.Service = service
	name := strings.TrimPrefix(repoPath, "/")
	dir, err := srv.s.repoDir(name)
	if err != nil {
		fmt.Fprintf(ch.Stderr(), "%v\n", err)
		return
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		// Answer as git does, without the server's directory in the message.
		fmt.Fprintf(ch.Stderr(), "fatal: '%s' does not appear to be a git repository\n", name)
		status = 128
		return
	}
	req.Repo = name

	env := IsolatedEnv(srv.s.homeDir)
	if gitProtocol != "" {
		env = append(env, "GIT_PROTOCOL="+gitProtocol)
	}
	cmd := exec.CommandContext(srv.s.forced, srv.s.gitPath, strings.TrimPrefix(service, "git-"), dir)
	cmd.Env = env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		fmt.Fprintf(ch.Stderr(), "gitserver: %v\n", err)
		return
	}
	out := &countingWriter{w: ch}
	cmd.Stdout = out
	var stderr bytes.Buffer
	cmd.Stderr = io.MultiWriter(ch.Stderr(), &stderr)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(ch.Stderr(), "gitserver: %v\n", err)
		return
	}
	in := &countingWriter{w: stdin}
	go func() {
		_, _ = io.Copy(in, ch)
		stdin.Close()
	}()
	err = cmd.Wait()
	req.BytesIn = in.n.Load()
	req.BytesOut = out.n.Load()
	req.Status = cmd.ProcessState.ExitCode()
	if err != nil {
		srv.s.logf("ssh %s %s: %v: %s", service, name, err, strings.TrimSpace(stderr.String()))
	}
	if req.Status >= 0 {
		status = uint32(req.Status)
	}
}

// shellUnquote undoes the single-quote shell quoting git and go-git apply to
// the repository path of an SSH command, such as '/org/fleet.git', where a
// quote inside the path is written as a backslash-escaped quote between two
// quoted parts. An unquoted argument is returned as it is.
func shellUnquote(s string) (string, error) {
	if !strings.HasPrefix(s, "'") {
		if strings.ContainsAny(s, "'\"\\ ") {
			return "", fmt.Errorf("unsupported quoting in repository path %q", s)
		}
		return s, nil
	}
	var b strings.Builder
	for len(s) > 0 {
		switch {
		case s[0] == '\'':
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return "", fmt.Errorf("unterminated quote in repository path %q", s)
			}
			b.WriteString(s[1 : 1+end])
			s = s[2+end:]
		case s[0] == '\\' && len(s) > 1:
			b.WriteByte(s[1])
			s = s[2:]
		default:
			return "", fmt.Errorf("unsupported quoting in repository path %q", s)
		}
	}
	return b.String(), nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// logf writes a line to the server's log.
func (s *Server) logf(format string, args ...any) {
	fmt.Fprintf(s.logw, "gitserver: "+format+"\n", args...)
}
