package sources

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"meridian.dev/meridian/internal/testenv/gitserver"
)

// newSSHKey returns a fresh Ed25519 private key in OpenSSH PEM form and its
// public key.
func newSSHKey(t *testing.T) ([]byte, ssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), signer.PublicKey()
}

// TestFetchSSH fetches over SSH with a key and known_hosts, checks that an
// unchanged fetch only lists references, and that a wrong host key and an
// unauthorized client key are refused with permanent errors.
func TestFetchSSH(t *testing.T) {
	t.Parallel()
	key, pub := newSSHKey(t)
	s, w := newRepo(t, gitserver.Options{SSHAuthorizedKeys: []ssh.PublicKey{pub}})
	head := push(t, w, "one", map[string]string{"fleet.yaml": "kind: Fleet\n"})
	url := s.SSHURL(repoName)

	g := newGit(t, GitOptions{URL: url, Ref: Ref{Branch: "main"}, Auth: Auth{SSHPrivateKey: key, KnownHosts: []byte(s.SSHKnownHosts())}})
	n := len(s.Requests())
	snap := mustFetch(t, g)
	if snap.Revision != head {
		t.Errorf("Fetch over SSH returned %s, want %s", snap.Revision, head)
	}
	if diff := cmp.Diff(map[string]string{"fleet.yaml": "kind: Fleet\n"}, readTree(t, snap.Dir)); diff != "" {
		t.Errorf("snapshot files (-want +got):\n%s", diff)
	}
	if again := mustFetch(t, g); !again.Unchanged {
		t.Errorf("second fetch over SSH: Unchanged = false, want true")
	}
	// One session listed and fetched; the unchanged fetch's session only
	// listed references (it sent nothing but a flush packet).
	// The server records a session when its git process has exited, which
	// may be just after the client is done.
	for deadline := time.Now().Add(5 * time.Second); len(s.Requests()) < n+2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	reqs := s.Requests()[n:]
	if diff := cmp.Diff([]string{"ssh git-upload-pack", "ssh git-upload-pack"}, requestsSince(s, n)); diff != "" {
		t.Fatalf("SSH sessions (-want +got):\n%s", diff)
	}
	// The client may close before or after sending its flush packet; either way it
	// must not send wants.
	if reqs[1].BytesIn > 4 {
		t.Errorf("the unchanged fetch sent %d bytes, want at most 4 (a flush packet, no wants)", reqs[1].BytesIn)
	}

	otherKey, _ := newSSHKey(t)
	other := gitserver.New(t, gitserver.Options{SSHAuthorizedKeys: []ssh.PublicKey{pub}})
	// The other server's host key, listed for this server's address.
	wrongHosts := strings.Replace(other.SSHKnownHosts(), "]:"+port(other.SSHAddr())+" ", "]:"+port(s.SSHAddr())+" ", 1)
	tests := []struct {
		name string
		auth Auth
		kind error
		want string
	}{
		{"wrong host key", Auth{SSHPrivateKey: key, KnownHosts: []byte(wrongHosts)}, ErrServerIdentity,
			url + ": connect: the SSH host key does not match known_hosts; if the server's key really changed, replace its known_hosts entry; otherwise someone may be intercepting the connection"},
		{"host not in known_hosts", Auth{SSHPrivateKey: key, KnownHosts: []byte("[127.0.0.1]:1 " + strings.SplitN(s.SSHKnownHosts(), " ", 2)[1])}, ErrServerIdentity,
			url + ": connect: the SSH host key is not in known_hosts; add the server's host key to known_hosts (never disable host key checking)"},
		{"unauthorized key", Auth{SSHPrivateKey: otherKey, KnownHosts: []byte(s.SSHKnownHosts())}, ErrAuth,
			url + ": connect: the SSH server accepted none of the offered keys; check that the private key's public half is authorized to read this repository"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newGit(t, GitOptions{URL: url, Ref: Ref{Branch: "main"}, Auth: tt.auth})
			_, err := g.Fetch(t.Context())
			if err == nil {
				t.Fatal("Fetch succeeded, want an error")
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", err, tt.want)
			}
			if !errors.Is(err, tt.kind) || Transient(err) {
				t.Errorf("errors.Is(err, %v) = %v, Transient = %v; want true, false", tt.kind, errors.Is(err, tt.kind), Transient(err))
			}
		})
	}
}

// port returns the port of a host:port address.
func port(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }
