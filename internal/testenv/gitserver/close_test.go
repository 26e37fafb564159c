package gitserver_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"meridian.dev/meridian/internal/testenv/gitserver"
)

// hold is how long the tests keep work in flight while Close runs: longer
// than the five seconds Close used to allow before it failed with "context
// deadline exceeded", which a loaded machine reached with ordinary requests.
const hold = 6 * time.Second

// startSlowUploadPack starts a fetch request whose body the client sends only
// when send is written to and closed, and returns once the server is
// answering it: it has asked for the body (100 Continue). The request's result
// arrives on done.
func startSlowUploadPack(t *testing.T, s *gitserver.Server, repo string) (send *io.PipeWriter, done <-chan httpResult) {
	t.Helper()
	body, send := io.Pipe()
	t.Cleanup(func() { send.Close() })
	reading := make(chan struct{})
	trace := &httptrace.ClientTrace{Got100Continue: func() { close(reading) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), http.MethodPost, s.URL(repo)+"/git-upload-pack", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
	req.Header.Set("Expect", "100-continue")
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	results := make(chan httpResult, 1)
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			results <- httpResult{err: err}
			return
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		results <- httpResult{status: resp.StatusCode, err: err}
	}()
	select {
	case <-reading:
	case r := <-results:
		t.Fatalf("the request ended before the server read its body: status %d, %v", r.status, r.err)
	}
	return send, results
}

type httpResult struct {
	status int
	err    error
}

// closeAsync calls s.Close on another goroutine.
func closeAsync(s *gitserver.Server) <-chan error {
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	return closed
}

// stillClosing fails the test when Close returns within hold.
func stillClosing(t *testing.T, closed <-chan error) {
	t.Helper()
	select {
	case err := <-closed:
		t.Fatalf("Close returned while work was in flight: %v", err)
	case <-time.After(hold):
	}
}

// TestCloseWaitsForHTTPRequest closes the server while a fetch is in flight:
// Close returns only after the request finished, and reports no error.
func TestCloseWaitsForHTTPRequest(t *testing.T) {
	t.Parallel()
	s, err := gitserver.Start(t.Context(), gitserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRepo("fleet.git"); err != nil {
		t.Fatal(err)
	}
	send, done := startSlowUploadPack(t, s, "fleet.git")
	closed := closeAsync(s)
	stillClosing(t, closed)

	if _, err := io.WriteString(send, "0000"); err != nil { // wants nothing
		t.Fatal(err)
	}
	send.Close()
	if r := <-done; r.err != nil || r.status != http.StatusOK {
		t.Errorf("the request in flight: status %d, error %v; want 200 and no error", r.status, r.err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Service != "git-upload-pack" || reqs[0].Status != http.StatusOK || reqs[0].BytesIn != 4 {
		t.Errorf("Requests() = %+v, want the one upload-pack POST, answered 200 with its 4 bytes read", reqs)
	}
	if _, err := s.CreateRepo("late.git"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("CreateRepo after Close: error %v, want one saying the server is closed", err)
	}
}

// TestCloseWaitsForSSHSession closes the server while an SSH session runs
// git-upload-pack: Close returns only after the session ended, and the client
// gets the service's exit status.
func TestCloseWaitsForSSHSession(t *testing.T) {
	t.Parallel()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gitserver.Start(t.Context(), gitserver.Options{SSHAuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRepo("fleet.git"); err != nil {
		t.Fatal(err)
	}
	client, err := ssh.Dial("tcp", s.SSHAddr(), &ssh.ClientConfig{
		User:            "git",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(s.SSHHostKey()),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := session.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := session.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := session.Start("git-upload-pack '/fleet.git'"); err != nil {
		t.Fatal(err)
	}
	if err := readAdvertisement(bufio.NewReader(stdout)); err != nil {
		t.Fatal(err)
	}

	closed := closeAsync(s) // git-upload-pack now waits for the client's wants
	stillClosing(t, closed)

	if _, err := io.WriteString(stdin, "0000"); err != nil { // wants nothing
		t.Fatal(err)
	}
	stdin.Close()
	if err := session.Wait(); err != nil {
		t.Errorf("the session in flight: %v; want exit status 0", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Transport != "ssh" || reqs[0].Service != "git-upload-pack" || reqs[0].Status != 0 {
		t.Errorf("Requests() = %+v, want the one SSH git-upload-pack, exit status 0", reqs)
	}
}

// readAdvertisement reads git pkt-lines up to the first flush-pkt: what
// git-upload-pack sends before it waits for the client.
func readAdvertisement(r *bufio.Reader) error {
	for {
		var size [4]byte
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return fmt.Errorf("reading the advertisement: %w", err)
		}
		n, err := strconv.ParseUint(string(size[:]), 16, 16)
		if err != nil {
			return fmt.Errorf("reading the advertisement: pkt-line length %q: %w", size, err)
		}
		if n == 0 {
			return nil
		}
		if n < 4 {
			return fmt.Errorf("reading the advertisement: pkt-line length %d", n)
		}
		if _, err := r.Discard(int(n) - 4); err != nil {
			return fmt.Errorf("reading the advertisement: %w", err)
		}
	}
}

// TestCloseUnusedConnection closes the server while a client holds a
// connection on which it sent nothing: Close closes it at once instead of
// waiting for a request, and reports no error.
func TestCloseUnusedConnection(t *testing.T) {
	t.Parallel()
	s, err := gitserver.Start(t.Context(), gitserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.BaseURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	if n, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Errorf("reading the unused connection after Close: %d bytes, %v; want it closed", n, err)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// TestCloseGivesUp closes a server whose CloseTimeout is shorter than the
// request in flight: Close stops the request and says which it was.
func TestCloseGivesUp(t *testing.T) {
	t.Parallel()
	s, err := gitserver.Start(t.Context(), gitserver.Options{CloseTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRepo("fleet.git"); err != nil {
		t.Fatal(err)
	}
	send, done := startSlowUploadPack(t, s, "fleet.git") // sends its body only when stopped
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	select {
	case err := <-closeAsync(s):
		want := "gitserver: close: after waiting 200ms, 1 still running: HTTP POST /fleet.git/git-upload-pack; stopped them"
		if err == nil || err.Error() != want {
			t.Errorf("Close: error %v, want %q", err, want)
		}
	case <-ctx.Done():
		t.Fatal("Close did not return after stopping the request")
	}
	send.Close() // the client waits for its body to be sent before it reports the failure
	if r := <-done; r.err == nil {
		t.Errorf("the stopped request succeeded: status %d", r.status)
	}
}
