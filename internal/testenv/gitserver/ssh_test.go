package gitserver_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"meridian.dev/meridian/internal/testenv/gitserver"
)

// sshKey generates an Ed25519 key, writes its private half in OpenSSH format
// to a file the ssh client accepts, and returns the file and public key.
func sshKey(t *testing.T) (file string, pub ssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return file, signer.PublicKey()
}

// sshEnv returns an environment in which the git command-line tool reaches
// the server over OpenSSH with the key file and the known_hosts content, and
// nothing from the user's own SSH configuration.
func sshEnv(t *testing.T, keyFile, knownHosts string) []string {
	t.Helper()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(knownHosts), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := "ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes" +
		" -o UserKnownHostsFile=" + kh + " -i " + keyFile
	return append(gitserver.IsolatedEnv(t.TempDir()), "GIT_SSH_COMMAND="+cmd,
		"GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@b", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@b")
}

// TestSSH clones, pushes and fetches over SSH with OpenSSH and the git
// command-line tool, and checks that an unknown key and an unknown host key
// are refused.
func TestSSH(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no OpenSSH client on PATH")
	}
	keyFile, pub := sshKey(t)
	s := gitserver.New(t, gitserver.Options{SSHAuthorizedKeys: []ssh.PublicKey{pub}})
	if _, err := s.CreateRepo("org/fleet.git"); err != nil {
		t.Fatal(err)
	}
	w, err := s.Clone(t.Context(), "org/fleet.git")
	if err != nil {
		t.Fatal(err)
	}
	first, err := w.CommitFiles(t.Context(), "first", map[string]string{"a.yaml": "a: 1\n"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Push(t.Context()); err != nil {
		t.Fatal(err)
	}

	sshURL := s.SSHURL("org/fleet.git")
	if want := "ssh://git@" + s.SSHAddr() + "/org/fleet.git"; sshURL != want {
		t.Errorf("SSHURL = %q, want %q", sshURL, want)
	}
	if !strings.HasPrefix(s.SSHAddr(), "127.0.0.1:") {
		t.Errorf("SSHAddr = %q, want 127.0.0.1:<port>", s.SSHAddr())
	}
	env := sshEnv(t, keyFile, s.SSHKnownHosts())
	clone := filepath.Join(t.TempDir(), "clone")
	mustGit(t, env, "", "clone", "--quiet", sshURL, clone)
	if got := mustGit(t, env, clone, "rev-parse", "HEAD"); got != first {
		t.Errorf("cloned HEAD = %s, want %s", got, first)
	}

	// A push over SSH reaches the server, and a fetch over SSH brings it back.
	mustGit(t, env, clone, "commit", "--quiet", "--allow-empty", "-m", "over ssh")
	pushed := mustGit(t, env, clone, "rev-parse", "HEAD")
	mustGit(t, env, clone, "push", "--quiet", "origin", "HEAD:refs/heads/main")
	if got, err := s.RevParse(t.Context(), "org/fleet.git", "refs/heads/main"); err != nil || got != pushed {
		t.Errorf("server main = %s, %v; want %s", got, err, pushed)
	}
	if err := w.Push(t.Context()); err == nil {
		t.Errorf("push of a stale workdir succeeded, want a non-fast-forward refusal")
	}

	var sshReqs []gitserver.Request
	for _, r := range s.Requests() {
		if r.Transport == "ssh" {
			r.BytesIn, r.BytesOut = 0, 0
			sshReqs = append(sshReqs, r)
		}
	}
	want := []gitserver.Request{
		{Transport: "ssh", Method: "exec", Path: "/org/fleet.git", Repo: "org/fleet.git", Service: "git-upload-pack", Status: 0},
		{Transport: "ssh", Method: "exec", Path: "/org/fleet.git", Repo: "org/fleet.git", Service: "git-receive-pack", Status: 0},
	}
	if diff := cmp.Diff(want, sshReqs); diff != "" {
		t.Errorf("SSH requests (-want +got):\n%s", diff)
	}

	t.Run("unknown client key", func(t *testing.T) {
		t.Parallel()
		otherKey, _ := sshKey(t)
		_, stderr, err := git(t, sshEnv(t, otherKey, s.SSHKnownHosts()), "", "ls-remote", sshURL)
		if err == nil || !strings.Contains(stderr, "Permission denied (publickey)") {
			t.Errorf("ls-remote with an unknown key: err %v, stderr %q; want Permission denied (publickey)", err, stderr)
		}
	})
	t.Run("unknown host key", func(t *testing.T) {
		t.Parallel()
		other := gitserver.New(t, gitserver.Options{SSHAuthorizedKeys: []ssh.PublicKey{pub}})
		wrong := strings.Replace(other.SSHKnownHosts(), other.SSHAddr()[len("127.0.0.1:"):], s.SSHAddr()[len("127.0.0.1:"):], 1)
		_, stderr, err := git(t, sshEnv(t, keyFile, wrong), "", "ls-remote", sshURL)
		if err == nil || !strings.Contains(stderr, "Host key verification failed") {
			t.Errorf("ls-remote with a wrong host key: err %v, stderr %q; want Host key verification failed", err, stderr)
		}
	})
	t.Run("missing repository", func(t *testing.T) {
		t.Parallel()
		_, stderr, err := git(t, env, "", "ls-remote", s.SSHURL("missing.git"))
		if want := "fatal: 'missing.git' does not appear to be a git repository"; err == nil || !strings.HasPrefix(stderr, want) {
			t.Errorf("ls-remote of a missing repository: err %v, stderr %q; want %q", err, stderr, want)
		}
	})
}

// TestNoSSH checks the SSH accessors of a server that does not speak SSH.
func TestNoSSH(t *testing.T) {
	t.Parallel()
	s := gitserver.New(t, gitserver.Options{})
	if got := []string{s.SSHURL("fleet.git"), s.SSHAddr(), s.SSHKnownHosts()}; !slices.Equal(got, []string{"", "", ""}) {
		t.Errorf("SSHURL, SSHAddr, SSHKnownHosts = %q, want empty", got)
	}
	if s.SSHHostKey() != nil {
		t.Errorf("SSHHostKey = %v, want nil", s.SSHHostKey())
	}
}

// TestRequests checks the request log of a clone, a no-op fetch and a push
// over HTTP: a no-op fetch only lists references.
func TestRequests(t *testing.T) {
	t.Parallel()
	s := gitserver.New(t, gitserver.Options{BearerToken: "tok"})
	if _, err := s.CreateRepo("fleet.git"); err != nil {
		t.Fatal(err)
	}
	w, err := s.Clone(t.Context(), "fleet.git")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.CommitFiles(t.Context(), "c", map[string]string{"a": "b"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Push(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := len(s.Requests())
	// Protocol version 2 lists references with a POST; version 0 with a GET.
	if _, err := w.Git(t.Context(), "-c", "protocol.version=0", "fetch", "--quiet", "origin"); err != nil {
		t.Fatal(err)
	}
	type summary struct {
		Method, Repo, Service string
		Status                int
	}
	var got []summary
	for _, r := range s.Requests()[before:] {
		if r.BytesOut <= 0 {
			t.Errorf("request %s %s: BytesOut = %d, want > 0", r.Method, r.Path, r.BytesOut)
		}
		got = append(got, summary{r.Method, r.Repo, r.Service, r.Status})
	}
	want := []summary{{"GET", "fleet.git", "git-upload-pack", 200}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests of a no-op fetch (-want +got):\n%s", diff)
	}

	// The push before it sent its pack in the request body.
	all := s.Requests()
	var pushes int
	for _, r := range all[:before] {
		if r.Method == "POST" && r.Service == "git-receive-pack" && r.Status == 200 {
			pushes++
			if r.BytesIn <= 0 {
				t.Errorf("push request BytesIn = %d, want > 0", r.BytesIn)
			}
		}
	}
	if pushes != 1 {
		t.Errorf("recorded %d successful receive-pack POSTs, want 1", pushes)
	}
}
